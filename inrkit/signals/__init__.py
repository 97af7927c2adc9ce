"""File or array -> Signal. Each kind module registers how it is loaded, judged, rendered and written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import SignalError

# Importing a kind's module registers it; registration order is listing order (and first claim on a suffix).
# isort: off
from . import image  # noqa: F401  (registers the kind)
from . import audio, video  # noqa: F401  (register their kinds)
from . import shape  # noqa: F401  (registers occupancy and sdf)
# isort: on
from .base import KINDS, Metric, Signal, SignalInfo, SignalKind, grid_coords, predict_grid, register_kind

__all__ = ["KINDS", "Metric", "Signal", "SignalInfo", "SignalKind", "get_kind", "grid_coords", "load_signal",
           "predict_grid", "register_kind"]


def get_kind(name: str) -> SignalKind:
    """The registered kind called `name`; unknown names fail with the list of known ones."""
    if name not in KINDS:
        raise SignalError(f"unknown signal kind {name!r}; known kinds: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def detect_kind(path: Path) -> str:
    """The kind whose suffixes claim this file (first registered wins)."""
    if path.is_dir():
        claims = [k.name for k in KINDS.values() if "/" in k.suffixes]
        if claims:
            return claims[0]
        raise SignalError(f"{path}: is a directory, not a signal file")
    suffix = path.suffix.lower()
    for kind in KINDS.values():
        if suffix in kind.suffixes:
            return kind.name
    known = sorted({s for k in KINDS.values() for s in k.suffixes if s != "/"})
    raise SignalError(f"{path}: unsupported file type {suffix or '(no suffix)'!r}; supported: {' '.join(known)}")


def load_signal(source: str | Path | np.ndarray | torch.Tensor, kind: str | None = None, **options) -> Signal:
    """Load a file (or wrap an array) as a Signal.

    Args:
        source: a path, or an array shaped like the kind's values ((H, W, C) for images).
        kind: force a kind ("image", "audio", "video", "sdf", "occupancy"); detected from the suffix when None.
        **options: passed to the kind's loader (e.g. frames=16 for video).

    Example:
        >>> sig = load_signal("data/astronaut.png")
        >>> sig.kind, sig.shape
        ('image', (128, 128))
    """
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return _from_array(source, kind or "image")
    path = Path(source)
    if not path.exists():
        raise SignalError(f"{path}: no such file")
    kind_name = kind or detect_kind(path)
    return get_kind(kind_name).load(path, **options)


def _from_array(array: np.ndarray | torch.Tensor, kind: str) -> Signal:
    """Wrap values shaped like the kind's grid ((H, W) or (H, W, C) for images) with the kind's range."""
    facts = get_kind(kind)
    values = torch.as_tensor(np.asarray(array, dtype=np.float32) if isinstance(array, np.ndarray) else array).float()
    if values.ndim == facts.coord_dims:  # one channel, written without its axis
        values = values[..., None]
    if values.ndim != facts.coord_dims + 1:
        raise SignalError(f"a {kind} array needs {facts.coord_dims} grid axes and a channel axis, "
                          f"got shape {tuple(values.shape)}")
    lo, hi = facts.data_range
    if values.numel() == 0 or not torch.isfinite(values).all():
        raise SignalError("array is empty or holds NaN/inf values")
    if float(values.min()) < lo or float(values.max()) > hi:
        raise SignalError(f"array values must lie in [{lo}, {hi}] for kind {kind!r}")
    return Signal(kind, values, (lo, hi), meta={"name": "array"})
