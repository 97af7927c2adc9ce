"""Compare training recipes of the latent-grid codec on four Kodak crops, by the objective it minimises.

Each setting (LatentRecipe fields as key=value; none for the defaults) codes the 384x256 centre crops of
kodim01, 03, 05 and 07 at one fixed rate weight. A setting is judged by the encoder's own objective,
J = MSE + lambda * bpp, from the written file's size and its decoded PSNR, so settings that land at
different rates compare fairly; the table gives J per crop and the mean change against the first
setting. Two single-thread workers; about 4 minutes per two settings on a 2-core CPU.

    python benchmarks/latent_recipe.py ste_latent_scale=1 ste_latent_scale=0.1
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from multiprocessing import get_context
from pathlib import Path

import imageio.v3 as iio

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"
CROPS = ("kodim01", "kodim03", "kodim05", "kodim07")
HEIGHT, WIDTH = 256, 384


def parse_setting(text: str) -> dict:
    """"a=1,b=0.5" -> {"a": 1, "b": 0.5}, typed as LatentRecipe's defaults (booleans as 0/1); "" -> {}."""
    from inrkit.export.latent import LatentRecipe

    defaults = {f.name: getattr(LatentRecipe(), f.name) for f in fields(LatentRecipe)}
    setting = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        if key not in defaults:
            raise SystemExit(f"unknown LatentRecipe field {key!r}; fields: {', '.join(defaults)}")
        kind = type(defaults[key])
        setting[key] = value in ("1", "true") if kind is bool else int(value) if kind is int else float(value)
    return setting


def code(crop: Path, setting: dict, lam: float, steps: int, out: Path) -> tuple[float, float]:
    """(bpp, PSNR) of one crop coded with one setting."""
    import torch

    from inrkit.export.latent import LatentRecipe, encode

    torch.set_num_threads(1)
    recipe = LatentRecipe(**{"steps": steps, **setting, "lam": lam})
    stats = encode(crop, out, 16.0, recipe)
    return stats.bpp, stats.metrics["psnr"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("settings", nargs="+", help='LatentRecipe fields, e.g. "ste_from=0.9,lr=0.02"; "" for defaults')
    p.add_argument("--lam", type=float, default=0.003)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    settings = [parse_setting(s) for s in args.settings]
    with tempfile.TemporaryDirectory() as tmp:
        crops = []
        for name in CROPS:
            image = iio.imread(KODAK / f"{name}.png")
            top, left = (image.shape[0] - HEIGHT) // 2, (image.shape[1] - WIDTH) // 2
            crops.append(Path(tmp) / f"{name}.png")
            iio.imwrite(crops[-1], image[top:top + HEIGHT, left:left + WIDTH])
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
            jobs = {(i, c): pool.submit(code, crop, s, args.lam, args.steps, Path(tmp) / f"{i}-{c}.inrz")
                    for i, s in enumerate(settings) for c, crop in enumerate(crops)}
            results = {key: job.result() for key, job in jobs.items()}
    print(f"| setting | {' | '.join(f'{n}: bpp, dB, J·1e3' for n in CROPS)} | mean J·1e3 | vs first |")
    print("|---|" + "---|" * (len(CROPS) + 2))
    first = None
    for i, text in enumerate(args.settings):
        objective = [10 ** (-results[i, c][1] / 10) + args.lam * results[i, c][0] for c in range(len(CROPS))]
        mean = sum(objective) / len(objective)
        first = first or mean
        cells = [f"{results[i, c][0]:.4f}, {results[i, c][1]:.2f}, {1e3 * j:.3f}" for c, j in enumerate(objective)]
        print(f"| {text or 'defaults'} | {' | '.join(cells)} | {1e3 * mean:.4f} | {100 * (mean / first - 1):+.1f} % |")
    print(f"\nlambda {args.lam:g}, {args.steps} steps, {WIDTH}x{HEIGHT} centre crops; J = MSE + lambda * bpp "
          "(lower is better).")


if __name__ == "__main__":
    main()
