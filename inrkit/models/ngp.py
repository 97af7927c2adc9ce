"""Instant-NGP: multi-resolution hash encoding + tiny MLP (Müller et al., SIGGRAPH 2022, arXiv 2201.05989).

Follows the paper and `NVlabs/instant-ngp` / `NVlabs/tiny-cuda-nn` configs: L = 16 levels of F = 2
features, base resolution 16, growth factor chosen so the finest level matches the signal's finest
detail, tables of T entries (2^19 for SDF/NeRF; the gigapixel demo uses 2^24), entries U(±1e-4),
then an MLP with two hidden ReLU layers of width 64 and a linear output; Adam lr 1e-2.

Departures, and why:
- Pure PyTorch (`grids.HashGrid`), no CUDA kernels, so it runs on CPU; much slower than
  tiny-cuda-nn's fused kernels (~1k steps/s on an RTX 4090 for the image demo), say so when timing.
- Grid vertices span [-1, 1] with `res` vertices per axis (align-corners style) instead of NGP's
  half-cell offset; T need not be a power of two (the budget knob `hashmap_size` is solved exactly).
- MLP weights keep PyTorch's default init (tiny-cuda-nn's fused MLP uses its own uniform init and
  has no biases). Adam takes NGP's betas (0.9, 0.99) and eps 1e-15; the recipes' steps are inrkit's
  (2,000: the paper trains each task to a time budget).
- The finest resolution defaults to the signal's longest side (the paper sets it per scene).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Backbone
from .grids import HashGrid
from .registry import Recipe, register_model

DEFAULT_FINEST = {1: 16384, 2: 512, 3: 2048}


def _finest(**extra: Any):
    """A recipe `model` function: the finest level at the signal's longest side."""

    def model(info: Any) -> dict[str, Any]:
        if info is None or not info.shape:
            return dict(extra)
        return {**extra, "finest_resolution": int(max(info.shape[: info.in_features]))}

    return model


_ADAM = dict(betas=(0.9, 0.99), eps=1e-15)  # the paper's Adam settings
RECIPES = {
    "image": Recipe(_finest(), lr=1e-2, lr_decay=0.1, **_ADAM, source="Instant-NGP paper (lr, Adam)"),
    "audio": Recipe(_finest(), lr=1e-2, lr_decay=0.1, **_ADAM, source="inrkit: the image setting"),
    "video": Recipe(_finest(), lr=1e-2, lr_decay=0.1, **_ADAM, source="inrkit: the image setting"),
    "sdf": Recipe(dict(finest_resolution=2048), lr=1e-2, lr_decay=0.1, **_ADAM, source="Instant-NGP paper (lr, Adam)"),
    "occupancy": Recipe(dict(finest_resolution=1024), lr=1e-2, lr_decay=0.1, loss="bce", **_ADAM,
                        source="inrkit: the SDF setting"),
}


@register_model("ngp", summary="multi-resolution hash grid + tiny ReLU MLP (pure PyTorch)",
                paper="Müller et al., SIGGRAPH 2022 (Instant-NGP)", recipes=RECIPES, width_arg="hashmap_size",
                fast={"image": 3, "audio": 3, "video": 3, "occupancy": 10, "sdf": 1})
class InstantNGP(Backbone):
    """Hash-grid encoding followed by a small ReLU MLP.

    Args:
        in_features: coordinate dimension (1, 2 or 3).
        out_features: output channels.
        hashmap_size: entries T per hashed level (the parameter-budget knob).
        levels: number of resolution levels L.
        features_per_level: features F per entry.
        base_resolution: vertices per axis of the coarsest level.
        finest_resolution: vertices per axis of the finest level (None: 512 in 2-D, 16384 in 1-D, 2048 in 3-D).
        hidden_features: MLP width.
        hidden_layers: hidden ReLU layers of the MLP.

    Example:
        >>> InstantNGP(2, 3, hashmap_size=4096)(torch.zeros(5, 2)).shape
        torch.Size([5, 3])
    """

    target_range = (0.0, 1.0)

    def __init__(self, in_features: int, out_features: int, hashmap_size: int = 2**19, levels: int = 16,
                 features_per_level: int = 2, base_resolution: int = 16, finest_resolution: int | None = None,
                 hidden_features: int = 64, hidden_layers: int = 2) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        finest = finest_resolution or DEFAULT_FINEST.get(in_features, 512)
        self.encoding = HashGrid(in_features, levels, features_per_level, hashmap_size, base_resolution, finest)
        layers: list[nn.Module] = [nn.Linear(self.encoding.out_features, hidden_features), nn.ReLU()]
        for _ in range(hidden_layers - 1):
            layers += [nn.Linear(hidden_features, hidden_features), nn.ReLU()]
        layers.append(nn.Linear(hidden_features, out_features))
        self.mlp = nn.Sequential(*layers)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.encoding(coords))
