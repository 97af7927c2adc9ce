"""The Signal dataclass and the per-kind plug-in record that loaders, metrics and writers hang off.

A signal is either a *grid* (image, audio, video, dense volume: values on a regular lattice whose
coordinates are computed from indices on the fly) or a set of *points* (shapes: scattered
coordinates with a target each). Models only ever see coordinates in [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..limits import check_shape

Predict = Callable[[torch.Tensor], torch.Tensor]
"""coords (N, D) in [-1, 1] -> values (N, C) in the signal's own units, computed in chunks."""



def grid_coords(shape: tuple[int, ...], index: torch.Tensor | None = None) -> torch.Tensor:
    """Cell-centre coordinates (N, D) of a grid, `ij` order, for flat indices (all when None).

    Computed from the indices, so a random batch of a large video never needs the full
    coordinate tensor in memory.

    Example:
        >>> grid_coords((2, 2))
        tensor([[-0.5000, -0.5000],
                [-0.5000,  0.5000],
                [ 0.5000, -0.5000],
                [ 0.5000,  0.5000]])
    """
    if index is None:
        index = torch.arange(int(np.prod(shape)))
    coords = []
    for n in reversed(shape):
        coords.append((2 * (index % n).float() + 1) / n - 1)
        index = torch.div(index, n, rounding_mode="floor")
    return torch.stack(coords[::-1], dim=-1)


@dataclass
class SignalInfo:
    """Everything needed to rebuild a signal's layout without its data (stored in weights files)."""

    kind: str
    shape: tuple[int, ...]
    channels: int
    data_range: tuple[float, float]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "shape": list(self.shape), "channels": self.channels,
                "data_range": list(self.data_range), "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SignalInfo:
        return cls(d["kind"], tuple(d["shape"]), int(d["channels"]), tuple(d["data_range"]), d.get("meta", {}))

    @property
    def in_features(self) -> int:
        return int(self.meta.get("in_features", len(self.shape)))


