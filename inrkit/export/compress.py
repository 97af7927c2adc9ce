"""`compress(model, path)` -> an .inrz file and its true size; `decompress(path)` -> the model.

Sizes come from the file written, so bits per parameter and bpp are what a user would store or send.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, ExportError
from ..signals import Signal, SignalInfo, get_kind, load_signal
from ..utils import count_params
from .inrz import check_finite, decode, encode, read_bytes
from .quantize import QuantSpec


@dataclass
class CompressStats:
    """What `compress` wrote and how good the stored model is.

    Attributes:
        path: the .inrz file.
        bytes: its size on disk.
        params: real-number parameters of the model (complex counted twice).
        bits_per_param: bytes * 8 / params.
        samples: samples of the signal (pixels, audio samples, voxels), None if unknown.
        bpp: bytes * 8 / samples (bits per pixel / sample / voxel).
        spec: the quantisation used.
        metrics: the stored (quantised) model's metrics against the signal, when one was given.
        float_metrics: the float model's metrics against the same signal (before QAT, if any).
        coders: how many tensors each entropy coder won.
        origin: {"seed", "tensors"} when weights are stored as changes from the seeded init, else None.
    """

    path: str
    bytes: int
    params: int
    bits_per_param: float
    samples: int | None
    bpp: float | None
    spec: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    float_metrics: dict[str, Any] = field(default_factory=dict)
    coders: dict[str, int] = field(default_factory=dict)
    origin: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def num_samples(info: SignalInfo | None) -> int | None:
    """Samples the bpp is counted over: grid cells of the fitted signal (pixels, samples, voxels)."""
    if info is None or not info.shape:
        return None
    return int(math.prod(info.shape))


def resolve_signal(model: nn.Module, signal: Signal | str | Path | None) -> Signal | None:
    """The signal to judge a model against: the one given, else the file its weights name, if still there.

    A file named by the weights is only used when it loads at the fitted shape (with the crop/size
    options the loader recorded), so a quality figure is never against a different signal.
    """
    info = getattr(model, "signal_info", None)
    if isinstance(signal, Signal):
        return signal
    if signal is not None:
        options = get_kind(info.kind).replay_options(info) if info is not None else {}
        return load_signal(signal, info.kind if info is not None else None, **options)
    source = info.meta.get("source") if info is not None else None
    if not source or not Path(source).exists():
        return None
    loaded = load_signal(source, info.kind, **(get_kind(info.kind).replay_options(info) if info is not None else {}))
    return loaded if tuple(loaded.shape) == tuple(info.shape) else None



def compress(model: nn.Module, path: str | Path, bits: int | None = 8, *, per_channel: bool = False,
             prune: float = 0.0, buffer_bits: int | None = 16, signal: Signal | str | Path | None = None,
             qat_steps: int = 0, qat_lr: float | None = None, seed: int = 0,
             origin_seed: int | None = None) -> CompressStats:
    """Quantise, entropy-code and write `model` as one .inrz file.

    Args:
        model: a fitted model (from `fit`, `load` or `decompress`); it is not changed.
        path: the .inrz file to write.
        bits: weight bit width (2-16), or None for float16.
        per_channel: one scale per output channel instead of per tensor.
        prune: fraction of each weight matrix's smallest weights set to zero.
        buffer_bits: bit width of non-trained float buffers (None: float16).
        signal: the signal (or its file) for quality figures and QAT; the file the model names if None.
        qat_steps: quantisation-aware fine-tuning steps (straight-through rounding) before storing.
        qat_lr: QAT learning rate (default: a tenth of the backbone's recipe).
        seed: seed of the QAT sampler.
        origin_seed: the seed the model's initialisation was drawn with, if known (`inrkit fit --seed`):
            weights are coded as their change from it where that is smaller; the same stored values.

    Example:
        >>> import tempfile
        >>> from inrkit import FitConfig, create_model, fit, load_signal
        >>> sig = load_signal("data/astronaut.png", crop=16)
        >>> model = fit(create_model("siren", signal=sig), sig, FitConfig(steps=50, progress=False)).model
        >>> stats = compress(model, Path(tempfile.mkdtemp()) / "astronaut.inrz", bits=8, signal=sig)
        >>> stats.bytes == Path(stats.path).stat().st_size, stats.bytes < 4 * stats.params
        (True, True)
        >>> abs(stats.metrics["psnr"] - stats.float_metrics["psnr"]) < 1  # 8 bits cost little
        True
    """
    from ..inference import evaluate

    check_inrz_name(path)
    spec = QuantSpec(bits, per_channel, prune, buffer_bits)
    check_finite(model)  # before evaluating, fine-tuning or quantising: NaN weights have no stored form
    target = resolve_signal(model, signal)
    float_metrics = evaluate(model, target) if target is not None else {}
    if qat_steps > 0:
        if target is None:
            raise ExportError("--qat-steps needs the signal: pass it with --signal (signal=...)")
        from .qat import finetune_quantized

        model = finetune_quantized(model, target, spec, qat_steps, lr=qat_lr, seed=seed)
    data, _ = encode(model, spec, origin_seed)
    stats = measure(model, data, spec, target, str(path))
    write_atomic(path, data)
    stats.float_metrics = float_metrics
    return stats


def measure(model: nn.Module, data: bytes, spec: QuantSpec, target: Signal | None,
            path: str = "<bytes>") -> CompressStats:
    """The stats of .inrz bytes `data` (encoded from `model`) as if written to `path`: size, bpp, quality."""
    from ..inference import evaluate
    from .inrz import parse

    stored = decode(data, path)
    metrics = evaluate(stored, target) if target is not None else {}
    samples = num_samples(getattr(model, "signal_info", None))
    params = count_params(model)
    header, coders = parse(data)[0], {}
    for entry in header["tensors"]:
        coders[entry[1]] = coders.get(entry[1], 0) + 1
    moved = sum(entry[0] == "qu" for entry in header["tensors"])
    origin = {"seed": header["origin"]["seed"], "tensors": moved} if moved else None
    size = len(data)
    return CompressStats(path, size, params, size * 8 / max(params, 1), samples,
                         size * 8 / samples if samples else None, asdict(spec), metrics, {}, coders, origin)


def check_inrz_name(path: str | Path) -> None:
    """Refuse, before any work, a file name that is not *.inrz: an .inrz under another suffix (m.png)
    would be mistaken for that format."""
    path = Path(path)
    if path.suffix.lower() != ".inrz":
        raise ConfigError(f"{path}: this writes an .inrz file; name it e.g. {path.with_suffix('.inrz')}")


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file, so a failure never leaves a partial file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def decompress(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model stored in an .inrz file; `render(model)` then needs nothing else.

    Example:
        >>> import tempfile
        >>> from inrkit import create_model, load_signal, render
        >>> path = Path(tempfile.mkdtemp()) / "astronaut.inrz"
        >>> _ = compress(create_model("siren", signal=load_signal("data/astronaut.png"), hidden_features=16), path)
        >>> render(decompress(path), scale=2).shape
        (256, 256, 3)
    """
    from ..utils import resolve_device

    return decode(read_bytes(path), str(path)).to(resolve_device(device))
