"""Images: PNG/JPEG/TIFF/EXR (grey, RGB, RGBA; 8/16-bit or float) as (H, W, C) values in [0, 1]."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from .. import metrics
from ..errors import ConfigError, InrkitError, SignalError
from ..limits import check_shape
from ..utils import require
from .base import Metric, Predict, Signal, SignalInfo, SignalKind, predict_grid, register_kind
from .sniff import IMAGE_FORMATS, expect_format, sniff

SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp", ".webp")


def _read(path: Path) -> np.ndarray:
    """Decode an image, after checking from its header alone that it is an image of a size inrkit accepts."""
    found = expect_format(path, IMAGE_FORMATS, "an image")
    if path.suffix.lower() == ".exr" or found == "EXR":
        OpenEXR = require("OpenEXR", extra="exr", feature="EXR")  # noqa: N806

        with OpenEXR.File(str(path), header_only=True) as f:
            low, high = f.header()["dataWindow"]
        check_shape((int(high[1] - low[1] + 1), int(high[0] - low[0] + 1)), f"{path}: the image", SignalError)
        with OpenEXR.File(str(path)) as f:
            channels = f.channels()
            if "RGBA" in channels or "RGB" in channels:
                return channels["RGBA" if "RGBA" in channels else "RGB"].pixels
            planes = [channels[k].pixels for k in sorted(channels)]
            return np.stack(planes, axis=-1)
    check_shape(declared_shape(path), f"{path}: the image", SignalError)
    with pillow_limit_lifted():
        return iio.imread(path)


def declared_shape(path: Path) -> tuple[int, ...]:
    """(H, W), or (frames, H, W) for an animation, read from the file's header without decoding pixels.

    Example:
        >>> declared_shape(Path("data/astronaut.png"))
        (128, 128)
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with pillow_limit_lifted(), Image.open(path) as im:
            width, height = im.size
            frames = int(getattr(im, "n_frames", 1))
    except UnidentifiedImageError:
        if sniff(path) != "TIFF":
            raise
        return _tiff_shape(path)  # float and other TIFFs Pillow cannot open: imageio reads them with tifffile
    return (height, width) if frames == 1 else (frames, height, width)


def _tiff_shape(path: Path) -> tuple[int, ...]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        return tuple(int(n) for n, axis in zip(series.shape, series.axes) if axis != "S")  # S: colour samples


@contextmanager
def pillow_limit_lifted() -> Iterator[None]:
    """Pillow's own bomb check (a warning past 89 M pixels, an error past 179 M) gives way to inrkit's.

    inrkit's limit (`limits.check_shape`, from the header) is checked first and has an override, so
    Pillow's fixed one would only refuse, or warn about, images the user has allowed.
    """
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def to_unit_range(array: np.ndarray) -> tuple[np.ndarray, dict]:
    """Map integer or float pixels to float32 in [0, 1]; float data outside [0, 1] is min-max scaled.

    Returns the array and the facts needed to undo the mapping (`bit_depth`, `value_offset`, `value_scale`).
    """
    if array.dtype == bool:
        return array.astype(np.float32), {"bit_depth": 1}
    if np.issubdtype(array.dtype, np.integer):
        bits = 16 if array.dtype.itemsize >= 2 else 8
        return (array.astype(np.float64) / (2**bits - 1)).astype(np.float32), {"bit_depth": bits}
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise SignalError("image holds NaN or infinite values")
    lo, hi = float(array.min()), float(array.max())
    if lo >= 0 and hi <= 1:
        return array, {"bit_depth": 32}
    scale = hi - lo if hi > lo else 1.0
    return (array - lo) / scale, {"bit_depth": 32, "value_offset": lo, "value_scale": scale}