@dataclass
class Signal:
    """A signal to fit.

    Attributes:
        kind: "image", "audio", "video", "sdf", "occupancy", ...
        values: grid signals: (*shape, C); point signals: (N, C).
        data_range: (low, high) of the values, used by every metric (PSNR peak = high - low).
        points: (N, D) coordinates in [-1, 1] for point signals; None for grids.
        meta: JSON-serialisable facts (name, source, sample_rate, fps, transform, ...).
    """

    kind: str
    values: torch.Tensor
    data_range: tuple[float, float]
    points: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def is_grid(self) -> bool:
        return self.points is None

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape without channels (for point signals: the evaluation grid, if any)."""
        if self.is_grid:
            return tuple(self.values.shape[:-1])
        return tuple(self.meta.get("grid_shape", ()))

    @property
    def channels(self) -> int:
        return int(self.values.shape[-1])

    @property
    def in_features(self) -> int:
        return len(self.values.shape) - 1 if self.is_grid else int(self.points.shape[1])

    @property
    def num_samples(self) -> int:
        return int(self.values[..., 0].numel())

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.kind))

    @property
    def value_range(self) -> tuple[float, float]:
        """(min, max) of the values themselves, over all channels (the authors' min-max normalisation)."""
        if not self.values.numel():
            return tuple(self.data_range)
        seen = (id(self.values), self.values._version)  # computed once per tensor until it is changed in place
        if getattr(self, "_range_of", None) != seen:
            low, high = torch.aminmax(self.values)
            self._range, self._range_of = (low.item(), high.item()), seen
        return self._range

    @property
    def info(self) -> SignalInfo:
        meta = dict(self.meta, in_features=self.in_features, value_range=list(self.value_range))
        return SignalInfo(self.kind, self.shape, self.channels, tuple(self.data_range), meta)

    def coords(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """Coordinates (N, D) of the samples at flat `index` (all when None)."""
        if self.is_grid:
            return grid_coords(self.shape, index)
        return self.points if index is None else self.points[index]

    def targets(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """Values (N, C) at flat `index` (all when None)."""
        flat = self.values.reshape(-1, self.channels)
        return flat if index is None else flat[index]


@dataclass(frozen=True)
class Metric:
    """A number a kind reports: its name, which way is better and its unit ("dB", "" for ratios)."""

    name: str
    higher_is_better: bool = True
    unit: str = ""


Thumbnail = Callable[[np.ndarray], "np.ndarray | None"]
LossTerm = Callable[[float, float], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]


@dataclass(frozen=True)
class SignalKind:
    """Every fact about one kind of signal, in one place. Each kind module registers one.

    Everything else in inrkit (the fit loop, the CLI, the bench report, export, the model tables)
    derives what it needs from the registered kinds, so adding a kind is one module.

    Attributes:
        name: the kind's name ("image").
        suffixes: file suffixes this kind reads by default (".png"); "/" claims folders.
        load: (path, **load_options) -> Signal.
        evaluate: (predict, signal, **options) -> metrics dict (floats, or lists for per-frame values).
        render: (predict, info, **render_options) -> array in signal units.
        write: (array, info, path) -> None; writes the reconstruction file.
        extension: default suffix of the reconstruction file.
        write_suffixes: every suffix `write` can produce (empty: only `extension`); others are refused.
        coord_dims: coordinate dimension a model sees (2 for images).
        channels: the usual number of value channels (for tables of default sizes).
        data_range: (low, high) of the values as loaded.
        metrics: what `evaluate` reports, headline first, with direction and unit.
        load_options: loader options a user may set (CLI flags of `fit`/`bench`); those recorded in
            the signal's meta are replayed to reload the same grid (export, eval).
        render_options: options of `render` beyond scale/size (CLI flags of `render`).
        preview: optional (array, signal, path) -> None; a picture comparing fit and original.
        thumbnail: optional rendered array -> small (H, W, C) picture in [0, 1] for the bench gallery.
        loss: the default loss for this kind ("mse", "bce").
        loss_terms: extra loss terms this kind offers, by name: (weight, gain) -> (coords, output) -> term.
        batch_size: samples per step when neither the fit config nor the recipe sets one
            (None: the whole signal up to 2^18 samples). Long signals set it so memory stays bounded.
        progress: optional (signal, seed) -> (predict -> metrics): a cheap estimate of metrics beyond PSNR
            during a fit, on a fixed probe (shapes: IoU on a random subset of the evaluation grid); it
            drives progress displays and a target IoU.
    """

    name: str
    suffixes: tuple[str, ...]
    load: Callable[..., Signal]
    evaluate: Callable[..., dict[str, Any]]
    render: Callable[..., np.ndarray]
    write: Callable[[np.ndarray, SignalInfo, Path], None]
    extension: str
    coord_dims: int
    write_suffixes: tuple[str, ...] = ()
    channels: int = 1
    data_range: tuple[float, float] = (0.0, 1.0)
    metrics: tuple[Metric, ...] = (Metric("psnr", True, "dB"),)
    load_options: tuple[str, ...] = ()
    render_options: tuple[str, ...] = ()
    preview: Callable[[np.ndarray, Signal, Path], None] | None = None
    thumbnail: Thumbnail | None = None
    loss: str = "mse"
    loss_terms: dict[str, LossTerm] = field(default_factory=dict)
    batch_size: int | None = None
    progress: Callable[[Signal, int], Callable[[Predict], dict[str, float]]] | None = None

    @property
    def headline(self) -> str:
        """The metric shown first in progress bars and tables."""
        return self.metrics[0].name

    @property
    def writes(self) -> tuple[str, ...]:
        """The suffixes a reconstruction of this kind may be written as, the default first."""
        return (self.extension, *(s for s in self.write_suffixes if s != self.extension))

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    def replay_options(self, info: SignalInfo) -> dict[str, Any]:
        """The loader options recorded in `info.meta`, to load the same grid again."""
        return {k: info.meta[k] for k in self.load_options if info.meta.get(k) is not None}


KINDS: dict[str, SignalKind] = {}


def register_kind(kind: SignalKind) -> SignalKind:
    KINDS[kind.name] = kind
    return kind


CACHE_LIMIT = 1 << 22  # samples; a cached grid costs 4 bytes a value, so long videos are predicted again


def predict_chunks(predict: Predict, shape: tuple[int, ...],
                   chunk: int = 1 << 16) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(flat index, prediction) for consecutive pieces of a grid, so no full coordinate tensor is built.

    A `predict` carrying a `grid_cache` dict (see `inference.predictor(cache=True)`) keeps each whole
    grid it predicted, so rendering right after a final evaluation does not run the model again.
    """
    n = math.prod(check_shape(shape, "the predicted grid"))  # a last guard: callers check sizes earlier
    cache = getattr(predict, "grid_cache", None) if n <= CACHE_LIMIT else None
    cached = cache.get(tuple(shape)) if cache is not None else None
    kept = None  # one tensor for the whole grid: many kept chunks would fragment the heap and raise peak RSS
    for start in range(0, n, chunk):
        index = torch.arange(start, min(start + chunk, n))
        values = cached[start:start + chunk] if cached is not None else predict(grid_coords(shape, index)).float().cpu()
        if cache is not None and cached is None:
            kept = torch.empty(n, values.shape[-1]) if kept is None else kept
            kept[start:start + len(values)] = values
        yield index, values
    if kept is not None:
        cache[tuple(shape)] = kept


def predict_grid(predict: Predict, shape: tuple[int, ...], chunk: int = 1 << 16) -> np.ndarray:
    """Evaluate `predict` on every cell centre of `shape`, in chunks; returns (*shape, C) float32."""
    parts = [values for _, values in predict_chunks(predict, shape, chunk)]
    return torch.cat(parts).reshape(*shape, -1).numpy()
