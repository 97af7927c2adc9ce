"""Every backbone on the SL²A image protocol, as a Markdown table beside the published numbers.

The published table (SL²A, ICCV 2025, Table 1; notes `models-fkan-sl2a-neurbf.md` §2.4/§2.6) fits
FINER's 16 DIV2K test images at 512², each backbone at its published size (~200k-330k parameters),
501 epochs of random batches, and reports PSNR / SSIM. Only FINER's *train* split of the same kind
is available here (`/work/shared/data/images/finer_div2k/train_data/`), so absolute numbers are on
different images.

Protocols:
  --full     GPU: all 16 images at 512², each backbone at its published size (or --params), the
             recipe's lr / batch, steps = 501 epochs of that batch (the authors' schedule).
  (default)  reduced CPU protocol: --images 2, centre crops of --crop 64, --steps 120 full-batch
             steps, a matched budget (--params 20000), sized to finish in ~10 min on 2 busy cores
             (use --crop 128 --steps 300 on an idle machine); learning rates below 1e-3 are raised to 1e-3
             because the authors' 1e-4 rates are tuned for ~8k-48k steps (the test suite does the
             same for FINER).

Metrics are inrkit's (PSNR on outputs clamped to [0, 1], SSIM on the clamped image, targets /255);
the authors' PSNR is unclipped and their SSIM uses a min-max re-normalised output. Seconds per image
are training time only (FitResult.seconds).

Example:
    python benchmarks/backbones.py                      # reduced CPU protocol, ~10 min on 2 cores
    python benchmarks/backbones.py --full --device cuda # the published protocol
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from inrkit import FitConfig, InrkitError, create_model, fit, list_models, load_signal
from inrkit.utils import count_params

DATA = Path("/work/shared/data/images/finer_div2k/train_data")
OUT = Path(__file__).resolve().parent / "results" / "backbones.md"
# SL²A Table 1 (authors' project page): average PSNR / SSIM over 16 DIV2K 512² images, parameters.
PUBLISHED = {"sl2a": (36.88, 0.933, "330.2K"), "finer": (36.35, 0.924, "198.9K"), "relu_pe": (35.27, 0.916, "204.0K"),
             "gauss": (34.96, 0.914, "198.9K"), "siren": (33.47, 0.896, "198.9K"), "wire": (30.63, 0.818, "91.6K")}
# published sizes for --full without --params (None: the recipe's default model)
PUBLISHED_SIZE = {"sl2a": None, "finer": None, "relu_pe": None, "gauss": None, "siren": None, "wire": None,
                  "fkan": None, "neurbf": 330_000, "ngp": 330_000, "ffn": 200_000, "spder": None}
WANTED = ["sl2a", "finer", "relu_pe", "gauss", "siren", "wire", "fkan", "neurbf", "ngp", "ffn", "spder"]


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
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if not args.full:
        args.images, args.crop = args.images or 2, args.crop or 64
        args.steps = args.steps or 120
        args.params = 20_000 if args.params is None else args.params
    args.images = args.images or 16
    return args


def run_case(name: str, path: Path, args: argparse.Namespace) -> dict:
    sig = load_signal(path, crop=args.crop)
    torch.manual_seed(42)  # train.py's seed
    budget = args.params or (PUBLISHED_SIZE.get(name) if args.full or args.params == 0 else None)
    model = create_model(name, signal=sig, params=budget)
    config = FitConfig(seed=42, device=args.device, progress=False)
    from inrkit.models import get_entry

    recipe = get_entry(name).recipe("image")
    if args.full:
        batch = recipe.batch_size or sig.num_samples
        config.steps = args.steps or 501 * -(-sig.num_samples // batch)
    else:
        config.steps, config.batch_size = args.steps, sig.num_samples  # full batch on small crops
        config.lr = max(recipe.lr, 1e-3)
    result = fit(model, sig, config)
    return {"psnr": result.metrics["psnr"], "ssim": result.metrics.get("ssim", float("nan")),
            "seconds": result.seconds, "params": count_params(model)}


def table(rows: dict[str, list[dict]], missing: list[str], args: argparse.Namespace, argv: list[str]) -> str:
    proto = "full (published, 512²)" if args.full else (
        f"reduced CPU: {args.images} images, centre {args.crop}² crops, {args.steps} full-batch steps, "
        f"{f'{args.params:,} parameters' if args.params else 'published sizes'}, lr ≥ 1e-3")
    lines = [f"# Backbones on the SL²A image protocol ({proto})", "",
             f"Command: `python benchmarks/backbones.py {shlex.join(argv)}`".replace(" `", " `").rstrip(), "",
             f"Images: `{args.data}` (FINER's DIV2K *train* split; the paper used the test split, not available "
             f"here), first {args.images}. Device: {torch.device('cuda' if torch.cuda.is_available() else 'cpu')}; "
             f"torch {torch.__version__}. Published: SL²A Table 1, 16 test images at 512², 501 epochs.", "",
             "| model | params | PSNR (dB) | SSIM | s / image | published PSNR / SSIM (params) |",
             "|---|---|---|---|---|---|"]
    order = sorted(rows, key=lambda n: -sum(r["psnr"] for r in rows[n]) / len(rows[n]))
    for name in order:
        rs = rows[name]
        mean = {k: sum(r[k] for r in rs) / len(rs) for k in ("psnr", "ssim", "seconds")}
        pub = PUBLISHED.get(name)
        pub_s = f"{pub[0]:.2f} / {pub[1]:.3f} ({pub[2]})" if pub else "—"
        lines.append(f"| {name} | {rs[0]['params']:,} | {mean['psnr']:.2f} | {mean['ssim']:.3f} | "
                     f"{mean['seconds']:.1f} | {pub_s} |")
    if missing:
        lines += ["", f"Not run (not registered, or failed): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    images = sorted(args.data.glob("*.png"))[: args.images]
    if not images:
        sys.exit(f"no PNG images under {args.data}")
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    missing = [m for m in wanted if m not in list_models()]
    rows: dict[str, list[dict]] = {}
    for name in (m for m in wanted if m in list_models()):
        for path in images:
            t = time.time()
            try:
                row = run_case(name, path, args)
            except InrkitError as exc:  # e.g. a budget the backbone cannot reach at this crop size
                missing.append(f"{name} ({exc})")
                break
            rows.setdefault(name, []).append(row)
            print(f"{name:8s} {path.name} {row['psnr']:.2f} dB ssim {row['ssim']:.3f} "
                  f"({row['params']:,} params, {time.time() - t:.0f}s)", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table(rows, missing, args, argv))  # rewritten after each model: nothing lost
    print(args.out.read_text())


if __name__ == "__main__":
    main()
