"""Video: MP4/AVI/MOV/MKV/GIF files or a folder of frames as (T, H, W, C) values in [0, 1].

Frames are decoded one at a time (PyAV through imageio) and only the ones asked for are kept, so
taking 16 frames of a long clip never holds the whole clip. Coordinates are (t, y, x) cell centres
in [-1, 1], computed from indices per batch; evaluation and rendering go frame by frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .. import metrics
from ..errors import MissingDependency, SignalError
from ..limits import check_shape
from ..utils import require
from .base import Metric, Predict, Signal, SignalInfo, SignalKind, predict_chunks, register_kind
from .image import SUFFIXES as IMAGE_SUFFIXES
from .image import check_factor, ms_ssim_entry, resize_values, to_unit_range
from .image import declared_shape as image_shape
from .sniff import VIDEO_FORMATS, expect_format

SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".gif", "/")
WRITES = (".mp4", ".mov", ".mkv", ".avi", ".gif")  # H.264 containers and GIF (WebM cannot hold H.264)
DEFAULT_FPS = 25.0


def parse_size(size: object) -> tuple[int, int] | None:
    """'64x150', 64, (64, 150) -> (H, W); None stays None."""
    if size is None:
        return None
    try:
        if isinstance(size, str):
            parts = tuple(int(p) for p in size.lower().split("x"))
        elif isinstance(size, int):
            parts = (size, size)
        else:
            parts = tuple(int(p) for p in size)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise SignalError(f"cannot read frame size {size!r}; write it as HxW, e.g. 64x150") from None
    if len(parts) != 2 or min(parts) < 2:
        raise SignalError(f"frame size must be HxW with both sides at least 2, got {size!r}")
    return parts  # type: ignore[return-value]


def _frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise SignalError(f"{folder}: folder holds no image frames ({' '.join(IMAGE_SUFFIXES)})")
    return files


def _decode(path: Path) -> tuple[Iterator[np.ndarray], float]:
    """An iterator over the frames of a file or folder, and its frame rate."""
    import imageio.v3 as iio

    if path.is_dir():
        return (iio.imread(f) for f in _frame_files(path)), DEFAULT_FPS
    plugin = "pillow" if path.suffix.lower() == ".gif" else "pyav"
    if plugin == "pyav":
        require("av", extra="video", feature="video")
    try:
        meta = iio.immeta(path, plugin=plugin)
        fps = float(meta.get("fps") or (1000.0 / meta["duration"] if meta.get("duration") else DEFAULT_FPS))
        return iio.imiter(path, plugin=plugin), fps
    except Exception as exc:  # PyAV/Pillow raise many types for unknown codecs and broken containers
        raise _decode_error(path, exc) from exc


def declared_shape(path: Path) -> tuple[int | None, int, int]:
    """(frames, H, W) from a container's header, a GIF's or the first frame of a folder; frames None if unknown.

    Nothing is decoded, so a clip declaring a huge size is refused before it can fill memory.
    """
    if path.is_dir() or path.suffix.lower() == ".gif":
        files = _frame_files(path) if path.is_dir() else [path]
        try:
            shape = image_shape(files[0])
        except Exception as exc:  # Pillow raises many types for broken files
            raise _decode_error(files[0], exc) from exc
        return (len(files), *shape[-2:]) if path.is_dir() else shape if len(shape) == 3 else (1, *shape)
    av = require("av", extra="video", feature="video")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            count = stream.frames or (round(float(container.duration / 1e6 * stream.average_rate))
                                      if container.duration and stream.average_rate else None)
            return count or None, int(stream.codec_context.height), int(stream.codec_context.width)
    except Exception as exc:  # no video stream, a broken container
        raise _decode_error(path, exc) from exc


def _check_size(path: Path, start: int, stride: int, count: int | None, size: tuple[int, int] | None) -> None:
    """Refuse, from the header, a frame too large to decode or a kept clip over the sample limit."""
    total, h, w = declared_shape(path)
    check_shape((h, w), f"{path}: a frame", SignalError)
    if total is not None and stride > max(1, total - start):
        raise SignalError(f"{path}: --stride {stride} is longer than the clip ({total} frames from frame {start})")
    kept = count if count is not None else (None if total is None else max(1, -(-(total - start) // stride)))
    if kept is not None:
        check_shape((kept, *(size or (h, w))), f"{path}: the video (frames × height × width kept)", SignalError)


def _decode_error(path: Path, exc: Exception) -> SignalError:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return SignalError(f"{path}: cannot decode video (unsupported codec, corrupt or not a video): {first}")


def _to_frame(raw: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    frame, _ = to_unit_range(raw[..., None] if raw.ndim == 2 else raw)
    if frame.shape[-1] == 4 and frame[..., 3].min() >= 1.0:  # opaque RGBA (GIFs): the alpha carries nothing
        frame = frame[..., :3]
    if size is not None and tuple(frame.shape[:2]) != size:
        frame = resize_values(frame, size)
    return frame


def _select(path: Path, frames: Iterator[np.ndarray], start: int, stride: int, count: int | None,
            size: tuple[int, int] | None) -> list[np.ndarray]:
    """Frames start, start + stride, ... (count of them, or to the end), stopping early once enough."""
    kept: list[np.ndarray] = []
    first_shape, seen = None, 0
    try:
        for i, raw in enumerate(frames):
            seen = i + 1
            if first_shape is None:
                first_shape = raw.shape
            elif raw.shape != first_shape:
                raise SignalError(f"{path}: frames differ in size ({first_shape[:2]} then {raw.shape[:2]} "
                                  f"at frame {i}); pass a size to resize them all")
            if i >= start and (i - start) % stride == 0:
                kept.append(_to_frame(raw, size))
                # the header may not say how many frames there are: the limit holds as they come
                check_shape((len(kept), *kept[0].shape[:2]), f"{path}: the video (frames × height × width kept)",
                            SignalError)
                if count is not None and len(kept) == count:
                    break
    except SignalError:
        raise
    except Exception as exc:
        raise _decode_error(path, exc) from exc
    if seen == 0:
        raise SignalError(f"{path}: no decodable frames")
    if not kept or (count is not None and len(kept) < count):
        want = f"{count} frames" if count is not None else "frames"
        raise SignalError(f"{path}: asked for {want} from frame {start} with stride {stride}, "
                          f"but the clip has only {seen} frames")
    return kept


def load_video(path: str | Path, frames: int | None = None, stride: int = 1, size: object = None,
               start: int = 0, **_: object) -> Signal:
    """Read a video file or a folder of frames into a Signal of kind "video": (T, H, W, C) in [0, 1].

    Args:
        path: an MP4/AVI/MOV/MKV/WebM/GIF file, or a folder of same-sized image frames (sorted by name).
        frames: how many frames to keep (all when None).
        stride: keep every `stride`-th frame (the frame rate in meta is divided accordingly).
        size: resize every frame to "HxW", (H, W) or N (anti-aliased).
        start: index of the first frame to keep.

    Example:
        >>> import tempfile
        >>> import imageio.v3 as iio
        >>> path = Path(tempfile.mkdtemp()) / "clip.gif"
        >>> frames = np.stack([np.full((32, 48, 3), 40 * k, np.uint8) for k in range(6)])
        >>> iio.imwrite(path, frames, duration=100, loop=0)  # 10 frames per second
        >>> sig = load_video(path, frames=2, stride=2, size="16x24")
        >>> sig.values.shape, sig.meta["fps"]
        (torch.Size([2, 16, 24, 3]), 5.0)
    """
    path = Path(path)
    for name, value, low in (("frames", frames, 1), ("stride", stride, 1), ("start", start, 0)):
        if value is not None and (not isinstance(value, int) or value < low):
            raise SignalError(f"{name} must be an integer >= {low}, got {value!r}")
    if not path.is_dir():
        expect_format(path, VIDEO_FORMATS, "a video")
    _check_size(path, start, stride, frames, parse_size(size))
    iterator, fps = _decode(path)
    kept = _select(path, iterator, start, stride, frames, parse_size(size))
    values = torch.from_numpy(np.stack(kept))
    if values.shape[0] < 1 or min(values.shape[1:3]) < 2:
        raise SignalError(f"{path}: frames of {tuple(values.shape[1:3])} pixels are too small to fit")
    meta = {"name": path.name if path.is_dir() else path.stem, "source": str(path), "fps": fps / stride,
            "start": start, "stride": stride, "frames": int(values.shape[0])}
    if size is not None:
        meta["size"] = list(values.shape[1:3])
    return Signal("video", values, (0.0, 1.0), meta=meta)


def predict_frames(predict: Predict, shape: tuple[int, int, int]) -> Iterator[np.ndarray]:
    """The frames of a (T, H, W) grid one by one, so memory holds one frame of coordinates at a time."""
    _, h, w = shape
    for _, frame in predict_chunks(predict, shape, chunk=h * w):
        yield frame.numpy().reshape(h, w, -1)


def evaluate_video(predict: Predict, signal: Signal, **_: object) -> dict[str, object]:
    """Mean PSNR (peak 1), SSIM and MS-SSIM over frames, the overall MSE and the PSNR of every frame.

    MS-SSIM is per frame, as for images (fewer scales below 161 px, recorded as "ms_ssim_scales").
    """
    span = signal.data_range[1] - signal.data_range[0]
    frame_psnr, frame_ssim, frame_ms, sq = [], [], [], 0.0
    for k, pred in enumerate(predict_frames(predict, signal.shape)):
        pred, target = np.clip(pred, *signal.data_range), signal.values[k].numpy()
        err = metrics.mse(pred, target)
        sq += err
        frame_psnr.append(metrics.psnr_from_mse(err, span))
        if min(signal.shape[1:]) >= 7:
            frame_ssim.append(metrics.ssim(pred, target, span))
        frame_ms.append(ms_ssim_entry(pred, target, span))
    out: dict[str, object] = {"psnr": float(np.mean(frame_psnr)), "mse": sq / len(frame_psnr)}
    if frame_ssim:
        out["ssim"] = float(np.mean(frame_ssim))
    if frame_ms and frame_ms[0]:
        out.update(frame_ms[0], ms_ssim=float(np.mean([m["ms_ssim"] for m in frame_ms])))
    out["psnr_frames"] = [round(p, 4) for p in frame_psnr]
    return out


def output_shape(info: SignalInfo, fps: float | None = None, frames: int | None = None,
                 size: object = None, scale: float | None = None) -> tuple[int, int, int]:
    """(T, H, W) to render: same duration at `fps` or with `frames` frames; `size` or `scale` in space."""
    t, h, w = info.shape
    if frames is not None and fps is not None:
        raise SignalError("give either frames or fps, not both")
    if fps is not None:
        t = max(1, round(t * check_factor(fps, "fps") / info.meta.get("fps", DEFAULT_FPS)))
    elif frames is not None:
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise SignalError(f"frames must be an integer of at least 1, got {frames!r}")
        t = frames
    if size is not None:
        size = tuple(size)[-2:] if not isinstance(size, (str, int)) else size  # a 3-D size keeps its H, W
        h, w = parse_size(size)
    elif scale is not None:
        scale = check_factor(scale, "scale")
        h, w = max(2, round(h * scale)), max(2, round(w * scale))
    return check_shape((t, h, w), "the rendered video")  # type: ignore[return-value]


def render_video(predict: Predict, info: SignalInfo, fps: float | None = None, frames: int | None = None,
                 size: object = None, scale: float | None = None, **_: object) -> np.ndarray:
    """The clip at any frame count (temporal super-resolution) and frame size, clamped to [0, 1].

    Example:
        >>> from inrkit import create_model, load_signal, render
        >>> sig = load_signal(np.zeros((4, 8, 8, 3), np.float32), kind="video")  # at 25 fps
        >>> model = create_model("siren", signal=sig, hidden_features=16)
        >>> render(model, fps=50).shape  # twice the frames, same duration
        (8, 8, 8, 3)
        >>> render(model, frames=2, size="16x12").shape
        (2, 16, 12, 3)
    """
    shape = output_shape(info, fps, frames, size, scale)
    out = np.empty((*shape, info.channels), dtype=np.float32)
    for k, frame in enumerate(predict_frames(predict, shape)):
        out[k] = np.clip(frame, *info.data_range)
    return out


def fps_of(array: np.ndarray, info: SignalInfo) -> float:
    """The frame rate of a rendered clip: it spans the source's duration whatever its frame count."""
    return float(info.meta.get("fps", DEFAULT_FPS)) * array.shape[0] / info.shape[0]


