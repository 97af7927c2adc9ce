"""`inrkit bench`: run a benchmark (`inrkit bench SPEC.toml` or flags) or rebuild its report.

`bench` is a command group whose default command is `run`, so both `inrkit bench SPEC.toml
--steps 100` and `inrkit bench report DIR` work. Logic lives in `inrkit.bench`; this file parses.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import progress
from .common import (
    DEVICE_HELP,
    MAX_INT,
    MAX_THREADS,
    console,
    friendly,
    kinds_with,
    loader_size,
    parse_budget,
    parse_seed,
    positive,
    split_list,
)

try:  # typer >= 0.24 vendors click
    from typer._click.exceptions import BadArgumentUsage
except ImportError:  # pragma: no cover
    from click.exceptions import BadArgumentUsage  # type: ignore[no-redef]


class DefaultRunGroup(TyperGroup):
    """A group that treats an unknown first word (a spec file, a flag) as arguments of `run`.

    A word that is no file but close to a command name ("reprot") is a typo, not a spec: it is
    refused with the suggestion instead of being answered with `run`'s usage.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            word = args[0]
            close = difflib.get_close_matches(word, list(self.commands), n=1, cutoff=0.6)
            if close and not word.startswith("-") and not Path(word).exists():
                raise BadArgumentUsage(f"no command {word!r}; did you mean {close[0]!r}?", ctx)
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


bench_app = typer.Typer(cls=DefaultRunGroup, add_completion=False, pretty_exceptions_enable=False,
                        help="Benchmark backbones: signals x models x seeds, resumable, with tables and plots.")



FROM_SPEC = "the spec's, else "


def _split(items: list[str] | None) -> list[str] | None:
    return [p.strip() for item in items for p in item.split(",") if p.strip()] if items else None


def _kind_settings(pairs: list[str] | None, crop: str | None, size: str | None) -> dict[str, dict[str, Any]]:
    """--set image.crop=128 --set audio.steps=500 (and the --crop/--size shortcuts) -> {kind: {key: value}}."""
    from ..bench.spec import parse_value
    from ..errors import ConfigError

    kinds: dict[str, dict[str, Any]] = {}
    for pair in pairs or []:
        target, sep, value = pair.partition("=")
        kind, dot, key = target.partition(".")
        if not sep or not dot:
            raise ConfigError(f"cannot read --set {pair!r}; write KIND.KEY=VALUE, e.g. image.crop=128")
        kinds.setdefault(kind.strip(), {})[key.strip()] = parse_value(value)
    for key, text in (("crop", crop), ("size", size)):
        value = loader_size(text, f"--{key}")
        for kind in kinds_with(key, "load_options") if value is not None else ():
            kinds.setdefault(kind, {})[key] = value if isinstance(value, int) else list(value)
    return kinds


