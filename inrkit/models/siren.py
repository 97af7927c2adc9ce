"""SIREN: sinusoidal representation networks (Sitzmann et al., NeurIPS 2020, arXiv 2006.09661).

Follows `vsitzmann/siren` (modules.py, explore_siren.ipynb): every layer but the last is
sin(omega_0 · (W x + b)) with omega_0 multiplying the bias too; the first layer's weights are
U(±1/n), the hidden *and the last linear layer's* weights U(±sqrt(6/n)/omega_0); biases keep
PyTorch's default. Targets are fitted in [-1, 1], as the authors normalise them ((x/255 - 0.5)/0.5
for images, x/max|x| for audio: load audio with `normalize=True` for the latter).

Recipes (experiment_scripts/, training.py): Adam at a constant 1e-4, MSE, no schedule.
- image (train_img.py): 256 × 3 hidden, 10,000 steps, each on the whole image.
- audio (train_audio.py): 256 × 3 hidden, first-layer frequency 3000, 9,001 steps on the whole clip.
- video (train_video.py): 1024 × 3 hidden, 100,000 steps of 0.38% of the voxels (`sample_frac`).
- sdf / occupancy: the authors' SDF script fits oriented point clouds with its own four-term loss
  (train_sdf.py); only its network and lr carry over to inrkit's sampled values, for 2,000 steps.

Departures:
- Audio: the authors scale coordinates to [-100, 100]; inrkit keeps coordinates in [-1, 1] and sets
  first_omega_0 = 3000 instead, as the authors' Colab does (equal weights, but the first-layer bias
  is scaled by 3000 rather than 30).
- Coordinates are cell centres ((2i + 1)/N - 1) where the authors use the inclusive grid
  2i/(N - 1) - 1 (`get_mgrid`): the signal spans N/(N - 1) times less of the first layer's input
  (1.6% at 64 pixels, 6.7% on a 16-frame time axis). Measured on the 64² kodim23 crop, 300
  full-batch steps, seeds 0/1/2: cell centres 47.94 / 48.11 / 47.81 dB, inclusive grid 48.14 / 48.48 /
  47.94 dB, +0.23 dB on average for the authors' grid (`python benchmarks/departures.py linspace siren`).
  Beside the authors' code (`benchmarks/results/authors_cpu.md`) the mean over three seeds is within
  0.1 dB at 64² and 256² all the same.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Backbone
from .layers import SineLayer, siren_uniform_
from .registry import Recipe, register_model


def _sine_mlp(in_features: int, hidden_features: int, hidden_layers: int, out_features: int,
              first_omega_0: float, hidden_omega_0: float) -> nn.Sequential:
    layers = [SineLayer(in_features, hidden_features, first_omega_0, is_first=True)]
    layers += [SineLayer(hidden_features, hidden_features, hidden_omega_0) for _ in range(hidden_layers)]
    last = nn.Linear(hidden_features, out_features)
    siren_uniform_(last.weight, hidden_features, hidden_omega_0, is_first=False)
    return nn.Sequential(*layers, last)


@register_model(
    "siren",
    summary="sine MLP, omega_0 scaling and the authors' uniform init",
    paper="Sitzmann et al., NeurIPS 2020",
    recipes={
        "image": Recipe(dict(hidden_features=256, hidden_layers=3), lr=1e-4, steps=10_000, batch_fraction=1.0,
                        source="siren train_img.py"),
        "audio": Recipe(dict(hidden_features=256, hidden_layers=3, first_omega_0=3000.0), lr=1e-4, steps=9_001,
                        batch_fraction=1.0, source="siren train_audio.py"),
        "video": Recipe(dict(hidden_features=1024, hidden_layers=3), lr=1e-4, steps=100_000, batch_fraction=38e-4,
                        source="siren train_video.py"),
        "sdf": Recipe(dict(hidden_features=256, hidden_layers=3), lr=1e-4, source="siren train_sdf.py (net, lr)"),
        "occupancy": Recipe(dict(hidden_features=256, hidden_layers=3), lr=1e-4, loss="bce",
                            source="inrkit: the SDF network and lr"),
    },
    fast={"image": 10, "audio": "authors", "occupancy": 3, "sdf": "authors"},
)
class Siren(Backbone):
    """SIREN with a linear output layer.

    Args:
        in_features: coordinate dimension.
        out_features: output channels.
        hidden_features: width of every sine layer.
        hidden_layers: sine layers after the first one (3 gives the paper's 5-layer network).
        first_omega_0: frequency factor of the first layer (30; 3000 for audio).
        hidden_omega_0: frequency factor of the hidden layers (30).

    Example:
        >>> Siren(2, 3)(torch.zeros(5, 2)).shape
        torch.Size([5, 3])
    """

    target_range = (-1.0, 1.0)

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 256, hidden_layers: int = 3,
                 first_omega_0: float = 30.0, hidden_omega_0: float = 30.0) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.net = _sine_mlp(in_features, hidden_features, hidden_layers, out_features, first_omega_0, hidden_omega_0)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.net(coords)
