"""Render a fitted model at any resolution and write the result in the signal's own format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import SignalError
from ..predict import predictor
from ..signals import SignalInfo, get_kind


def render(model: nn.Module, info: SignalInfo | None = None, device: str | torch.device | None = None,
           chunk_size: int = 1 << 16, **options: Any) -> np.ndarray:
    """The signal a model represents, in signal units, at any resolution.

    Args:
        model: a fitted model (from `fit` or `load`).
        info: the signal layout; the one stored with the model when None.
        device: where to run the model (its current device when None).
        chunk_size: points per forward pass.
        **options: the kind's render options, e.g. scale=2 or size=(H, W) for images.

    Example:
        >>> big = render(load("runs/astronaut-siren"), scale=2)  # doctest: +SKIP
        >>> big.shape  # doctest: +SKIP
        (256, 256, 3)
    """
    info = info or getattr(model, "inrkit_signal", None)
    if info is None:
        raise SignalError("the model carries no signal layout; pass info= or load it from a weights file")
    if device is not None:
        model.to(device)
    predict = predictor(model, info, chunk_size=chunk_size)
    return get_kind(info.kind).render(predict, info, **options)


def write_reconstruction(array: np.ndarray, info: SignalInfo, path: str | Path) -> Path:
    """Write a rendered array as the kind's file (PNG for images, WAV for audio, ...)."""
    path = Path(path)
    get_kind(info.kind).write(array, info, path)
    return path
