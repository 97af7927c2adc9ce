"""Speed of every backbone: seconds per step and time to a target PSNR, authors' recipe vs fast vs fast + INT.

A thin caller of `inrkit.bench` (each case is stored as it finishes; re-running resumes): every backbone
fits centre crops of Kodak images three ways, each stopping at --target dB or --steps:
  authors    the backbone's authors' recipe (`--recipe authors`)
  fast       inrkit's tuned recipe (`--recipe fast`; the authors' where none is tuned yet)
  fast+int   the fast recipe with error-driven sampling (`--sampler int`)
Each case runs in its own process, so peak memory (RSS on a CPU, CUDA's allocator peak on a GPU) is
per case. Seconds are training time only (`FitResult.seconds`).

Examples (from the repository root):
    python benchmarks/speed.py                                  # CPU: every backbone, 64² crop, 30 dB
    python benchmarks/speed.py --models siren --size 256        # the 256² SIREN comparison
    python benchmarks/speed.py --device cuda --size 512         # benchmarks/gpu_check.sh
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from inrkit import list_models
from inrkit.bench import run_benchmark

KODAK = Path("/work/shared/data/kodak")
VARIANTS = {"authors": {"recipe": "authors"}, "fast": {"recipe": "fast"},
            "fast+int": {"recipe": "fast", "sampler": "int"}}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="*", help="comma-separated names or patterns (default: every backbone)")
    p.add_argument("--images", default="kodim19", help="comma-separated Kodak image names")
    p.add_argument("--size", type=int, default=64, help="centre crop side")
    p.add_argument("--target", type=float, default=30.0, help="target PSNR (dB)")
    p.add_argument("--steps", type=int, default=400, help="step cap per fit")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--seeds", default="0")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="bench folder (default benchmarks/results/speed-SIZE)")
    p.add_argument("--step-cost", type=int, default=0, metavar="N",
                   help="instead: s/step of each variant from N steps, two interleaved repeats (median)")
    return p.parse_args(argv)


def step_cost(args: argparse.Namespace) -> None:
    """Seconds per step of each variant, measured side by side (interleaved, so load hits all alike)."""
    import statistics

    import torch

    from inrkit import FitConfig, create_model, fit, load_signal

    signal = load_signal(KODAK / f"{args.images.split(',')[0]}.png", crop=args.size)
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
    return {"signals": [str(KODAK / f"{name.strip()}.png") for name in args.images.split(",")],
            "model": models, "seeds": [int(s) for s in args.seeds.split(",")], "device": args.device,
            "isolate": True, "out": str(args.out or Path(__file__).parent / "results" / f"speed-{args.size}"),
            "image": {"crop": args.size, "target_psnr": args.target, "steps": args.steps}}


def table(rows: list[dict[str, Any]], target: float) -> str:
    """Markdown: one row per backbone and variant, means over images and seeds, with ratios to authors."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "ok":
            groups.setdefault(r["model"], []).append(r)
    authors_time = {label.rsplit(" ", 1)[0]: _mean([_time(r) for r in rs])
                    for label, rs in groups.items() if label.endswith(" authors")}
    lines = [f"| backbone | recipe | s/step | steps to {target:g} dB | seconds to {target:g} dB | × authors |"
             " final PSNR (dB) | peak MiB |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, rs in sorted(groups.items()):
        name, variant = label.rsplit(" ", 1)
        time = _mean([_time(r) for r in rs])
        base = authors_time.get(name, math.nan)
        steps = _mean([r["steps"] if r.get("time_to_target") is not None else math.nan for r in rs])
        cells = [name, variant, f"{_mean([r['seconds'] / max(r['steps'], 1) for r in rs]):.3f}",
                 _fmt(steps, "{:.0f}"), _fmt(time, "{:.1f}"), _fmt(base / time, "{:.2f}×"),
                 f"{_mean([r['metrics'].get('psnr', math.nan) for r in rs]):.2f}",
                 _fmt(_mean([r.get("extra", {}).get("peak_mib", math.nan) for r in rs]), "{:.0f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _time(row: dict[str, Any]) -> float:
    """Seconds to the target, or NaN where the fit never reached it (a "–" in the table)."""
    return row["time_to_target"] if row.get("time_to_target") is not None else math.nan


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
    text = table(run.rows(), args.target)
    (run.out / "speed.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
