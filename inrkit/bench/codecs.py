"""Classic codecs for rate-distortion comparisons: JPEG and WebP through Pillow, and published Kodak curves.

Published points are copied from /work/shared/reference/peers-and-numbers.md §3.4 (Kodak, 24 images
at 768x512, PSNR in RGB averaged over images). They are landmarks measured under their authors'
protocol, not like-for-like with a reduced CPU run.
"""

from __future__ import annotations

import io

import numpy as np

from ..metrics import psnr

PUBLISHED_KODAK: dict[str, dict[str, list[float] | str]] = {
    "COIN (16-bit SIREN)": {"bpp": [0.037, 0.074, 0.160, 0.307, 0.611, 1.209],
                            "psnr": [22.41, 23.21, 24.64, 26.41, 28.41, 30.64],
                            "source": "EmilienDupont/coin: results.json"},
    "COIN++": {"bpp": [0.067, 0.132, 0.266, 0.398, 0.537], "psnr": [23.68, 24.93, 26.14, 27.03, 27.80],
               "source": "EmilienDupont/coinpp: results/kodak/coinpp.json"},
    "JPEG (CompressAI)": {"bpp": [0.221, 0.327, 0.423, 0.588, 0.906], "psnr": [23.78, 26.58, 28.04, 29.78, 32.06],
                          "source": "InterDigitalInc/CompressAI: results/image/kodak/jpeg.json"},
    "JPEG2000": {"bpp": [0.126, 0.239, 0.299, 0.399, 0.599], "psnr": [26.44, 28.42, 29.19, 30.30, 32.09],
                 "source": "InterDigitalInc/CompressAI: results/image/kodak/jpeg2000.json"},
    "BPG 4:4:4": {"bpp": [0.068, 0.161, 0.352, 0.685], "psnr": [26.20, 28.68, 31.59, 34.86],
                  "source": "EmilienDupont/coin: baselines/bpg_444_x265_ycbcr.json"},
}

QUALITIES = (1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 50, 60, 75, 90)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, C) floats in [0, 1] -> uint8 RGB or greyscale, as a codec would receive it."""
    array = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    return array[..., 0] if array.shape[-1] == 1 else array[..., :3]


def codec_point(image: np.ndarray, codec: str, quality: int) -> tuple[float, float]:
    """(bpp, PSNR in dB against the 8-bit original) of one image through Pillow's JPEG or WebP.

    Example:
        >>> bpp, db = codec_point(np.random.rand(32, 32, 3), "jpeg", 50)
        >>> bpp > 0 and db > 10
        True
    """
    from PIL import Image

    original = _to_uint8(image)
    buffer = io.BytesIO()
    Image.fromarray(original).save(buffer, format=codec.upper(), quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert(Image.fromarray(original).mode))
    pixels = original.shape[0] * original.shape[1]
    ref = original.astype(np.float64) / 255
    return buffer.tell() * 8 / pixels, float(psnr(decoded.astype(np.float64) / 255, ref, data_range=1.0))


def codec_curve(images: list[np.ndarray], codec: str, qualities: tuple[int, ...] = QUALITIES) -> dict[str, list]:
    """Mean bpp and PSNR over `images` at each quality setting (CompressAI's averaging), plus per image."""
    per = [[codec_point(img, codec, q) for q in qualities] for img in images]
    return {"quality": list(qualities),
            "bpp": [float(np.mean([p[i][0] for p in per])) for i in range(len(qualities))],
            "psnr": [float(np.mean([p[i][1] for p in per])) for i in range(len(qualities))],
            "per_image": [{"bpp": [b for b, _ in p], "psnr": [d for _, d in p]} for p in per]}


def psnr_at(curve: dict[str, list], bpp: float) -> float | None:
    """A curve's PSNR at `bpp` by linear interpolation (None outside its range)."""
    xs, ys = np.asarray(curve["bpp"], dtype=float), np.asarray(curve["psnr"], dtype=float)
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if not xs[0] <= bpp <= xs[-1]:
        return None
    return float(np.interp(bpp, xs, ys))


def bd_rate(anchor: dict[str, list], test: dict[str, list]) -> float | None:
    """Bjøntegaard delta rate (%): the average bitrate change of `test` against `anchor` at equal PSNR.

    Both curves are fitted as log(bpp) against PSNR (a cubic, or lower with fewer points, as in
    VCEG-M33) and integrated over the PSNR range they share; negative means `test` needs fewer bits.
    None when the curves do not overlap in PSNR or have fewer than two points.

    Example:
        >>> jpeg = {"bpp": [0.25, 0.5, 1.0], "psnr": [25.0, 28.0, 31.0]}
        >>> round(bd_rate(jpeg, {"bpp": [0.125, 0.25, 0.5], "psnr": [25.0, 28.0, 31.0]}), 1)
        -50.0
    """
    fits = []
    for curve in (anchor, test):
        pairs = sorted({(float(d), float(b)) for b, d in zip(curve["bpp"], curve["psnr"]) if b and b > 0})
        if len(pairs) < 2:
            return None
        db, bpp = np.array([p[0] for p in pairs]), np.log(np.array([p[1] for p in pairs]))
        fits.append((np.polyfit(db, bpp, min(3, len(pairs) - 1)), db.min(), db.max()))
    low, high = max(f[1] for f in fits), min(f[2] for f in fits)
    if high <= low:
        return None
    areas = [np.diff(np.polyval(np.polyint(p), [low, high]))[0] for p, _, _ in fits]
    return float((np.exp((areas[1] - areas[0]) / (high - low)) - 1) * 100)
