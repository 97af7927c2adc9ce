"""An image codec from INRs: `encode_image` fits, quantises and codes an image into one .inrz file at a
target bpp; `decode_image` renders it back.

By default the image is coded with latent grids (`export/latent.py`: the best rate-distortion here,
benchmarks/results/rd_kodak/). With a backbone name instead, the network is sized from the target:
the parameter budget is the bit budget divided by the bits a parameter costs after the search (about
6), so a fit of the right size is then stored by `search_compress(target_bpp=...)`, which picks
width, per-channel scales, pruning and QAT. A target the stored file cannot meet leaves no file and
names the nearest point reached.
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
from .limits import check_codable

LATENT = "latent"  # the latent-grid codec (inrkit/export/latent.py); any other name is a registry backbone
BITS_PER_PARAM = 6.0  # what the search typically stores a parameter in (benchmarks/results/weights_bits.md)


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


def encode_image(image: str | Path, out: str | Path, bpp: float, *, model: str = LATENT, steps: int | None = None,
                 qat_steps: int = 100, seed: int = 0, device: str = "auto", progress: bool = False) -> CodecResult:
    """Code `image` into `out` within `bpp`: with latent grids (the default), or by fitting a backbone
    `model` at a size that fits `bpp` and storing it with the weight search.

    Example:
        >>> result = encode_image("data/astronaut.png", "/tmp/a.inrz", bpp=4, steps=20)  # doctest: +SKIP
        >>> result.stats.bpp <= 4  # doctest: +SKIP
        True
    """
    from . import FitConfig, fit, load_signal
    from .export.compress import check_inrz_name
    from .export.search import search_compress

    if not bpp > 0 or not math.isfinite(bpp):
        raise ConfigError(f"--bpp must be above 0, got {bpp:g}")
    check_inrz_name(out)  # here, not only in the writer: a backbone is fitted for minutes before it writes
    start = time.perf_counter()
    if model == LATENT:
        from .export.latent import LatentRecipe, encode

        recipe = LatentRecipe(**({"steps": steps} if steps else {}))
        stats = encode(image, out, bpp, recipe, seed=seed, progress=progress, device=device)
        return CodecResult(stats, model, stats.params, recipe.steps, time.perf_counter() - start)
    steps = steps or 300
    signal = load_signal(image, "image")
    height, width = signal.shape
    check_codable(image, height, width)
    net = _sized(model, signal, budget_for(bpp, height * width), bpp, seed)
    result = fit(net, signal, FitConfig(steps=steps, seed=seed, device=device, progress=progress))
    stats = search_compress(result.model.cpu(), out, target_bpp=bpp, signal=signal, qat_steps=qat_steps, seed=seed,
                            origin_seed=seed)
    return CodecResult(stats, model, stats.params, steps, time.perf_counter() - start)


def _sized(model: str, signal: Any, params: int, bpp: float, seed: int) -> Any:
    """The `model` network nearest `params` parameters from below (widths are integers, so budgets are
    matched within 5% by the registry: a slightly smaller budget is tried when the nearest is too far),
    initialised under `seed` so that the file can code its weights as changes from that init."""
    from . import create_model
    from .export.origin import seeded

    for factor in (1.0, 0.95, 0.9, 0.85, 0.8):
        try:
            with seeded(seed):
                return create_model(model, signal=signal, params=max(int(params * factor), 1), recipe="fast")
        except InrkitError as exc:
            reason = exc
    raise ExportError(f"{bpp:g} bpp holds {params:,} parameters of {model}, too few for any network of it "
                      f"({reason}); raise --bpp")


def decode_image(path: str | Path, out: str | Path | None = None) -> tuple[np.ndarray, Path]:
    """Decode the image stored in an .inrz file (either codec) and write it (PNG by default);
    returns (pixels, path).

    Example:
        >>> pixels, written = decode_image("/tmp/a.inrz")  # doctest: +SKIP
    """
    from .inference import check_output, write_reconstruction
    from .signals.base import SignalInfo

    path = Path(path)
    target = Path(out) if out is not None else path.with_suffix(".png")
    check_output(target, "image")
    if _is_latent(path):
        from .export.latent import decode

        array = decode(path)
        info = SignalInfo("image", array.shape[:2], array.shape[2], (0.0, 1.0))
    else:
        array, info = _render_inrz(path)
    temporary = target.with_name(f".{target.stem}.partial{target.suffix}")
    try:
        write_reconstruction(array, info, temporary)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    return array, target


def _is_latent(path: Path) -> bool:
    from .export.latent import MAGIC

    try:
        with path.open("rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False  # the .inrz reader names what is wrong with the path


def _render_inrz(path: Path) -> tuple[np.ndarray, Any]:
    from .export import decompress
    from .inference import render

    model = decompress(path)
    info = model.signal_info
    if info is None or info.kind != "image":
        raise ExportError(f"{path}: holds no image (kind {getattr(info, 'kind', None)!r}); use `inrkit decode`")
    return render(model, info), info