@bench_app.command()
@friendly
def run(
    spec: Annotated[Path | None, typer.Argument(help="TOML spec (flags override it)")] = None,
    signals: Annotated[list[str] | None, typer.Option("--signals", "-s", help="files, folders or globs",
                                                                  show_default="the spec's")] = None,
    models: Annotated[list[str] | None, typer.Option("--models", "-m", help="names, patterns ('s*') or "
                                                        "variants ('siren:hidden_layers=1'), comma-separated",
                                                        show_default=FROM_SPEC + "siren")] = None,
    seeds: Annotated[str | None, typer.Option(help="comma-separated seeds, e.g. 0,1,2",
                                                 show_default=FROM_SPEC + "0")] = None,
    params: Annotated[str | None, typer.Option(help="parameter budget for every model, e.g. 200k",
                                                  show_default=FROM_SPEC + "each recipe's width")] = None,
    steps: Annotated[int | None, typer.Option(min=1, max=MAX_INT, help="optimisation steps per fit",
                                                 show_default=FROM_SPEC + "each recipe's")] = None,
    target_psnr: Annotated[float | None, typer.Option(parser=positive, help="stop each fit at this PSNR; "
                                                         "time to reach it", show_default=FROM_SPEC + "none")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="per-kind setting KIND.KEY=VALUE "
                                                      "(e.g. image.lr=1e-3, image.crop=128)",
                                                      show_default=FROM_SPEC + "none")] = None,
    crop: Annotated[str | None, typer.Option(help=f"{'/'.join(kinds_with('crop', 'load_options'))}: "
                                                "centre crop to N or HxW", show_default=FROM_SPEC + "none")] = None,
    size: Annotated[str | None, typer.Option(help=f"{'/'.join(kinds_with('size', 'load_options'))}: "
                                                "resize to N or HxW (after --crop)",
                                                show_default=FROM_SPEC + "as loaded")] = None,
    out: Annotated[Path | None, typer.Option(help="results folder", show_default=FROM_SPEC + "bench")] = None,
    device: Annotated[str | None, typer.Option(help=DEVICE_HELP, show_default=FROM_SPEC + "auto")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=MAX_THREADS, help="cases at once, each in its own process",
                                                   show_default=FROM_SPEC + "1")] = None,
    executor: Annotated[str | None, typer.Option(help="local or ray", show_default=FROM_SPEC + "local")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address",
                                                       show_default=FROM_SPEC + "a local Ray")] = None,
    isolate: Annotated[bool | None, typer.Option("--isolate", help="each case in its own process")] = None,
    batched: Annotated[bool | None, typer.Option("--batched/--no-batched",
                                                 help="train cases that differ only in signal and seed together "
                                                      "(fit_many)", show_default=FROM_SPEC + "on a GPU")] = None,
    keep_reconstructions: Annotated[bool | None, typer.Option("--keep-reconstructions",
                                                                 help="write every reconstruction file")] = None,
    retry_errors: Annotated[bool | None, typer.Option("--retry-errors", help="re-run failed cases")] = None,
    published: Annotated[bool, typer.Option(help="show published reference numbers")] = True,
    preset: Annotated[str | None, typer.Option(help="a published protocol instead of a spec (see `inrkit bench "
                                                  "presets`)", show_default="none")] = None,
    data: Annotated[Path, typer.Option(help="--preset: the benchmark data folder (kodak/, images/, audio/, "
                                            "meshes/)")] = Path("data"),
    protocol: Annotated[str, typer.Option(help="--preset: full, reduced (for a CPU) or auto (full on a GPU)")] = "auto",
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Run (or resume) a benchmark; finished cases are skipped, so re-run the same command after a kill."""
    from ..bench.runner import run_benchmark
    from ..bench.spec import load_spec, make_spec

    seed_list = split_list(seeds, parse_seed) if seeds else None
    flags = {"signals": _split(signals), "models": _split(models), "seeds": seed_list,
             "params": parse_budget(params),
             "steps": steps, "target_psnr": target_psnr, "out": str(out) if out else None, "device": device,
             "workers": workers, "executor": executor, "ray_address": ray_address, "isolate": isolate,
             "batched": batched, "keep_reconstructions": keep_reconstructions, "retry_errors": retry_errors,
             "published": None if published else False}
    if preset and spec:
        from ..errors import ConfigError

        raise ConfigError("give a spec file or --preset, not both")
    if preset:
        bench, note = _preset(preset, data, protocol, flags)
    else:
        bench, note = (load_spec(spec, **flags) if spec else make_spec({}, **flags)), None
    for kind, settings in _kind_settings(set_, crop, size).items():
        bench.kinds[kind] = {**bench.kinds.get(kind, {}), **settings}
    if note:
        console.print(note, markup=False, highlight=False, soft_wrap=True)
        Path(bench.out).mkdir(parents=True, exist_ok=True)
        (Path(bench.out) / "preset.md").write_text(note)
    with progress.quiet(quiet):
        result = run_benchmark(bench, progress=not quiet)
    if result.total and result.errors == result.total:  # nothing to report: bad input, in one line as everywhere
        _all_failed(result)
    if result.reports:
        console.print((result.out / "report.md").read_text(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"{result.total} cases, {result.ran} run now, {result.errors} failed; results in {result.out}")


def _all_failed(result: Any) -> None:
    """Raise the first case's error for a benchmark in which every case failed (its rows stay in the store)."""
    from ..bench.store import ResultStore
    from ..errors import InrkitError

    errors = [r.get("error") or "" for r in ResultStore(result.out).rows("error")]
    first = next((e for e in errors if e), "no message").splitlines()[0]
    raise InrkitError(f"all {result.total} cases failed; the first: {first}"[:1000])


def _preset(name: str, data: Path, protocol: str, flags: dict[str, Any]) -> tuple[Any, str]:
    """The preset's spec with the command line's flags on top, and the note saying which protocol runs."""
    from ..bench.presets import choose_protocol, describe, get_preset, preset_spec
    from ..bench.spec import make_spec

    chosen, _ = choose_protocol(get_preset(name), protocol, flags.get("device") or "auto")
    raw = preset_spec(name, data, chosen, flags.get("device") or "auto", steps=flags.get("steps"))
    return make_spec(raw, **flags), describe(name, chosen, data)


@bench_app.command()
@friendly
def presets() -> None:
    """List the published protocols `--preset` runs: what each reproduces and what its CPU version cuts."""
    from rich.table import Table

    from ..bench.presets import PRESETS

    table = Table("preset", "experiment", "reduced protocol (CPU)")
    for preset in PRESETS.values():
        table.add_row(preset.name, preset.title, preset.reduced.note)
    console.print(table)


@bench_app.command()
@friendly
def report(
    folder: Annotated[Path, typer.Argument(help="a benchmark results folder")],
    published: Annotated[bool, typer.Option(help="show published reference numbers")] = True,
) -> None:
    """Rebuild the tables and plots of a benchmark folder from its results store."""
    from ..bench.report import write_report
    from ..bench.store import ResultStore
    from ..errors import ConfigError

    if not (folder / ResultStore.FILENAME).exists():
        raise ConfigError(f"{folder}: no {ResultStore.FILENAME} here; is it a benchmark folder?")
    paths = write_report(folder, published=published)
    console.print(paths[0].read_text(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"wrote {len(paths)} files in {folder}")
