"""FINER: variable-periodic sine activations (Liu et al., CVPR 2024, arXiv 2312.02434).

Follows the FINER baseline in the SL²A repository (`Finer.py`, run by its `train.py`), which produced
the FINER row of SL²A's Table 1: every layer but the last is sin(omega0 · (|u| + 1) · u) with
u = W x + b and the scale (|u| + 1) detached from the graph (`scale_req_grad=False`), a linear last
layer, SIREN's weight init (first layer U(±1/n), hidden and last U(±sqrt(6/n)/omega0)), the first
layer's bias drawn from U(±first_bias_scale) with scale 20 (FINER's key change: a wide bias spread
selects many frequencies), other biases at PyTorch's default, and targets in [0, 1] (the script
min-max normalises images).

Departures: none in the network. Recipes for audio, video and shapes are inrkit's own (the SL²A
repository has image fitting only); audio raises the first-layer frequency to 3000 as SIREN does.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Backbone
from .layers import siren_uniform_
from .registry import Recipe, register_model


class FinerLayer(nn.Module):
    """sin(omega0 (|u| + 1) u), u = W x + b, the scale (|u| + 1) treated as a constant in backward."""

    def __init__(self, in_features: int, out_features: int, omega_0: float, is_first: bool,
                 first_bias_scale: float | None = None) -> None:
        super().__init__()
        self.omega_0 = omega_0
        self.linear = nn.Linear(in_features, out_features)
        siren_uniform_(self.linear.weight, in_features, omega_0, is_first)
        if is_first and first_bias_scale is not None:
            with torch.no_grad():
                self.linear.bias.uniform_(-first_bias_scale, first_bias_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.linear(x)
        scale = u.detach().abs().add_(1.0).mul_(self.omega_0)  # omega0 folded in: one pass fewer
        return torch.sin(scale * u)


RECIPES = {
    # SL²A train.py's FINER baseline: omega0 30, first bias 20, Adam 1e-4 decaying to 0.1x
    "image": Recipe(dict(hidden_features=256, hidden_layers=3), lr=1e-4, lr_decay=0.1),
    "video": Recipe(dict(hidden_features=1024, hidden_layers=3), lr=1e-4, lr_decay=0.1),
    "audio": Recipe(dict(hidden_features=256, hidden_layers=3, first_omega_0=3000.0), lr=1e-4, lr_decay=0.1),
    "sdf": Recipe(dict(hidden_features=256, hidden_layers=3), lr=1e-4, lr_decay=0.1),
    "occupancy": Recipe(dict(hidden_features=256, hidden_layers=3), lr=1e-4, lr_decay=0.1, loss="bce"),
}


@register_model("finer", summary="variable-periodic sine sin(omega0 (|u|+1) u), wide first-layer bias",
                paper="Liu et al., CVPR 2024", recipes=RECIPES)
class Finer(Backbone):
    """FINER MLP with a linear output.

    Args:
        in_features: coordinate dimension.
        out_features: output channels.
        hidden_features: width of every layer.
        hidden_layers: layers after the first (3).
        first_omega_0: frequency factor of the first layer (30).
        hidden_omega_0: frequency factor of the hidden layers (30).
        first_bias_scale: the first layer's bias is U(±first_bias_scale) (20); None keeps PyTorch's default.

    Example:
        >>> Finer(2, 3)(torch.zeros(5, 2)).shape
        torch.Size([5, 3])
    """

    target_range = (0.0, 1.0)

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 256, hidden_layers: int = 3,
                 first_omega_0: float = 30.0, hidden_omega_0: float = 30.0,
                 first_bias_scale: float | None = 20.0) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        layers = [FinerLayer(in_features, hidden_features, first_omega_0, True, first_bias_scale)]
        layers += [FinerLayer(hidden_features, hidden_features, hidden_omega_0, False) for _ in range(hidden_layers)]
        last = nn.Linear(hidden_features, out_features)
        siren_uniform_(last.weight, hidden_features, hidden_omega_0, is_first=False)
        self.net = nn.Sequential(*layers, last)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.net(coords)
