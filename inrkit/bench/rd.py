"""Rate-distortion sweep: fit model sizes x store at bit widths, over images, against classic codecs.

Each (image, size) is one benchmark case of the "rd" runner: fit once, then store at every bit width.
The bench runner records each case in `results.sqlite` as it finishes and skips finished ones when
the sweep is re-run. From the store, `run_rd` writes `rd.json` (CompressAI-style: {"name",
"results": {"bpp", "psnr"}} averaged per configuration, plus per image, Pillow JPEG/WebP on the
same images and the published Kodak curves) and `rd.png`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..signals import load_signal
from .case import CaseContext, fit_case, fit_row, register_runner, slug
from .codecs import PUBLISHED_KODAK, bd_rate, codec_curve, psnr_at
from .runner import BenchRun, run_benchmark
from .spec import Case
from .store import ResultStore


@register_runner("rd")
def rd_case(case: Case, context: CaseContext) -> dict[str, Any]:
    """Fit the case, then store the model at each of `case.options["bits"]`: bpp, PSNR, bytes per width."""
    import time

    from ..export.compress import compress, decompress
    from ..inference import render

    signal, result = fit_case(case, context)
    model, bits = result.model.cpu(), {}
    for b in case.options["bits"]:
        path = context.out / "inrz" / f"{slug(case.signal_name)}-{case.params}-{b}bit.inrz"
        start = time.perf_counter()
        stats = compress(model, path, bits=b, signal=signal)
        stored = time.perf_counter() - start
        start = time.perf_counter()
        render(decompress(path))  # what `inrkit decompress` does, PNG writing aside
        bits[str(b)] = {"bpp": stats.bpp, "psnr": stats.metrics["psnr"], "bytes": stats.bytes,
                        "encode_seconds": result.seconds + stored, "decode_seconds": time.perf_counter() - start,
                        **({"ms_ssim": stats.metrics["ms_ssim"]} if "ms_ssim" in stats.metrics else {})}
    return {**fit_row(result), "extra": {"bits": bits}}


def rd_spec(images: list[str | Path], model: str, params: list[int], bits: list[int], steps: int,
            lr: float | None, options: dict[str, Any], out: Path, device: str = "auto",
            seed: int = 0, recipe: str = "authors") -> dict[str, Any]:
    """The sweep as a bench spec: images x one model entry per size, one seed, the "rd" runner."""
    image = {**options, **({"lr": lr} if lr is not None else {}), "recipe": recipe}
    return {"signals": [str(p) for p in images], "kind": "image", "seeds": [seed], "steps": steps, "out": str(out),
            "device": device,
            "models": [{"name": model, "label": f"{model}-{p}", "params": p} for p in params],
            "runner": "rd", "options": {"bits": list(bits)}, "image": image}


def pareto(bpp: list[float], db: list[float]) -> tuple[list[float], list[float]]:
    """The points no other point beats on both rate and quality, by increasing bpp."""
    points = sorted(zip(bpp, db))
    front: list[tuple[float, float]] = []
    for x, y in points:
        if not front or y > front[-1][1]:
            front.append((x, y))
    return [x for x, _ in front], [y for _, y in front]


def run_rd(images: list[str | Path], model: str = "siren", params: list[int] = (2000, 4000, 8000),
           bits: list[int] = (8, 10, 12), steps: int = 500, lr: float | None = None, crop: int | None = None,
           size: int | None = None, out: str | Path = "rd", device: str = "auto", seed: int = 0,
           progress: bool = True, recipe: str = "authors") -> dict[str, Any]:
    """Sweep sizes x bit widths over images; write rd.json and rd.png into `out`; return the JSON.

    Resumable: each finished (image, size) is in `out/results.sqlite`, and a re-run fits only the rest.

    Example:
        >>> rd = run_rd(["kodim01.png"], params=[2000], bits=[8], steps=50, crop=64, out="/tmp/rd")  # doctest: +SKIP
        >>> rd["results"]["bpp"], rd["results"]["psnr"]  # doctest: +SKIP
    """
    out = Path(out)
    images = [Path(p) for p in images]
    options = {k: v for k, v in {"crop": crop, "size": size}.items() if v is not None}
    spec = rd_spec(images, model, list(params), list(bits), steps, lr, options, out, device, seed, recipe)
    run = run_benchmark(spec, progress=progress, report=False)
    cases = _per_image(run, steps)
    configs = []
    for p in params:
        for b in bits:
            rows = [c["bits"][str(b)] for c in cases if c["params"] == p]
            if rows:
                configs.append({"label": f"{p:,} params, {b} bit",
                                "params": p, "bits": b, "bpp": float(np.mean([r["bpp"] for r in rows])),
                                "psnr": float(np.mean([r["psnr"] for r in rows])),
                                **_mean_times(rows),
                                **_mean_ms_ssim(rows)})
    if not configs:
        from ..errors import InrkitError

        raise InrkitError(f"no rate-distortion case finished; see the errors in {run.out / ResultStore.FILENAME}")
    protocol = {"images": [str(p) for p in images], "crop": crop, "size": size, "steps": steps, "lr": lr,
                "recipe": recipe, "params": list(params), "bits": list(bits)}
    description = (f"{model} fitted {steps} steps per image, quantised and entropy-coded (.inrz); "
                   "bpp from the file size")
    pixels = [np.asarray(load_signal(img, "image", **options).values) for img in images]
    return summarise(f"inrkit-{model}", description, protocol, configs,
                     {c["image"] + f"-{c['params']}": c for c in cases}, pixels, out)


GAIN_RATES = (0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0)  # where the PSNR gain over each same-image codec is read


def summarise(name: str, description: str, protocol: dict[str, Any], configs: list[dict[str, Any]],
              per_image: dict[str, Any], pixels: list[np.ndarray], out: Path) -> dict[str, Any]:
    """rd.json (CompressAI layout, plus Pillow JPEG/WebP on the same images, published curves, BD-rates and
    PSNR gains at fixed rates) and rd.png, from mean-over-images points `configs`; returns the JSON."""
    configs = sorted(configs, key=lambda c: c["bpp"])
    baselines = {codec: codec_curve(pixels, codec) for codec in ("jpeg", "webp")}
    front = pareto([c["bpp"] for c in configs], [c["psnr"] for c in configs])
    result = {
        "name": name, "description": description,
        "protocol": {**protocol, "channels": pixels[0].shape[-1]},
        "results": {"bpp": [c["bpp"] for c in configs], "psnr": [c["psnr"] for c in configs],
                    **({"ms-ssim": [c["ms_ssim"] for c in configs]} if all("ms_ssim" in c for c in configs) else {})},
        "pareto": {"bpp": front[0], "psnr": front[1]},
        "configs": configs,
        "per_image": per_image,
        "baselines": {k: {"bpp": v["bpp"], "psnr": v["psnr"], "quality": v["quality"]} for k, v in baselines.items()},
        "published_kodak": PUBLISHED_KODAK,
    }
    anchors = {**{f"vs {k} (same images)": v for k, v in baselines.items()},
               **{f"vs {k} (published, full Kodak)": v for k, v in PUBLISHED_KODAK.items()}}
    result["bd_rate_percent"] = {k: bd_rate(v, result["pareto"]) for k, v in anchors.items()}
    result["at_0.3bpp"] = {"inrkit (pareto, interpolated)": psnr_at(result["pareto"], 0.3),
                           **{f"{k} (same images)": psnr_at(v, 0.3) for k, v in baselines.items()},
                           **{f"{k} (published, full Kodak)": psnr_at(v, 0.3) for k, v in PUBLISHED_KODAK.items()}}
    result["gain_db"] = {f"over {k} (same images)": {str(r): _gain(result["pareto"], v, r) for r in GAIN_RATES}
                         for k, v in baselines.items()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "rd.json").write_text(json.dumps(result, indent=1, default=_json_safe) + "\n")
    plot_rd(result, out / "rd.png")
    return result


def _gain(curve: dict[str, list], anchor: dict[str, list], bpp: float) -> float | None:
    """PSNR of `curve` minus `anchor`'s at `bpp` (None where either does not reach it)."""
    ours, theirs = psnr_at(curve, bpp), psnr_at(anchor, bpp)
    return None if ours is None or theirs is None else ours - theirs


