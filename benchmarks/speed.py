"""Speed of every backbone: seconds per step and time to a target PSNR, authors' recipe vs fast vs fast + INT.

A thin caller of `inrkit.bench` (each case is stored as it finishes; re-running resumes): every backbone
fits centre crops of Kodak images three ways, each stopping at --target dB or --steps:
  authors    the backbone's authors' recipe (`--recipe authors`)
  fast       inrkit's tuned recipe (`--recipe fast`; the authors' where none is tuned yet)
  fast+int   the fast recipe with error-driven sampling (`--sampler int`)
  fast+bf16  the fast recipe under `--precision bf16-fp32` (not run unless named in --variants)
Each case runs in its own process, so peak memory (RSS on a CPU, CUDA's allocator peak on a GPU) is
per case. Seconds are training time only (`FitResult.seconds`).

Examples (from the repository root):
    python benchmarks/speed.py                                  # CPU: every backbone, 64² crop, 30 dB
    python benchmarks/speed.py --models siren --size 256        # the 256² SIREN comparison
    python benchmarks/speed.py --device cuda --size 512         # benchmarks/gpu_check.sh
    python benchmarks/speed.py --models siren --variants authors,fast+int --signals \
        ../shared/data/audio/fsdd/0_jackson_0.wav --targets 50,60 --eval-every 1   # audio
Signals are Kodak names or paths of any kind; with several --targets the fit stops at the highest and
the table gives the steps and seconds to each. Targets are PSNRs in dB, or IoUs for shapes (--kind
occupancy or sdf with a mesh: `--signals ../shared/data/meshes/bunny_stanford.obj --kind occupancy
--targets 0.9`) (from the fit's history, so --eval-every sets how finely
random-batch fits are checked; evaluation time is not training time). Rows are every finished case of the
bench folder, so runs with different step caps into one folder make one table.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from inrkit import list_models
from inrkit.bench import ResultStore, run_benchmark
from inrkit.bench.spec import expand_signals
from inrkit.signals import KINDS

KODAK = Path("/work/shared/data/kodak")
VARIANTS = {"authors": {"recipe": "authors"}, "fast": {"recipe": "fast"},
            "fast+int": {"recipe": "fast", "sampler": "int"}, "fast+bf16": {"recipe": "fast", "precision": "bf16-fp32"}}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="*", help="comma-separated names or patterns (default: every backbone)")
    p.add_argument("--signals", "--images", default="kodim19", help="comma-separated Kodak names or signal paths")
    p.add_argument("--size", type=int, default=64, help="image: centre crop side")
    p.add_argument("--targets", "--target", default="30", help="comma-separated target PSNRs (dB), IoUs for shapes")
    p.add_argument("--kind", default=None, help="signal kind where a file could be several (occupancy, sdf)")
    p.add_argument("--load", default="", help="loader options of the other kinds, e.g. frames=8,size=64,start=64")
    p.add_argument("--eval-every", type=int, default=None, help="steps between progress PSNRs of random-batch fits")
    p.add_argument("--steps", type=int, default=400, help="step cap per fit")
    p.add_argument("--variants", default="authors,fast,fast+int")
    p.add_argument("--seeds", default="0")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="bench folder (default benchmarks/results/speed-SIZE)")
    p.add_argument("--step-cost", type=int, default=0, metavar="N",
                   help="instead: s/step of each variant from N steps, two interleaved repeats (median)")
    return p.parse_args(argv)


def signal_paths(args: argparse.Namespace) -> list[str]:
    """Kodak names (kodim19) become their files; anything else is a path."""
    return [str(KODAK / f"{name}.png") if name.startswith("kodim") and "." not in name else name
            for name in (n.strip() for n in args.signals.split(","))]


def targets(args: argparse.Namespace) -> list[float]:
    return sorted(float(t) for t in args.targets.split(","))


def step_cost(args: argparse.Namespace) -> None:
    """Seconds per step of each variant, measured side by side (interleaved, so load hits all alike)."""
    import statistics

    import torch

    from inrkit import FitConfig, create_model, fit, load_signal

    path = signal_paths(args)[0]
    signal = load_signal(path, crop=args.size if path.startswith(str(KODAK)) else None)
    names = sorted({m for pattern in args.models.split(",") for m in list_models(pattern.strip())})
    costs: dict[str, list[float]] = {}
    for _ in range(2):
        for name in names:
            for variant in args.variants.split(","):
                torch.manual_seed(0)
                model = create_model(name, signal=signal, recipe=VARIANTS[variant]["recipe"])
                config = FitConfig(steps=args.step_cost, log_every=1, progress=False, device=args.device,
                                   **VARIANTS[variant])
                history = fit(model, signal, config).history
                steps = [b["seconds"] - a["seconds"] for a, b in zip(history, history[1:])][2:]
                costs.setdefault(f"{name} {variant}", []).append(statistics.median(steps))
    for label, values in costs.items():
        print(f"{label}: {statistics.median(values):.4f} s/step ({', '.join(f'{v:.4f}' for v in values)})")


def spec_for(args: argparse.Namespace) -> dict[str, Any]:
    names = sorted({m for pattern in args.models.split(",") for m in list_models(pattern.strip())})
    models = [{"name": name, "label": f"{name} {variant}", "fit": VARIANTS[variant]}
              for name in names for variant in args.variants.split(",")]
    fit = {"steps": args.steps, **({"eval_every": args.eval_every} if args.eval_every else {})}
    out = args.out or Path(__file__).parent / "results" / f"speed-{args.size}"
    load = dict(item.split("=", 1) for item in args.load.split(",") if item)
    load = {key: int(value) if value.isdigit() else value for key, value in load.items()}
    used = {kind for _, kind in expand_signals(signal_paths(args), args.kind)}  # the options are theirs
    kinds = {kind: {f"target_{KINDS[kind].headline}": max(targets(args)), **fit, **(load if kind in used else {})}
             for kind in KINDS}
    return {"signals": signal_paths(args), "model": models, "seeds": [int(s) for s in args.seeds.split(",")],
            "device": args.device, "isolate": True, "out": str(out), **kinds,
            "image": {"crop": args.size, **kinds["image"]}, **({"kind": args.kind} if args.kind else {})}


def table(rows: list[dict[str, Any]], goals: list[float]) -> str:
    """Markdown: one row per backbone and variant, means over signals and seeds, with ratios to authors.

    Steps and seconds to each target come from the fit's history (the first row at or above it)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["model"], []).append(r)
    to = {label: {t: [reach(r, t) for r in rs] for t in goals} for label, rs in groups.items()}
    metric = KINDS[rows[0]["kind"]].headline if rows else "psnr"
    unit = " dB" if metric == "psnr" else " IoU"
    head = " | ".join(f"steps to {t:g}{unit} | seconds to {t:g}{unit} | × authors" for t in goals)
    lines = [f"| backbone | recipe | s/step | {head} | final {metric.upper() if metric == 'iou' else 'PSNR (dB)'} "
             "| peak MiB |",
             "|---|---|---:|" + "---:|---:|---:|" * len(goals) + "---:|---:|"]
    for label, rs in sorted(groups.items()):
        name, variant = label.rsplit(" ", 1)
        cells = [name, variant, f"{_mean([r['seconds'] / max(r['steps'], 1) for r in rs]):.3f}"]
        for t in goals:
            steps, time = (_mean([hit[i] for hit in to[label][t]]) for i in (0, 1))
            base = _mean([hit[1] for hit in to.get(f"{name} authors", {}).get(t, [(math.nan, math.nan)])])
            cells += [_fmt(steps, "{:.0f}"), _fmt(time, "{:.1f}"), _fmt(base / time, "{:.2f}×")]
        cells += [f"{_mean([r['metrics'].get(metric, math.nan) for r in rs]):.{2 if metric == 'psnr' else 3}f}",
                  _fmt(_mean([r.get("extra", {}).get("peak_mib", math.nan) for r in rs]), "{:.0f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reach(row: dict[str, Any], target: float) -> tuple[float, float]:
    """(steps, seconds) at the first history row whose PSNR (a shape's IoU) reached `target`; NaNs where none did."""
    column = 5 if KINDS[row["kind"]].headline == "iou" else 2
    for history in row.get("history") or []:
        value = history[column] if len(history) > column else None
        if value is not None and not math.isnan(value) and value >= target:
            return history[0], history[3]
    return math.nan, math.nan


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return sum(finite) / len(finite) if len(finite) == len(values) and finite else math.nan


def _fmt(value: float, pattern: str) -> str:
    return "–" if math.isnan(value) else pattern.format(value)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.step_cost:
        step_cost(args)
        return
    run = run_benchmark(spec_for(args))
    text = table(ResultStore(run.out).rows("ok"), targets(args))
    (run.out / "speed.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
