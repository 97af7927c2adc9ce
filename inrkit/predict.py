"""From model outputs to signal units, and the metrics of a model against a signal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .signals import Signal, SignalInfo, get_kind
from .signals.base import Predict
from .utils import resolve_device


@dataclass(frozen=True)
class OutputMap:
    """Linear map between a signal's data range and the range a model is trained in.

    With a BCE loss the model's output is a logit and targets stay as they are ({0, 1} occupancy).
    """

    data_range: tuple[float, float]
    target_range: tuple[float, float]
    loss: str = "mse"

    @classmethod
    def of(cls, model: nn.Module, info: SignalInfo) -> OutputMap:
        loss = model.inrkit_config.get("loss") or get_kind(info.kind).loss
        return cls(tuple(info.data_range), tuple(getattr(model, "target_range", (-1.0, 1.0))), loss)

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


def predictor(model: nn.Module, info: SignalInfo | None = None, device: str | torch.device | None = None,
              chunk_size: int = 1 << 16) -> Predict:
    """A function coords -> values in signal units, run in chunks without gradients.

    Example:
        >>> predict = predictor(model, signal.info)  # doctest: +SKIP
        >>> predict(signal.coords()).shape  # doctest: +SKIP
        torch.Size([16384, 3])
    """
    info = info or model.inrkit_signal
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

    return predict


def evaluate(model: nn.Module, signal: Signal, device: str | torch.device | None = None,
             chunk_size: int = 1 << 16, **options: Any) -> dict[str, Any]:
    """Metrics of a fitted model against a signal (PSNR/SSIM for images, IoU for shapes, ...).

    Example:
        >>> evaluate(result.model, signal)["psnr"]  # doctest: +SKIP
        31.2
    """
    if device is not None:
        model.to(resolve_device(device))
    return get_kind(signal.kind).evaluate(predictor(model, signal.info, chunk_size=chunk_size), signal, **options)