def _mean_times(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean encode (fit + store) and decode (read + render) seconds, where the rows have them."""
    keys = ("encode_seconds", "decode_seconds")
    return {k: float(np.mean([r[k] for r in rows])) for k in keys if all(k in r for r in rows)}


def _mean_ms_ssim(rows: list[dict[str, Any]]) -> dict[str, float]:
    """{"ms_ssim": mean} when every row has one (images under 11 px have none)."""
    return {"ms_ssim": float(np.mean([r["ms_ssim"] for r in rows]))} if all("ms_ssim" in r for r in rows) else {}


def _per_image(run: BenchRun, steps: int) -> list[dict[str, Any]]:
    """One entry per finished (image, size) of this sweep, in case order and rd.json's layout."""
    return [{"image": r["signal_name"], "params": r["config"]["params"], "steps": steps, "seconds": r["seconds"],
             "float_psnr": r["metrics"]["psnr"], "bits": r["extra"]["bits"]} for r in run.rows()]


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


def plot_rd(result: dict[str, Any], path: Path) -> None:
    """PSNR against bpp: the sweep (all points and its Pareto front), JPEG/WebP, published Kodak curves."""
    from ..plotting import subplots

    fig, ax = subplots(figsize=(7, 5))
    ax.scatter(result["results"]["bpp"], result["results"]["psnr"], s=12, alpha=0.4, color="C0")
    ax.plot(result["pareto"]["bpp"], result["pareto"]["psnr"], "o-", color="C0", label=f"{result['name']} (this run)")
    for i, (codec, curve) in enumerate(result["baselines"].items()):
        ax.plot(curve["bpp"], curve["psnr"], "s-", ms=3, color=f"C{i + 1}",
                label=f"{codec.upper()} (Pillow, same images)")
    for i, (name, curve) in enumerate(result["published_kodak"].items()):
        ax.plot(curve["bpp"], curve["psnr"], "--", color=f"C{i + 3}", alpha=0.7, label=f"{name} (published, Kodak)")
    top = max(1.3, max(result["results"]["bpp"]) * 1.1)
    ax.set_xlim(0, top)
    ax.set_xlabel("bits per pixel (from file size)")
    colour = {1: "grey", 2: "grey + alpha", 4: "RGBA"}.get(result["protocol"].get("channels", 3), "RGB")
    ax.set_ylabel(f"PSNR (dB, {colour})")
    images = result["protocol"]["images"]
    subject = Path(images[0]).stem if len(images) == 1 else f"{len(images)} images"
    ax.set_title(f"rate-distortion: {result['name'].removeprefix('inrkit-')} on {subject}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
