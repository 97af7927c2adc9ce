"""Tune `--recipe fast`: for each backbone, the learning rate and batch policy that reach a target soonest.

The search space per backbone is its authors' recipe itself, and its authors' learning rate L times 1, 3 and
10, constant, with random batches of a quarter of the signal (audio: full batches; shapes: their fixed batch
of points; `registry.FAST_BATCH` says why). Full
batches on images are left out: on a CPU a quarter batch costs 4-7x less than a full one, and SIREN's
first sweep (tune_fast.toml: 1e-3 full batch 45 steps, 1e-3 quarter batches 80) shows the quarter batches
winning by that cost. Every candidate fits one tuning signal from ../shared/data that the speed table does not
use (a DIV2K *training* crop for images, spoken digit 5 for audio where the table has 0-2, the bikes clip's
first 8 frames at 32² for video where the table starts at frame 64, the armadillo for shapes where the table has the
bunny) until --target (dB, or IoU for shapes) or --steps. The choice is the least training time to the target;
steps to target are exact (seeded), seconds are as loaded as the machine was, so the runs go two at a time,
one thread each, and times within 10% count as a tie that fewer steps break. Candidates that never reach the
target lose to any that does; a backbone none of whose candidates beats its authors' recipe keeps that recipe
as its fast one.

A thin caller of `inrkit.bench` (cases are stored as they finish; re-running resumes). The chosen setting
per backbone goes into the model's `fast=` recipes by hand, with this command as its source.

    python benchmarks/tune_fast.py --kind image                      # every backbone, 128² crop, 30 dB
    python benchmarks/tune_fast.py --kind audio --target 50           # spoken digit 5, 50 dB
    python benchmarks/tune_fast.py --kind occupancy --target 0.9      # the armadillo, IoU 0.9
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import speed  # this folder's speed table: the same reading of a history

from inrkit import list_models, load_signal
from inrkit.bench import ResultStore, run_benchmark
from inrkit.bench.runner import as_spec, resolve
from inrkit.models.registry import default_batch, get_entry
from inrkit.signals import KINDS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TUNING = {  # kind: (signal, loader settings); none of these is in the speed table
    "image": (DATA / "images" / "finer_div2k" / "train_data" / "00.png", {"crop": 128}),
    "audio": (DATA / "audio" / "fsdd" / "5_jackson_0.wav", {}),
    "video": (DATA / "video" / "bikes.mp4", {"frames": 8, "size": 32}),
    "occupancy": (DATA / "meshes" / "armadillo_50k.obj", {}),
    "sdf": (DATA / "meshes" / "armadillo_50k.obj", {}),
}
FACTORS = (1, 3, 10)
TIE = 1.1  # seconds within 10% of the best are a tie (a shared machine), broken by fewer steps


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", choices=sorted(TUNING), default="image")
    p.add_argument("--models", default="*", help="comma-separated names or patterns (default: every backbone)")
    p.add_argument("--target", type=float, default=None,
                   help="target PSNR (dB), or IoU for shapes (default: 30 dB, or IoU 0.9 for shapes)")
    p.add_argument("--steps", type=int, default=400, help="step cap per candidate")
    p.add_argument("--eval-every", type=int, default=5, help="steps between progress PSNRs of random-batch fits")
    p.add_argument("--batch", choices=("quarter", "full", "own"), default=None,
                   help="batch policy of the candidates (default: the kind's, registry.FAST_BATCH)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="bench folder (default benchmarks/results/tune_fast-KIND)")
    args = p.parse_args(argv)
    if args.target is None:
        args.target = 0.9 if KINDS[args.kind].headline == "iou" else 30.0
    return args


def candidates(name: str, kind: str, samples: int, batch: str) -> list[dict[str, Any]]:
    """The search space of one backbone: its authors' recipe, then L x FACTORS on `batch` batches."""
    authors = get_entry(name).recipe(kind, "authors", samples)
    sizes = {"quarter": {"batch_size": max(samples // 4, 1)}, "full": {"batch_size": samples}, "own": {}}
    rows = [{"name": name, "label": f"{name} authors", "fit": {"recipe": "authors"}}]
    for factor in FACTORS:
        fit = {"recipe": "authors", "lr": authors.lr * factor, "lr_decay": 1.0, **sizes[batch]}
        rows.append({"name": name, "label": f"{name} lr x{factor} {batch}", "fit": fit})
    return rows


def spec_for(args: argparse.Namespace) -> dict[str, Any]:
    path, loader = TUNING[args.kind]
    samples = load_signal(path, args.kind, **loader).num_samples
    names = sorted({m for pattern in args.models.split(",") for m in list_models(pattern.strip())})
    out = args.out or Path(__file__).parent / "results" / f"tune_fast-{args.kind}"
    settings = {**loader, f"target_{KINDS[args.kind].headline}": args.target, "steps": args.steps,
                "eval_every": args.eval_every}
    batch = args.batch or default_batch(args.kind)
    return {"signals": [str(path)], "model": [c for n in names for c in candidates(n, args.kind, samples, batch)],
            "seeds": [0], "device": "cpu", "workers": args.workers, "out": str(out), "kind": args.kind,
            args.kind: settings}


def reach(row: dict[str, Any], target: float) -> tuple[float, float]:
    """(steps, seconds) at the first history row at or above `target`; infinities where none was."""
    steps, seconds = speed.reach(row, target)
    return (math.inf, math.inf) if math.isnan(seconds) else (steps, seconds)


def choose(rows: list[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The row with the least time to target; a tie (within TIE) goes to fewer steps, then to the lower rate
    (the authors' recipe first). None: no row reached the target."""
    reached = [(reach(r, target), r) for r in rows if math.isfinite(reach(r, target)[1])]
    if not reached:
        return None
    best = min(seconds for (_, seconds), _ in reached)
    ties = [(steps, r["config"]["fit"].get("lr", 0.0), r) for (steps, seconds), r in reached if seconds <= best * TIE]
    return min(ties, key=lambda tie: tie[:2])[2]


def table(rows: list[dict[str, Any]], target: float) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["model"].split(" ", 1)[0], []).append(r)
    metric = KINDS[rows[0]["kind"]].headline if rows else "psnr"
    unit = " dB" if metric == "psnr" else " IoU"
    lines = [f"| backbone | candidate | lr | batch | steps to {target:g}{unit} | seconds to {target:g}{unit} | "
             f"final {metric} | chosen |", "|---|---|---:|---:|---:|---:|---:|:-:|"]
    for name, rs in sorted(groups.items()):
        chosen = choose(rs, target)
        for r in sorted(rs, key=lambda r: r["model"]):
            steps, seconds = reach(r, target)
            fit = r["config"]["fit"]
            lr, batch = (f"{fit['lr']:.3g}", fit.get("batch_size", "own")) if "lr" in fit else ("authors'", "authors'")
            final = f"{r['metrics'].get(metric, math.nan):.{2 if metric == 'psnr' else 3}f}"
            lines.append(f"| {name} | {r['model'].split(' ', 1)[1]} | {lr} | {batch} | {_fmt(steps, '{:.0f}')} | "
                         f"{_fmt(seconds, '{:.1f}')} | {final} | {'**yes**' if r is chosen else ''} |")
    return "\n".join(lines)


def _fmt(value: float, pattern: str) -> str:
    return "–" if not math.isfinite(value) else pattern.format(value)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    spec = spec_for(args)
    run = run_benchmark(spec)
    mine = {case.config_hash for case in resolve(as_spec(spec))}  # this search's rows, whatever else is there
    text = table([r for r in ResultStore(run.out).rows("ok") if r["config_hash"] in mine], args.target)
    (run.out / "tuning.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
