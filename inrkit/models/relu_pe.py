"""ReLU MLP on a NeRF positional encoding, the "ReLU+P.E." baseline (Mildenhall et al., ECCV 2020).

Follows the baseline as the WIRE repo ships it (`vishwa91/wire: modules/relu.py`, with the
`PosEncodingNeRF` of `vsitzmann/siren: modules.py`): features [x, sin(2^i π x), cos(2^i π x)] for
i < L, with L from the "Nyquist" rule floor(log2(samples / 4)) on the signal's longest side (1-D
and 2-D) and L = 10 for 3-D coordinates; then ReLU layers with PyTorch's default init and a linear
output; targets in [0, 1] (the WIRE scripts min-max normalise images).

Recipes: images take the WIRE script's protocol (`wire_image_denoise.py`, run for representation):
2,000 epochs of random 65,536-pixel batches (2,000 · ceil(N / 65536) steps), lr scaled by
min(1, 65536 / N) and decaying to 0.1x, MSE. The script runs every nonlinearity at its one lr,
5e-3, while its comment advises 5e-4 to 1e-3 for positional encoding: the recipe takes 1e-3, the
advised rate that SL²A's table also used. Occupancy takes `wire_occupancy.py`'s protocol at the same
1e-3. Audio is the SIREN repository's `nerf` baseline (train_audio.py: 3 hidden layers, lr 1e-4
constant, 9,001 steps on the whole clip).

Departures: none in the network. The recipe computes L from the signal (`Recipe.model` is a
function of its SignalInfo); without a signal L defaults to 6 (a 256-pixel side) in 1-D/2-D. The
SL²A repository instead uses a third of the side (L = 5 at 512²) for its table; pass
`num_frequencies=5` to match it. Coordinates are cell centres where the scripts use
linspace(-1, 1, N) (see `siren`); the decay is per step, not per epoch (at most 0.1%).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Backbone
from .layers import NerfEncoding, nyquist_frequencies
from .registry import Recipe, register_model


def _nyquist(**extra: Any):
    """A recipe `model` function: the authors' L for this signal's size, plus fixed arguments."""

    def model(info: Any) -> dict[str, Any]:
        if info is None:
            return dict(extra)
        if info.in_features >= 3:
            return {**extra, "num_frequencies": 10}
        samples = max(info.shape[: info.in_features]) if info.shape else 256
        return {**extra, "num_frequencies": nyquist_frequencies(int(samples))}

    return model


_WIRE_IMAGE = dict(lr=1e-3, lr_decay=0.1, epochs=2000, batch_size=65536, lr_batch_scaling=True)
RECIPES = {
    # wire_image_denoise.py's protocol at the lr its comment advises for positional encoding (1e-3)
    "image": Recipe(_nyquist(), **_WIRE_IMAGE, targets="minmax", source="wire_image_denoise.py, lr from its comment"),
    "video": Recipe(_nyquist(), **_WIRE_IMAGE, source="inrkit: the image protocol"),
    # SIREN repo's nerf baseline for audio (train_audio.py)
    "audio": Recipe(_nyquist(hidden_layers=3), lr=1e-4, steps=9_001, batch_fraction=1.0,
                    source="siren train_audio.py (nerf)"),
    # wire_occupancy.py: 200 epochs of 200,000 voxels, decay to 0.2x, MSE on {0, 1} occupancy
    "occupancy": Recipe(_nyquist(), lr=1e-3, lr_decay=0.2, epochs=200, batch_size=200_000, loss="mse",
                        source="wire_occupancy.py, lr from the image comment"),
    "sdf": Recipe(_nyquist(), lr=1e-3, lr_decay=0.2, epochs=200, batch_size=200_000,
                  source="inrkit: the occupancy protocol"),
}


@register_model("relu_pe", summary="NeRF positional encoding (Nyquist-limited) + ReLU MLP",
                paper="Mildenhall et al., ECCV 2020 (as shipped in the SIREN and WIRE repos)", recipes=RECIPES,
                fast={"image": 1, "video": 3})
class ReluPE(Backbone):
    """ReLU MLP on a NeRF positional encoding.

    Args:
        in_features: coordinate dimension.
        out_features: output channels.
        hidden_features: width of the ReLU layers.
        hidden_layers: ReLU layers after the first (2, as in the WIRE repo).
        num_frequencies: octaves L of the encoding; None: 10 for 3-D input, else 6.

    Example:
        >>> ReluPE(2, 3, num_frequencies=4)(torch.zeros(5, 2)).shape
        torch.Size([5, 3])
    """

    target_range = (0.0, 1.0)

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 256, hidden_layers: int = 2,
                 num_frequencies: int | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        if num_frequencies is None:
            num_frequencies = 10 if in_features >= 3 else 6
        self.encoding = NerfEncoding(in_features, num_frequencies)
        layers: list[nn.Module] = [nn.Linear(self.encoding.out_features, hidden_features), nn.ReLU()]
        for _ in range(hidden_layers):
            layers += [nn.Linear(hidden_features, hidden_features), nn.ReLU()]
        self.mlp = nn.Sequential(*layers, nn.Linear(hidden_features, out_features))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.encoding(coords))
