"""Measure one documented departure from an author's protocol at a time, paired over seeds.

Each run fits the 64² centre crop of Kodak's kodim23 full batch (the anchors' setting in
`/work/shared/anchors/`) with the backbone's authors' recipe (lr, decay) for `--steps` steps, twice
per seed: as inrkit does it and as the authors do it. Both runs share the seed (same init), so the
difference per seed isolates the departure. PSNR is always on x/255, clamped, peak 1.

Effects:
    minmax    targets x/255 vs per-image min-max (x - min)/(max - min), as WIRE, SL²A and FKAN (and now
              their inrkit image recipes) do
    linspace  cell-centre coordinates (inrkit) vs the inclusive linspace(-1, 1, N) (most authors), both
              with the recipe's targets
    lr        PSNR at each of `--lrs` (the recipe's protocol otherwise), to choose between rates

Usage:
    .venv/bin/python benchmarks/departures.py minmax sl2a
    .venv/bin/python benchmarks/departures.py linspace siren
    .venv/bin/python benchmarks/departures.py lr gauss --lrs 1e-3 2e-3 5e-3

Timings on the shared 2-core machines are noisy; only PSNR is reported.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterator
from pathlib import Path

import torch

from inrkit import FitConfig, create_model, fit, load_signal
from inrkit.inference import OutputMap
from inrkit.metrics import psnr

IMAGE = Path("/work/shared/data/kodak/kodim23.png")


def _grid(shape: tuple[int, int], inclusive: bool) -> torch.Tensor:
    axes = [torch.linspace(-1, 1, n) if inclusive else (2 * torch.arange(n) + 1) / n - 1 for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)


def run(name: str, seed: int, steps: int, size: int, *, minmax: bool | None = None, inclusive: bool = False,
        lr: float | None = None) -> float:
    """PSNR (dB, on x/255) of one full-batch fit with the chosen target and coordinate convention
    (targets: min-max when `minmax`, else x/255; None takes the backbone's recipe)."""
    signal = load_signal(IMAGE, crop=size)
    torch.manual_seed(seed)
    model = create_model(name, signal=signal)
    minmax = model.model_info.targets == "minmax" if minmax is None else minmax
    out = OutputMap((0.0, 1.0), tuple(model.target_range))  # x/255; the min-max stretch is applied below
    x = signal.targets().float()
    lo, hi = (float(x.min()), float(x.max())) if minmax else (0.0, 1.0)
    coords = _grid(signal.shape, inclusive)
    targets = out.to_model((x - lo) / (hi - lo))

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield coords, targets

    config = FitConfig(steps=steps, seed=seed, device="cpu", progress=False, eval_every=steps, lr=lr,
                       batch_size=signal.num_samples)
    fit(model, signal, config, sampler=batches())
    with torch.no_grad():
        pred = out.to_signal(model(coords)) * (hi - lo) + lo
    return float(psnr(pred.clamp(0, 1), x, data_range=1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("effect", choices=("minmax", "linspace", "lr"))
    parser.add_argument("model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 2e-3, 5e-3])
    args = parser.parse_args()
    if args.effect == "lr":
        for lr in args.lrs:
            values = [run(args.model, s, args.steps, args.size, lr=lr) for s in args.seeds]
            print(f"{args.model} lr {lr:g}: " + " / ".join(f"{v:.2f}" for v in values)
                  + f" dB, mean {statistics.mean(values):.2f}")
        return
    option = {"minmax": "minmax", "linspace": "inclusive"}[args.effect]
    diffs = []
    for seed in args.seeds:
        baseline = {"minmax": False} if args.effect == "minmax" else {}  # x/255 against min-max
        ours = run(args.model, seed, args.steps, args.size, **baseline)
        theirs = run(args.model, seed, args.steps, args.size, **{option: True})
        diffs.append(theirs - ours)
        print(f"{args.model} seed {seed}: inrkit {ours:.2f} dB, authors' {args.effect} {theirs:.2f} dB, "
              f"difference {theirs - ours:+.2f}")
    print(f"{args.model} {args.effect}: mean difference {statistics.mean(diffs):+.2f} dB over seeds {args.seeds}")


if __name__ == "__main__":
    main()
