"""SIREN at the authors' settings: the authors' own code and inrkit's engine options, side by side, one machine.

The authors' side is `../shared/anchors/run_reference.py` (their `siren` repository's model and training
loop, imported from an extracted work tree; see ../shared/anchors/README.md). inrkit's side is `inrkit.fit`
at the same settings (kodim23 centre crop, 256-wide 5-layer SIREN, Adam lr 1e-4 constant, full batch,
seed 0, 2 threads) once per engine option. Every run is its own process and the runs are interleaved
(authors, inrkit variants, authors, ...) so a busy machine slows all of them alike; s/step is the median
over steps after the first 5, PSNR is on the clamped [0, 1] output against the 8-bit crop / 255 for both.

    INRKIT_ANCHORS=/tmp/anchors python benchmarks/siren_side_by_side.py --size 256 --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
ENGINES = {"fp32": {}, "bf16": {"precision": "bf16"}, "compile": {"compile": True},
           "bf16+compile": {"precision": "bf16", "compile": True}}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--engines", default="fp32,bf16,compile")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "siren_side_by_side.md")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def inrkit_run(engine: str, size: int, steps: int, threads: int) -> dict[str, float]:
    """One inrkit fit at the authors' settings; s/step from its per-step history."""
    import torch

    from inrkit import FitConfig, create_model, fit, load_signal

    signal = load_signal(SHARED / "data" / "kodak" / "kodim23.png", crop=size)
    torch.manual_seed(0)  # as the authors seed before building the model
    model = create_model("siren", signal=signal)
    config = FitConfig(steps=steps, lr=1e-4, lr_decay=1.0, seed=0, device="cpu", threads=threads,
                       log_every=1, progress=False, checkpoint_path=None, **ENGINES[engine])
    result = fit(model, signal, config)
    times = [b["seconds"] - a["seconds"] for a, b in zip(result.history, result.history[1:])]
    return {"psnr": result.metrics["psnr"], "s_per_step": statistics.median(times[5:] or times)}


def authors_run(size: int, steps: int, threads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ref.json"
        subprocess.run([sys.executable, str(SHARED / "anchors" / "run_reference.py"), "--models", "siren",
                        "--sizes", f"{size}:{steps}", "--threads", str(threads), "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL, env=os.environ)
        result = json.loads(out.read_text())[0]
    return {"psnr": result["psnr"], "s_per_step": result["s_per_step"]}


def worker_run(engine: str, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", engine, "--size", str(args.size), "--steps", str(args.steps),
               "--threads", str(args.threads)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.worker:
        print(json.dumps(inrkit_run(args.worker, args.size, args.steps, args.threads)))
        return
    engines = args.engines.split(",")
    runs: dict[str, list[dict[str, float]]] = {"authors": [], **{e: [] for e in engines}}
    for repeat in range(args.repeats):
        runs["authors"].append(authors_run(args.size, args.steps, args.threads))
        for engine in engines:
            runs[engine].append(worker_run(engine, args))
        print(f"repeat {repeat + 1}: " + json.dumps({k: v[-1] for k, v in runs.items()}), flush=True)
    base = statistics.median(r["s_per_step"] for r in runs["authors"])
    lines = [f"SIREN, kodim23 centre {args.size}², {args.steps} full-batch steps, lr 1e-4, seed 0, "
             f"{args.threads} threads; medians over {args.repeats} interleaved repeats.", "",
             "| code | engine | s/step | × authors' speed | PSNR (dB) |", "|---|---|---:|---:|---:|"]
    for name, rs in runs.items():
        step = statistics.median(r["s_per_step"] for r in rs)
        lines.append(f"| {'authors' if name == 'authors' else 'inrkit'} | {'-' if name == 'authors' else name} | "
                     f"{step:.3f} | {base / step:.2f}× | {statistics.median(r['psnr'] for r in rs):.2f} |")
    command = f"python benchmarks/siren_side_by_side.py {' '.join(argv or sys.argv[1:])}"
    text = "\n".join(lines) + f"\n\nCommand: `{command}`\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