def write_video(array: np.ndarray, info: SignalInfo, path: Path) -> None:
    """MP4 (H.264; odd sides padded by one edge pixel, as yuv420p needs even sizes) or GIF, 8-bit."""
    import imageio.v3 as iio

    ints = np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
    if ints.shape[-1] == 1:
        ints = np.repeat(ints, 3, axis=-1)
    ints = ints[..., :3]
    fps = fps_of(array, info)
    try:
        if path.suffix.lower() == ".gif":
            iio.imwrite(path, ints, duration=1000.0 / fps, loop=0)
            return
        pad = ((0, 0), (0, ints.shape[1] % 2), (0, ints.shape[2] % 2), (0, 0))
        require("av", extra="video", feature="writing MP4")
        # MP4 stores the rate as a fraction: anything under 1/1000 fps rounds to a zero denominator
        iio.imwrite(path, np.pad(ints, pad, mode="edge"), plugin="pyav", codec="libx264",
                    fps=max(round(fps, 3), 1e-3))
    except MissingDependency:
        raise
    except Exception as exc:
        raise SignalError(f"{path}: cannot write video: {exc}") from exc


def preview_video(array: np.ndarray, signal: Signal, path: Path, count: int = 6, title: str | None = None) -> None:
    """A strip of evenly spaced frames: original (top row) over the fit (bottom row), with frame PSNRs.

    `title` (e.g. "siren on bikes") heads the figure; the signal's name is used when None.
    """
    from ..plotting import subplots

    target = signal.values.numpy()
    picks = np.unique(np.linspace(0, len(target) - 1, min(count, len(target))).round().astype(int))
    h, w = target.shape[1:3]
    fig, axes = subplots(2, len(picks), figsize=(2.6 * len(picks) * w / max(h, w) + 0.5, 5.2 * h / max(h, w) + 0.6),
                             squeeze=False)
    for col, k in enumerate(picks):
        fitted = array[round(k * (len(array) - 1) / max(1, len(target) - 1))]
        for row, img in enumerate((target[k], fitted)):
            ax = axes[row, col]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img[..., :3], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
        if array.shape[1:] == target.shape[1:]:
            axes[1, col].set_xlabel(f"{metrics.psnr(np.clip(fitted, 0, 1), target[k], 1.0):.1f} dB")
        axes[0, col].set_title(f"frame {k}")
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("fit")
    fig.suptitle(f"{title or signal.name}: {len(target)} frames of {w}×{h}, PSNR per frame (dB)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


VIDEO = register_kind(SignalKind(
    name="video", suffixes=SUFFIXES, load=load_video, evaluate=evaluate_video, render=render_video,
    write=write_video, extension=".mp4", write_suffixes=WRITES, coord_dims=3, channels=3, data_range=(0.0, 1.0),
    metrics=(Metric("psnr", True, "dB"), Metric("ssim"), Metric("ms_ssim"), Metric("mse", False)),
    load_options=("frames", "stride", "size", "start"), render_options=("fps", "frames"), preview=preview_video,
    batch_size=1 << 14,
))
