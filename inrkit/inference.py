"""Everything that runs a fitted model: outputs to signal units, chunked prediction, metrics, rendering."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, ModelError, SignalError
from .signals import Signal, SignalInfo, get_kind
from .signals.base import Predict
from .utils import resolve_device


@dataclass(frozen=True)
class OutputMap:
    """Linear map between a span of signal values and the range a model is trained in.

    The span is the signal's data range, or its own minimum and maximum for a model built to normalise
    each signal that way (`ModelInfo.targets == "minmax"`, from its recipe; the signal's `value_range`
    is kept in its SignalInfo, so a saved model reads its output back the same way). With a BCE loss the
    model's output is a logit and targets stay as they are ({0, 1} occupancy).

    Example:
        >>> OutputMap((0.25, 0.75), (-1.0, 1.0)).to_model(torch.tensor([0.25, 0.5, 0.75])).tolist()
        [-1.0, 0.0, 1.0]
    """

    data_range: tuple[float, float]
    target_range: tuple[float, float]
    loss: str = "mse"

    @classmethod
    def of(cls, model: nn.Module, info: SignalInfo) -> OutputMap:
        record = getattr(model, "model_info", None)
        loss = record.loss if record is not None else get_kind(info.kind).loss
        return cls(_source_span(record, info, loss), tuple(model.target_range), loss)

    @property
    def gain(self) -> float:
        """Model units per signal unit."""
        (lo, hi), (a, b) = self.data_range, self.target_range
        return 1.0 if self.loss == "bce" else (b - a) / (hi - lo)

    def to_model(self, values: torch.Tensor) -> torch.Tensor:
        if self.loss == "bce":
            return values
        return (values - self.data_range[0]) * self.gain + self.target_range[0]

    def to_signal(self, output: torch.Tensor) -> torch.Tensor:
        if self.loss == "bce":
            return torch.sigmoid(output)
        return (output - self.target_range[0]) / self.gain + self.data_range[0]


def _source_span(record: Any, info: SignalInfo, loss: str) -> tuple[float, float]:
    """The signal values that map onto the target range: the data range, or min..max for a min-max recipe."""
    if record is None or loss != "mse" or record.targets != "minmax":
        return tuple(info.data_range)
    low, high = info.meta.get("value_range") or info.data_range
    return (float(low), float(high)) if high > low else tuple(info.data_range)  # a flat signal: nothing to stretch


def predictor(model: nn.Module, info: SignalInfo | None = None, device: str | torch.device | None = None,
              chunk_size: int = 1 << 16, cache: bool = False) -> Predict:
    """A function coords -> values in signal units, run in chunks without gradients.

    With `cache=True` it remembers every whole grid it predicts (`grid_cache`), so an evaluation and
    a rendering of the same grid run the model once; use it only while the weights do not change.

    Example:
        >>> from inrkit import create_model, load_signal
        >>> signal = load_signal("data/astronaut.png")
        >>> predict = predictor(create_model("siren", signal=signal, hidden_features=16), signal.info)
        >>> predict(signal.coords()).shape
        torch.Size([16384, 3])
    """
    info = info or getattr(model, "signal_info", None)
    if info is None:
        raise SignalError("the model carries no signal layout; pass info= (e.g. signal.info)")
    out_map = OutputMap.of(model, info)
    dev = resolve_device(device) if device is not None else next(model.parameters()).device

    def predict(coords: torch.Tensor) -> torch.Tensor:
        was_training = model.training
        model.eval()
        parts = []
        with torch.no_grad():
            for piece in coords.split(chunk_size):
                parts.append(out_map.to_signal(model(piece.to(dev)).float()).cpu())
        model.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, info.channels)

    if cache:
        predict.grid_cache = WeightsCache(model)  # type: ignore[attr-defined]
    return predict


class WeightsCache(dict):
    """Grids predicted by one model, forgotten as soon as any of its tensors changes in place.

    Every in-place change (an optimiser step, `load_state_dict`, `fill_`) bumps a tensor's version
    counter, so comparing the counters tells whether a cached prediction is still the model's.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.stamp = self._stamp()

    def _stamp(self) -> tuple[int, ...]:
        return tuple(t._version for t in (*self.model.parameters(), *self.model.buffers()))

    def get(self, key: Any, default: Any = None) -> Any:
        if self._stamp() != self.stamp:
            self.clear()
            self.stamp = self._stamp()
        return super().get(key, default)


