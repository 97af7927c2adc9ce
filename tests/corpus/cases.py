"""A corpus case: one command line, the files it runs on, and what counts as a correct answer."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .workspace import FIT, Profile

Maker = Callable[[Path, Any], object]
Verify = Callable[[Path, Any], list[str]]  # (case folder, run.Result) -> problems


@dataclass
class Case:
    """One bad or unusual input through one command.

    Attributes:
        id: family/input/command, e.g. "image/truncated/fit".
        argv: the command line after `inrkit`, with paths relative to the case folder.
        needs: base files or folders (see Workspace) copied into the case folder first.
        make: writes the case's own input into the case folder.
        may_succeed: exit 0 is a correct answer (the input is unusual, not wrong); otherwise only a
            refusal (exit 2, one line) is.
        writes: pre-existing paths the command may change when it succeeds (a run folder it resumes).
        constant_ok: a flat output is right (a black image fitted gives a black reconstruction).
        verify: extra checks of a successful run (its folder and result), returning problems.
        costly: a success does real work (a fit, a benchmark); the in-process test runs these only
            when slow tests are selected.
    """

    id: str
    argv: list[str]
    needs: tuple[str, ...] = ()
    make: Maker | None = None
    may_succeed: bool = False
    writes: tuple[str, ...] = ()
    constant_ok: bool = False
    verify: Verify | None = None
    costly: bool = False

    @property
    def family(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def slug(self) -> str:
        """A folder name for the case: readable, unique."""
        digest = hashlib.sha1(self.id.encode()).hexdigest()[:8]
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.id)[:80] + "-" + digest

    def prepare(self, folder: Path, workspace: Any) -> None:
        for name in self.needs:
            workspace.copy(name, folder)
        if self.make is not None:
            self.make(folder, workspace)


@dataclass(frozen=True)
class Command:
    """How a family's input goes through one command: argv around the input name, base files it needs."""

    name: str
    argv: Callable[[str], list[str]]
    needs: tuple[str, ...] = ()
    in_folder: bool = False  # the input goes into a folder `sigs/` that the command reads
    costly: bool = False
    options: dict[str, Any] = field(default_factory=dict)


FIT_OUT = [*FIT, "--out", "out"]
SMALL = ["--device", "cpu", "--quiet"]
SIGNAL_COMMANDS = {
    "fit": Command("fit", lambda p: ["fit", p, *FIT_OUT]),
    "fit-many": Command("fit-many", lambda p: ["fit-many", "sigs", "--steps", "1", "--width", "8", *SMALL,
                                               "--out", "fields"], in_folder=True, costly=True),
    "meta-learn": Command("meta-learn", lambda p: ["meta-learn", "sigs", "--outer-steps", "1", "--inner-steps", "1",
                                                   "--meta-batch", "1", "--width", "8", *SMALL,
                                                   "--out", "init.safetensors"], in_folder=True, costly=True),
    "rd": Command("rd", lambda p: ["rd", p, "--params", "1k", "--bits", "8", "--steps", "1", *SMALL, "--out", "rd"],
                  costly=True),
    "bench": Command("bench", lambda p: ["bench", "-s", p, "-m", "siren:hidden_features=8", "--steps", "1", *SMALL,
                                         "--out", "bench"], costly=True),
}


def eval_command(run: str) -> Command:
    return Command("eval", lambda p: ["eval", run, p, "--json"], needs=(run,))


def through(family: str, label: str, name: str, make: Maker, commands: list[Command], **flags: Any) -> list[Case]:
    """The cases of one input file `name` (written by `make`) through each command."""
    cases = []
    for command in commands:
        target = f"sigs/{name}" if command.in_folder else name

        def prepare(folder: Path, workspace: Any, target: str = target) -> None:
            (folder / target).parent.mkdir(parents=True, exist_ok=True)
            make(folder / target, workspace)

        cases.append(Case(f"{family}/{label}/{command.name}", command.argv(name), needs=command.needs, make=prepare,
                          costly=command.costly and flags.get("may_succeed", False), **flags))
    return cases


def all_cases(profile: Profile) -> list[Case]:
    """Every case of the corpus for this profile, in a stable order."""
    from .file_cases import inrz_cases, weights_cases
    from .numbers import number_cases
    from .place_cases import bench_cases, path_cases, resume_cases
    from .signal_cases import signal_cases

    cases = [*signal_cases(profile), *weights_cases(profile), *inrz_cases(profile), *number_cases(profile),
             *path_cases(profile), *bench_cases(profile), *resume_cases(profile)]
    ids = [c.id for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"corpus case ids must be unique: {sorted(duplicates)[:5]}")
    return cases
