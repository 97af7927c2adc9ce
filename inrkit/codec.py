"""An image codec from INRs: `encode_image` fits, quantises and codes an image into one .inrz file at a
target bpp; `decode_image` renders it back.

The network is sized from the target: the parameter budget is the bit budget divided by the bits a
parameter costs after the search (about 6), so a fit of the right size is then stored by
`search_compress(target_bpp=...)`, which picks width, per-channel scales, pruning and QAT. A target
the stored file cannot meet leaves no file and names the nearest point reached.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, ExportError, InrkitError
from .export.compress import CompressStats

BITS_PER_PARAM = 6.0  # what the search typically stores a parameter in (benchmarks/results/weights_bits.md)
MIN_SIDE = 8  # below this the header alone is most of the file, and MS-SSIM/SSIM windows do not fit


@dataclass
class CodecResult:
    """What `encode_image` wrote.

    Attributes:
        stats: the .inrz file's stats (true size, bpp, stored PSNR and the float model's).
        model: the backbone used.
        params: its parameter count.
        steps: fit steps.
        encode_seconds: wall time of fit + search + write.
    """

    stats: CompressStats
    model: str
    params: int
    steps: int
    encode_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def budget_for(bpp: float, pixels: int, bits_per_param: float = BITS_PER_PARAM) -> int:
    """Parameters a file of `bpp` bits per pixel can hold.

    Example:
        >>> budget_for(0.3, 768 * 512)
        19660
    """
    return int(bpp * pixels / bits_per_param)


def encode_image(image: str | Path, out: str | Path, bpp: float, *, model: str = "siren", steps: int = 300,
                 qat_steps: int = 100, seed: int = 0, device: str = "auto", progress: bool = False) -> CodecResult:
    """Fit `model` to `image` at a size that fits `bpp`, store it within `bpp`, write `out`.

    Example:
        >>> result = encode_image("data/astronaut.png", "/tmp/a.inrz", bpp=4, steps=20)  # doctest: +SKIP
        >>> result.stats.bpp <= 4  # doctest: +SKIP
        True
    """
    from . import FitConfig, fit, load_signal
    from .export.search import search_compress

    if not bpp > 0 or not math.isfinite(bpp):
        raise ConfigError(f"--bpp must be above 0, got {bpp:g}")
    start = time.perf_counter()
    signal = load_signal(image, "image")
    height, width = signal.shape
    if min(height, width) < MIN_SIDE:
        raise ConfigError(f"{image}: {height}x{width} is too small to code (each side needs {MIN_SIDE} pixels)")
    net = _sized(model, signal, budget_for(bpp, height * width), bpp)
    result = fit(net, signal, FitConfig(steps=steps, seed=seed, device=device, progress=progress))
    stats = search_compress(result.model.cpu(), out, target_bpp=bpp, signal=signal, qat_steps=qat_steps, seed=seed)
    return CodecResult(stats, model, stats.params, steps, time.perf_counter() - start)


def _sized(model: str, signal: Any, params: int, bpp: float) -> Any:
    """The `model` network nearest `params` parameters from below (widths are integers, so budgets are
    matched within 5% by the registry: a slightly smaller budget is tried when the nearest is too far)."""
    from . import create_model

    for factor in (1.0, 0.95, 0.9, 0.85, 0.8):
        try:
            return create_model(model, signal=signal, params=max(int(params * factor), 1), recipe="fast")
        except InrkitError as exc:
            reason = exc
    raise ExportError(f"{bpp:g} bpp holds {params:,} parameters of {model}, too few for any network of it "
                      f"({reason}); raise --bpp")


def decode_image(path: str | Path, out: str | Path | None = None) -> tuple[np.ndarray, Path]:
    """Render the image stored in an .inrz file and write it (PNG by default); returns (pixels, path).

    Example:
        >>> pixels, written = decode_image("/tmp/a.inrz")  # doctest: +SKIP
    """
    from .export import decompress
    from .inference import render, write_reconstruction

    path = Path(path)
    model = decompress(path)
    info = model.signal_info
    if info is None or info.kind != "image":
        raise ExportError(f"{path}: holds no image (kind {getattr(info, 'kind', None)!r}); use `inrkit decode`")
    array = render(model, info)
    target = Path(out) if out is not None else path.with_suffix(".png")
    temporary = target.with_name(f".{target.stem}.partial{target.suffix}")
    try:
        write_reconstruction(array, info, temporary)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    return array, target