def load_image(path: str | Path, crop: int | tuple[int, int] | None = None,
               size: int | tuple[int, int] | None = None, **_: object) -> Signal:
    """Read an image file into a Signal of kind "image" with values (H, W, C) in [0, 1].

    `crop` (N or (H, W)) keeps the centre; `size` then resizes (anti-aliased), so CPU benchmarks stay small.

    Example:
        >>> sig = load_image("data/astronaut.png")
        >>> sig.values.shape, sig.data_range
        (torch.Size([128, 128, 3]), (0.0, 1.0))
    """
    path = Path(path)
    try:
        array = _read(path)
    except InrkitError:  # already one clear line (a bomb refused, a missing package, a misnamed file)
        raise
    except Exception as exc:  # imageio raises many types for corrupt or truncated files
        raise SignalError(f"{path}: cannot read as an image (corrupt, truncated or unsupported): "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] > 4:
        raise SignalError(f"{path}: expected a single grey/RGB/RGBA image, got array of shape {array.shape} "
                          "(animated or multi-page? fit it as --kind video)")
    if min(array.shape[:2]) < 2:
        raise SignalError(f"{path}: image of {array.shape[0]}x{array.shape[1]} pixels is too small to fit")
    values, facts = to_unit_range(array)
    values = _crop_resize(values, crop, size, path)
    meta = {"name": path.stem, "source": str(path), **facts}
    meta.update({k: v for k, v in (("crop", crop), ("size", size)) if v is not None})  # to reload the same grid
    return Signal("image", torch.from_numpy(np.ascontiguousarray(values)), (0.0, 1.0), meta=meta)


