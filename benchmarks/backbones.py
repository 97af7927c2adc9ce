"""Every backbone on the SL²A image protocol: a thin caller of `inrkit.bench` (resumable, one report).

The published table (SL²A, ICCV 2025, Table 1; notes `models-fkan-sl2a-neurbf.md` §2.4/§2.6) fits
FINER's 16 DIV2K test images at 512², each backbone at its published size (~200k-330k parameters),
501 epochs of random batches, and reports PSNR / SSIM. Only FINER's *train* split of the same kind
is available here (`/work/shared/data/images/finer_div2k/train_data/`), so absolute numbers are on
different images; the bench report shows the published numbers in their own columns.

This script only computes the per-backbone settings a TOML spec cannot (learning-rate floors and
step counts that depend on each backbone's recipe), then calls `run_benchmark`: every finished
case is in `OUT/results.sqlite`, a re-run skips it, and `OUT/report.md` is the bench report.

Protocols:
  --full     GPU: all 16 images at 512², each backbone at its published size (or --params), the
             recipe's lr / batch, steps = 501 epochs of that batch (the authors' schedule).
  (default)  reduced CPU protocol: --images 2, centre crops of --crop 64, --steps 120 full-batch
             steps, a matched budget (--params 20000; 0 = each backbone at its published size);
             learning rates below 1e-3 are raised to 1e-3 because the authors' 1e-4 rates are tuned
             for ~8k-48k steps (the test suite does the same for FINER).

Metrics are inrkit's (PSNR on outputs clamped to [0, 1], SSIM on the clamped image, targets /255).
`seconds` is training time per image (FitResult.seconds). Seed 42 (the authors' train.py).

Example:
    python benchmarks/backbones.py                      # reduced CPU protocol, ~10 min on 2 cores
    python benchmarks/backbones.py --full --device cuda # the published protocol
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from inrkit import list_models, load_signal
from inrkit.bench import run_benchmark
from inrkit.models import get_entry

DATA = Path("/work/shared/data/images/finer_div2k/train_data")
OUT = Path(__file__).resolve().parent / "results" / "backbones"
# published sizes for --full (None: the recipe's default model is the published one)
PUBLISHED_SIZE = {"neurbf": 330_000, "ngp": 330_000, "ffn": 200_000}
WANTED = ["sl2a", "finer", "relu_pe", "gauss", "siren", "wire", "fkan", "neurbf", "ngp", "ffn", "spder"]
SEED = 42


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="the published protocol (GPU)")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--images", type=int, default=None, help="first N images (reduced: 2, full: 16)")
    p.add_argument("--crop", type=int, default=None, help="centre crop side (reduced: 64, full: none)")
    p.add_argument("--steps", type=int, default=None, help="steps per image (reduced: 120; full: 501 epochs)")
    p.add_argument("--params", type=int, default=None,
                   help="matched budget (reduced: 20000; full: published); 0 = each backbone at its published size")
    p.add_argument("--models", default=",".join(WANTED))
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=OUT, help="results folder (a bench folder)")
    args = p.parse_args(argv)
    if not args.full:
        args.images, args.crop = args.images or 2, args.crop or 64
        args.steps = args.steps or 120
        args.params = 20_000 if args.params is None else args.params
    args.images = args.images or 16
    return args


def model_entry(name: str, args: argparse.Namespace, samples: int) -> dict[str, Any]:
    """One spec entry: the backbone at this protocol's budget, learning rate and steps."""
    recipe = get_entry(name).recipe("image")
    budget = args.params or (PUBLISHED_SIZE.get(name) if args.full or args.params == 0 else None)
    if args.full:
        fit = {"steps": args.steps or 501 * -(-samples // (recipe.batch_size or samples))}
    else:  # full batch on small crops, and a learning-rate floor (see the module docstring)
        fit = {"steps": args.steps, "batch_size": samples, "lr": max(recipe.lr, 1e-3)}
    return {"name": name, "params": budget, "fit": fit}


def spec_for(args: argparse.Namespace, images: list[Path], models: list[str]) -> dict[str, Any]:
    crop = {"crop": args.crop} if args.crop else {}
    samples = load_signal(images[0], "image", **crop).num_samples
    return {"signals": [str(p) for p in images], "kind": "image", "seeds": [SEED], "device": args.device,
            "out": str(args.out), "models": [model_entry(m, args, samples) for m in models], "image": crop}


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    images = sorted(args.data.glob("*.png"))[: args.images]
    if not images:
        sys.exit(f"no PNG images under {args.data}")
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    missing = [m for m in wanted if m not in list_models()]
    if missing:
        print(f"not registered, left out: {', '.join(missing)}", file=sys.stderr)
    run = run_benchmark(spec_for(args, images, [m for m in wanted if m not in missing]))
    print((run.out / "report.md").read_text())
    print(f"{run.total} cases, {run.ran} run now, {run.errors} failed; results in {run.out}")


if __name__ == "__main__":
    main()
