"""SIREN at the authors' settings: the authors' own code and inrkit's engine options, side by side, one machine.

The authors' side is `../shared/anchors/run_reference.py` (their `siren` repository's model and training
loop, imported from an extracted work tree; see ../shared/anchors/README.md). inrkit's side is `inrkit.fit`
at the same settings (kodim23 centre crop, 256-wide 5-layer SIREN, Adam lr 1e-4 constant, full batch,
2 threads) once per engine option and seed. Every run is its own process and the runs are interleaved
(authors, inrkit variants, authors, ...) so a busy machine slows all of them alike. s/step is the authors'
median over steps after their warm-up and inrkit's mean over steps after the first 5 (a mean, because
bf16-fp32 runs two kinds of step; a mean is never below the median of a slow-tailed run, so this favours
the authors). PSNR is on the clamped [0, 1] output against the 8-bit crop / 255 for both.

`--grid authors` trains and scores inrkit on the authors' sample positions (linspace(-1, 1) with the
end points) instead of its cell centres, so that both sides fit the same points and a PSNR difference
comes from the engine alone.

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
           "bf16+compile": {"precision": "bf16", "compile": True}, "bf16-fp32": {"precision": "bf16-fp32"},
           "bf16-fp32+compile": {"precision": "bf16-fp32", "compile": True}}

GRIDS = {"inrkit": "its own cell-centre grid", "authors": "the authors' linspace(-1, 1) grid"}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--seeds", default="0,1,2", help="one interleaved round per seed (the authors' seeds scatter"
                   " by 0.6 dB at 64², so PSNR is compared as a mean over seeds)")
    p.add_argument("--engines", default="fp32,bf16,compile")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--grid", choices=("inrkit", "authors"), default="inrkit",
                   help="inrkit's cell centres or the authors' linspace(-1, 1) sample positions")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "siren_side_by_side.md")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def inrkit_run(engine: str, size: int, steps: int, threads: int, grid: str, seed: int) -> dict[str, float]:
    """One inrkit fit at the authors' settings; s/step from its per-step history."""
    import torch

    from inrkit import FitConfig, create_model, fit, load_signal
    from inrkit.inference import predictor

    signal = load_signal(SHARED / "data" / "kodak" / "kodim23.png", crop=size)
    if grid == "authors":  # this one signal's positions only; the metric below is computed on them too
        signal.coords = lambda index=None: endpoint_grid(signal.shape, index)
    torch.manual_seed(seed)  # as the authors seed before building the model
    model = create_model("siren", signal=signal)
    config = FitConfig(steps=steps, lr=1e-4, lr_decay=1.0, seed=seed, device="cpu", threads=threads,
                       log_every=1, progress=False, checkpoint_path=None, **ENGINES[engine])
    result = fit(model, signal, config)
    times = [b["seconds"] - a["seconds"] for a, b in zip(result.history, result.history[1:])]
    predicted = predictor(result.model, signal.info)(signal.coords()).clamp(0, 1)
    psnr = -10 * torch.log10(((predicted - signal.targets()) ** 2).double().mean()).item()
    return {"psnr": psnr, "s_per_step": statistics.mean(times[5:] or times)}


def endpoint_grid(shape: tuple[int, ...], index=None):
    """The authors' sample positions: linspace(-1, 1, n) per axis, end points included, `ij` order."""
    import torch

    axes = [torch.linspace(-1, 1, n) for n in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(shape))
    return grid if index is None else grid[index]


def authors_run(size: int, steps: int, threads: int, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ref.json"
        subprocess.run([sys.executable, str(SHARED / "anchors" / "run_reference.py"), "--models", "siren",
                        "--sizes", f"{size}:{steps}", "--threads", str(threads), "--seed", str(seed),
                        "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL, env=os.environ)
        result = json.loads(out.read_text())[0]
    return {"psnr": result["psnr"], "s_per_step": result["s_per_step"]}


def worker_run(engine: str, args: argparse.Namespace, seed: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", engine, "--size", str(args.size), "--steps", str(args.steps),
               "--threads", str(args.threads), "--grid", args.grid, "--seeds", str(seed)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.worker:
        print(json.dumps(inrkit_run(args.worker, args.size, args.steps, args.threads, args.grid, int(args.seeds))))
        return
    engines = args.engines.split(",")
    runs: dict[str, list[dict[str, float]]] = {"authors": [], **{e: [] for e in engines}}
    seeds = [int(seed) for seed in args.seeds.split(",")]
    for seed in seeds:
        runs["authors"].append(authors_run(args.size, args.steps, args.threads, seed))
        for engine in engines:
            runs[engine].append(worker_run(engine, args, seed))
        print(f"seed {seed}: " + json.dumps({k: v[-1] for k, v in runs.items()}), flush=True)
    base = statistics.median(r["s_per_step"] for r in runs["authors"])
    lines = [f"SIREN, kodim23 centre {args.size}², {args.steps} full-batch steps, lr 1e-4, {args.threads} threads, "
             f"inrkit on {GRIDS[args.grid]}; seeds {args.seeds}, one interleaved round each: s/step is the "
             "median over seeds, PSNR the mean (and each seed's).", "",
             "| code | engine | s/step | × authors' speed | PSNR (dB), mean | per seed |",
             "|---|---|---:|---:|---:|---|"]
    for name, rs in runs.items():
        step = statistics.median(r["s_per_step"] for r in rs)
        per_seed = " / ".join(f"{r['psnr']:.2f}" for r in rs)
        lines.append(f"| {'authors' if name == 'authors' else 'inrkit'} | {'-' if name == 'authors' else name} | "
                     f"{step:.4f} | {base / step:.2f}× | {statistics.mean(r['psnr'] for r in rs):.2f} | {per_seed} |")
    command = f"python benchmarks/siren_side_by_side.py {' '.join(argv or sys.argv[1:])}"
    text = "\n".join(lines) + f"\n\nCommand: `{command}`\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