def _crop_resize(values: np.ndarray, crop: object, size: object, path: Path) -> np.ndarray:
    """Centre crop to `crop` then resize to `size` (each N or (H, W)); None leaves the image as it is."""
    def pair(v: object) -> tuple[int, int]:
        h, w = (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[misc]
        if h < 2 or w < 2:
            raise SignalError(f"{path}: crop/size must be at least 2 pixels, got {v!r}")
        return int(h), int(w)

    if crop is not None:
        h, w = pair(crop)
        top, left = max(0, (values.shape[0] - h) // 2), max(0, (values.shape[1] - w) // 2)
        values = values[top:top + h, left:left + w]
    if size is not None:
        values = resize_values(values, pair(size))
    return values


def resize_values(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) float pixels resized to `size`: bilinear, anti-aliased when shrinking (as Pillow's filter).

    Torch does it, so loading with `size` needs no optional package.

    Example:
        >>> resize_values(np.ones((8, 6, 3), np.float32), (4, 3)).shape
        (4, 3, 3)
    """
    x = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).permute(2, 0, 1)[None]
    y = torch.nn.functional.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return y[0].permute(1, 2, 0).clamp(float(values.min()), float(values.max())).numpy()


def evaluate_image(predict: Predict, signal: Signal, **_: object) -> dict[str, float]:
    """PSNR (peak 1), SSIM and MS-SSIM of the clamped prediction on the image's own grid.

    MS-SSIM uses five scales from 161 px on the short side; smaller images use the scales they have
    room for (see `metrics.ms_ssim`) and record the count as "ms_ssim_scales"; under 11 px it is left out.
    """
    pred = np.clip(predict_grid(predict, signal.shape), *signal.data_range)
    target = signal.values.numpy()
    span = signal.data_range[1] - signal.data_range[0]
    out = {"psnr": metrics.psnr(pred, target, span), "mse": metrics.mse(pred, target)}
    if min(signal.shape) >= 7:
        out["ssim"] = metrics.ssim(pred, target, span)
    out.update(ms_ssim_entry(pred, target, span))
    return out


def ms_ssim_entry(pred: np.ndarray, target: np.ndarray, span: float) -> dict[str, float]:
    """{"ms_ssim": ...} (and "ms_ssim_scales" when fewer than five fit), or {} for images under 11 px."""
    scales = metrics.ms_ssim_scales(*target.shape[:2])
    if scales == 0:
        return {}
    out = {"ms_ssim": metrics.ms_ssim(pred, target, span)}
    if scales < len(metrics.MS_SSIM_WEIGHTS):
        out["ms_ssim_scales"] = scales
    return out


def output_shape(shape: tuple[int, ...], scale: float | None = None,
                 size: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The grid shape to render: an explicit size, or the fitted shape times `scale`."""
    if size is not None:
        if len(size) != len(shape):
            raise ConfigError(f"size {tuple(size)} does not fit a signal of {len(shape)} dimensions")
        return check_shape(tuple(size), "the rendered image")
    scale = 1.0 if scale is None else check_factor(scale, "scale")
    return check_shape(tuple(max(1, round(n * scale)) for n in shape), "the rendered image")


def check_factor(value: float, name: str) -> float:
    """A finite number above 0 (a scale, a rate): NaN or infinity would give no size at all.

    Example:
        >>> check_factor(2, "scale")
        2.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a finite number above 0, got {value!r}")
    return float(value)


def render_image(predict: Predict, info: SignalInfo, scale: float | None = None,
                 size: tuple[int, int] | None = None, **_: object) -> np.ndarray:
    """The image at any resolution (scale=2 doubles each side), clamped to [0, 1]."""
    shape = output_shape(info.shape, scale, size)
    return np.clip(predict_grid(predict, shape), *info.data_range)


def write_image(array: np.ndarray, info: SignalInfo, path: Path) -> None:
    """PNG/TIFF (16-bit for 16-bit grey sources, else 8-bit), or EXR with the original float range restored."""
    array = np.clip(array, 0, 1)
    if path.suffix.lower() == ".exr":
        OpenEXR = require("OpenEXR", extra="exr", feature="EXR")  # noqa: N806

        values = array * info.meta.get("value_scale", 1.0) + info.meta.get("value_offset", 0.0)
        names = {1: "Y", 3: "RGB", 4: "RGBA"}.get(array.shape[-1], "Y")
        pixels = values.astype(np.float32) if names != "Y" else values[..., 0].astype(np.float32)
        with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                          {names: np.ascontiguousarray(pixels)}) as f:
            f.write(str(path))
        return
    # Pillow writes 16-bit PNG/TIFF only for single-channel images; colour goes out at 8 bits.
    sixteen = (info.meta.get("bit_depth", 8) > 8 and array.shape[-1] == 1
               and path.suffix.lower() in (".png", ".tif", ".tiff"))
    ints = np.round(array * (65535 if sixteen else 255)).astype(np.uint16 if sixteen else np.uint8)
    iio.imwrite(path, ints[..., 0] if ints.shape[-1] == 1 else ints)


def preview_image(array: np.ndarray, signal: Signal, path: Path, title: str | None = None) -> None:
    """Original | reconstruction | absolute error (×10) as three equal panels, PSNR and SSIM in the titles.

    `title` (e.g. "siren on astronaut") heads the figure; the signal's name is used when None.
    """
    from ..plotting import subplots

    target = signal.values.numpy()
    err = np.abs(array - target).mean(-1)
    span = signal.data_range[1] - signal.data_range[0]
    db = metrics.psnr(np.clip(array, *signal.data_range), target, span)
    # A fourth, thin column holds the colour bar, so the error panel keeps the others' size.
    fig, axes = subplots(1, 4, figsize=(12.4, 4.6), gridspec_kw={"width_ratios": [1, 1, 1, 0.05]})
    grey = target.shape[-1] == 1
    for ax, img, label in zip(axes, (target, array), ("original", f"reconstruction, PSNR {db:.2f} dB")):
        ax.imshow(img[..., 0] if grey else img[..., :3], cmap="gray", vmin=0, vmax=1)
        ax.set_title(label)
    im = axes[2].imshow(np.clip(err * 10, 0, 1), cmap="inferno", vmin=0, vmax=1)
    axes[2].set_title(f"|error| × 10 (PSNR {db:.2f} dB)")
    fig.colorbar(im, cax=axes[3], label=f"|error| × 10, {'grey' if grey else 'mean over RGB'}")
    for ax in axes[:3]:
        ax.axis("off")
    h, w = target.shape[:2]
    fig.suptitle(f"{title or signal.name} ({w}×{h} {'grey' if grey else 'RGB'})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


IMAGE = register_kind(SignalKind(
    name="image", suffixes=SUFFIXES, load=load_image, evaluate=evaluate_image, render=render_image,
    write=write_image, extension=".png", write_suffixes=SUFFIXES, coord_dims=2, channels=3, data_range=(0.0, 1.0),
    metrics=(Metric("psnr", True, "dB"), Metric("ssim"), Metric("ms_ssim"), Metric("mse", False)),
    load_options=("crop", "size"), preview=preview_image,
))
