"""The bad-input corpus (tests/corpus) through every command: each case ends cleanly.

Clean is exit 2 with one `error:` line, or — for an input that is unusual rather than wrong — exit 0
with outputs that are what they claim. Never a traceback, a hang, a folder left by a refused
command, a changed pre-existing file, or a wrong output with exit 0.

Cases run in this process (CliRunner, an alarm per case) with the sample limit lowered to 2^18, so
"huge" inputs are huge relative to the limit and an unchecked one costs megabytes, not gigabytes.
Cases whose success does real work (fits, benchmarks, rd sweeps) are `slow`; so is the subprocess
mode, which runs every case as `timeout 120 prlimit --as=8GiB inrkit ...` with the real limit and the
issue's own sizes (12000² PNGs, --scale 1000). `benchmarks/fuzz.py` runs that and writes the table.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from corpus import IN_PROCESS, SUBPROCESS, Case, Workspace, all_cases, run_case

CASES = all_cases(IN_PROCESS)


def _params(cases: list[Case]) -> list[object]:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.costly else []) for c in cases]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("corpus"), IN_PROCESS)
    _ = ws.base
    return ws


@pytest.mark.parametrize("case", _params(CASES))
def test_case_ends_cleanly(case: Case, workspace: Workspace) -> None:
    verdict = run_case(case, workspace, timeout=30, keep=False)
    assert verdict.outcome == "clean", f"{verdict.outcome}: {verdict.detail}\n  inrkit {' '.join(case.argv)}"


def test_the_corpus_covers_every_kind_of_input() -> None:
    families = Counter(c.family for c in CASES)
    assert len(CASES) >= 254
    for family in ("image", "audio", "video", "mesh", "weights", "inrz", "number", "path", "bench-spec",
                   "bench-store", "resume"):
        assert families[family] >= 7, (family, families[family])
    commands = {c.argv[0] for c in CASES}
    assert {"fit", "fit-many", "meta-learn", "render", "eval", "export", "decode", "rd", "bench", "models"} <= commands


def test_the_classifier_can_fail(tmp_path: Path) -> None:
    """A traceback, a partial folder, data loss and a lying output are each caught (the test can fail)."""
    from corpus.run import Result, classify

    case = Case("x/y/z", ["fit"], may_succeed=True)
    before = {"kept.png": "h1"}
    assert classify(case, Result(1, "", "Traceback (most recent call last):\nKeyError: 'x'"), before, before,
                    tmp_path)[0] == "traceback"
    assert classify(case, Result(None, "", ""), before, before, tmp_path)[0] == "hang"
    assert classify(case, Result(2, "", "error: bad\n"), before, {**before, "out": "dir"}, tmp_path)[0] == \
        "partial folder"
    assert classify(case, Result(2, "", "error: bad\n"), before, {"kept.png": "h2"}, tmp_path)[0] == "data loss"
    (tmp_path / "r.png").write_bytes(b"II*\x00 tiff bytes")
    assert classify(case, Result(0, "", ""), before, {**before, "r.png": "h3"}, tmp_path)[0] == "wrong output"
    assert classify(Case("x/y/z", ["fit"]), Result(0, "", ""), before, before, tmp_path)[0] == "wrong output"
    assert classify(case, Result(2, "", "error: bad\n"), before, before, tmp_path)[0] == "clean"


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in all_cases(SUBPROCESS)])
def test_case_ends_cleanly_in_its_own_process(case: Case, tmp_path_factory: pytest.TempPathFactory) -> None:
    workspace = _subprocess_workspace(tmp_path_factory)
    verdict = run_case(case, workspace, mode="subprocess", timeout=120, keep=False)
    assert verdict.outcome == "clean", f"{verdict.outcome}: {verdict.detail}\n  inrkit {' '.join(case.argv)}"


_SHARED: dict[str, Workspace] = {}


def _subprocess_workspace(factory: pytest.TempPathFactory) -> Workspace:
    if "ws" not in _SHARED:
        _SHARED["ws"] = Workspace(factory.mktemp("corpus-subprocess"), SUBPROCESS)
        _ = _SHARED["ws"].base
    return _SHARED["ws"]
