"""Rate-distortion of the latent-grid codec: every image coded at every rate weight lambda (fixed through
the fit, as Cool-chic and CompressAI's models are trained per point), then rd.json and rd.png as for
the backbone sweep (`rd.summarise`). A point's bpp is the mean file size over the images at its lambda.

Each finished (image, lambda) appends one line to `out/latent_cases.jsonl` the moment it is done, so
an interrupted sweep (Ctrl-C, a crash) keeps its finished cases, and a re-run codes only the rest.
Cases run in `workers` processes of one thread each: on a CPU, two single-thread fits beat one fit on
two threads (the per-step work is too small to split well).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from .. import progress as bars
from ..signals import load_signal
from .rd import summarise

CASES = "latent_cases.jsonl"
CAP_BPP = 16.0  # files are capped here; at the rate weights of a sweep none comes near


def _key(image: str | Path, lam: float, steps: int, seed: int) -> tuple:
    """A case's identity in the log of finished cases."""
    return str(image), float(lam), int(steps), int(seed)


def _row_key(row: dict[str, Any]) -> tuple:
    return _key(row["image"], row["lambda"], row["steps"], row["seed"])


def code_case(image: str, lam: float, steps: int, seed: int, out: str, threads: int | None,
              device: str = "auto") -> dict[str, Any]:
    """Code one image at one rate weight (`encode` with a fixed lambda); time the decode too."""
    import torch

    from ..export.latent import LatentRecipe, decode, encode

    if threads:
        torch.set_num_threads(threads)
    path = Path(out) / "inrz" / f"{Path(image).stem}-lambda{lam:g}-{steps}steps-seed{seed}.inrz"
    path.parent.mkdir(parents=True, exist_ok=True)
    stats = encode(image, path, CAP_BPP, LatentRecipe(steps=steps, lam=lam), seed=seed, device=device)
    start = time.perf_counter()
    decode(path)
    return {"image": image, "lambda": lam, "steps": steps, "seed": seed, "bytes": stats.bytes,
            "bpp": stats.bpp, **stats.metrics, "encode_seconds": stats.spec["encode_seconds"],
            "decode_seconds": time.perf_counter() - start}


def run_rd_latent(images: list[str | Path], lambdas: list[float], steps: int = 1000, out: str | Path = "rd",
                  seed: int = 0, workers: int = 1, progress: bool = True, device: str = "auto") -> dict[str, Any]:
    """Code `images` x `lambdas`; write rd.json and rd.png into `out`; return the JSON.

    Example:
        >>> rd = run_rd_latent(["kodim01.png"], [0.004, 0.001], steps=1000, out="/tmp/rd")  # doctest: +SKIP
        >>> rd["gain_db"]  # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / CASES
    done = {_row_key(r): r for r in _read(log)}
    todo = [(str(i), float(lam)) for i in images for lam in lambdas if _key(i, lam, steps, seed) not in done]
    with bars.task("latent rd", total=len(todo), progress=progress) as task:
        for row in _run(todo, steps, seed, out, workers, device):
            with log.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            done[_row_key(row)] = row
            task.advance(1, last=f"{Path(row['image']).stem} {row['bpp']:.3f} bpp {row['psnr']:.2f} dB")
    rows = [done[_key(i, lam, steps, seed)] for i in images for lam in lambdas]
    configs = [_mean(lam, [r for r in rows if r["lambda"] == float(lam)]) for lam in lambdas]
    pixels = [np.asarray(load_signal(i, "image").values) for i in images]
    protocol = {"images": [str(i) for i in images], "lambdas": [float(lam) for lam in lambdas], "steps": steps,
                "seed": seed, "codec": "latent", "device": device}
    description = (f"latent grids (Cool-chic family), {steps} steps per image and rate weight; "
                   "bpp from the file size")
    return summarise("inrkit-latent", description, protocol, configs,
                     {f"{Path(r['image']).stem}-lambda{r['lambda']:g}": r for r in rows}, pixels, out)


def _run(todo: list[tuple[str, float]], steps: int, seed: int, out: Path, workers: int, device: str):
    """Yield finished case rows, in this process (workers=1) or in single-thread worker processes."""
    if workers <= 1 or len(todo) <= 1:
        for image, lam in todo:
            yield code_case(image, lam, steps, seed, str(out), None, device)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(code_case, image, lam, steps, seed, str(out), 1, device) for image, lam in todo]
        for future in as_completed(futures):
            yield future.result()


def _read(log: Path) -> list[dict[str, Any]]:
    """The finished cases; a last line cut short by a crash is ignored (that case runs again)."""
    if not log.exists():
        return []
    rows = []
    for line in log.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _mean(lam: float, rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("bpp", "psnr", "ms_ssim", "encode_seconds", "decode_seconds")
    return {"label": f"lambda {lam:g}", "lambda": float(lam),
            **{k: float(np.mean([r[k] for r in rows])) for k in keys if all(k in r for r in rows)}}