def evaluate(model: nn.Module, signal: Signal, device: str | torch.device | None = None,
             chunk_size: int = 1 << 16, predict: Predict | None = None, **options: Any) -> dict[str, Any]:
    """Metrics of a fitted model against a signal (PSNR/SSIM for images, IoU for shapes, ...).

    `predict` replaces the model's own predictor (e.g. a caching one from `predictor(cache=True)`).

    Example:
        >>> from inrkit import FitConfig, create_model, fit, load_signal
        >>> signal = load_signal("data/astronaut.png", crop=16)
        >>> result = fit(create_model("siren", signal=signal), signal, FitConfig(steps=50, progress=False))
        >>> metrics = evaluate(result.model, signal)
        >>> metrics["psnr"] > 30, metrics["ssim"] > 0.9
        (True, True)
    """
    if device is not None:
        model.to(resolve_device(device))
    predict = finite_only(predict or predictor(model, signal.info, chunk_size=chunk_size))
    return get_kind(signal.kind).evaluate(predict, signal, **options)


NOT_FINITE = "the model's output is not finite (NaN or infinite weights?)"


def finite_only(predict: Predict) -> Predict:
    """`predict` that refuses NaN or infinite outputs: metrics of such a model would be NaN, or worse,
    plausible (an IoU counts NaN as outside). A kept grid (`grid_cache`) stays with it."""

    def checked(coords: torch.Tensor) -> torch.Tensor:
        values = predict(coords)
        if not bool(torch.isfinite(values).all()):
            raise ModelError(NOT_FINITE)
        return values

    if hasattr(predict, "grid_cache"):
        checked.grid_cache = predict.grid_cache  # type: ignore[attr-defined]
    return checked


def render(model: nn.Module, info: SignalInfo | None = None, device: str | torch.device | None = None,
           chunk_size: int = 1 << 16, predict: Predict | None = None, **options: Any) -> np.ndarray:
    """The signal a model represents, in signal units, at any resolution.

    Args:
        model: a fitted model (from `fit` or `load`).
        info: the signal layout; the one stored with the model when None.
        device: where to run the model (its current device when None).
        chunk_size: points per forward pass.
        predict: a predictor to use instead of the model's own (e.g. `FitResult.predict`, which has
            kept the grid of the final evaluation).
        **options: the kind's render options, e.g. scale=2 or size=(H, W) for images.

    Example:
        >>> from inrkit import create_model, load_signal
        >>> model = create_model("siren", signal=load_signal("data/astronaut.png"), hidden_features=16)
        >>> render(model, scale=2).shape  # the model knows its signal's layout (so does a loaded one)
        (256, 256, 3)
        >>> render(model, size=(48, 64)).shape
        (48, 64, 3)
    """
    info = info or getattr(model, "signal_info", None)
    if info is None:
        raise SignalError("the model carries no signal layout; pass info= or load it from a weights file")
    if not info.shape or any(not isinstance(n, int) or n < 1 for n in info.shape):
        raise SignalError(f"the model's signal has an invalid shape {list(info.shape)}; nothing to render")
    if device is not None:
        model.to(device)
    predict = predict or predictor(model, info, chunk_size=chunk_size)
    array = get_kind(info.kind).render(predict, info, **options)  # each kind checks its output size first
    if not np.isfinite(array).all():
        raise ModelError(f"{NOT_FINITE}; nothing rendered")
    return array


def write_reconstruction(array: np.ndarray, info: SignalInfo, path: str | Path) -> Path:
    """Write a rendered array as the kind's file (PNG for images, WAV for audio, ...)."""
    path = check_output(path, info.kind)
    get_kind(info.kind).write(array, info, path)
    return path


def check_output(path: str | Path, kind: str) -> Path:
    """Refuse, before any work, an output file the kind cannot write or the system will not take.

    The suffix must be one the kind writes (no TIFF bytes under `.xyz`); the path must not be a
    folder; its folder must exist and take a new file (a probe file is created and removed).

    Example:
        >>> check_output("render.png", "image")
        PosixPath('render.png')
        >>> check_output("render.xyz", "image")
        Traceback (most recent call last):
        ...
        inrkit.errors.ConfigError: render.xyz: an image reconstruction cannot be written as '.xyz'; use one of .png ...
    """
    path = Path(path)
    writes = get_kind(kind).writes
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; name the file to write, e.g. {path / ('render' + writes[0])}")
    if path.suffix.lower() not in writes:
        suffix = repr(path.suffix) if path.suffix else "a file without a suffix"
        raise ConfigError(f"{path}: {'an' if kind[0] in 'aeiou' else 'a'} {kind} reconstruction cannot be written as "
                          f"{suffix}; use one of {' '.join(writes)}")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: the folder {path.parent} does not exist")
    _probe_writable(path)
    return path


def _probe_writable(path: Path) -> None:
    """Open the file for writing without changing it (a new one is removed again), so a refusal comes first."""
    try:
        if path.exists():
            with open(path, "ab"):
                pass
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
            path.unlink()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write there ({exc.strerror or exc})") from None
