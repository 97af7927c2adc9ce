"""FINER: variable-periodic sine activations (Liu et al., CVPR 2024, arXiv 2312.02434).

Two published protocols, selectable by name:

- `finer` follows FINER's own code (`liuzhen0212/FINER`: models.py, train_image.py, run_finer.sh):
  every layer but the last is sin(omega0 · (|u| + 1) · u) with u = W x + b and the scale (|u| + 1)
  detached from the graph (`scale_req_grad=False`), a linear last layer, SIREN's weight init (first
  layer U(±1/n), hidden and last U(±sqrt(6/n)/omega0)), biases at PyTorch's default
  (run_finer.sh passes no `--first_bias_scale`), omega0 30. Image recipe: Adam lr 5e-4 decaying
  to 0.1x, 5,000 steps, each on the whole image, targets (x/255 - 0.5)/0.5 in [-1, 1].
- `finer_sl2a` is the FINER *baseline* of the SL²A repository (`Finer.py` run by its `train.py`),
  which produced the FINER row of SL²A's Table 1: the same network with the first layer's bias
  drawn from U(±20), Adam lr 1e-4 decaying to 0.1x over 501 epochs of random 16,384-pixel batches
  (8,016 steps at 512²), targets min-max normalised to [0, 1].

Recipes for other kinds: FINER's SDF runs (sdf/bacon, run_paper_finer.sh) use 256 × 2 hidden, lr
1e-4 and a first-layer bias scale of 1; their point-cloud loss and 200,000 steps do not carry over to
inrkit's sampled SDF values, so the sdf/occupancy recipes take the network and lr for 2,000 steps.
Audio and video recipes are inrkit's own (no such code): the image protocol, audio with a
first-layer frequency of 3000 as for SIREN, video at width 1024 with random 16,384-voxel batches.

Departures:
- Coordinates are cell centres ((2i + 1)/N - 1) where both repositories use the inclusive
  linspace(-1, 1, N): for `finer_sl2a` on the 64² kodim23 crop (300 full-batch steps, seeds
  0/1/2) +0.08 dB for the authors' grid (`python benchmarks/departures.py linspace finer_sl2a`);
  see `siren` for SIREN's (same first layer).
- `finer_sl2a`: the schedule decays per step rather than per epoch (the learning rates differ by at
  most 0.1^(1/501), 0.5%).
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
    # FINER's train_image.py + run_finer.sh: full batch, 5,000 steps, lr 5e-4 decaying to 0.1x per step
    "image": Recipe(dict(hidden_features=256, hidden_layers=3), lr=5e-4, lr_decay=0.1, steps=5_000,
                    batch_fraction=1.0, source="FINER train_image.py, run_finer.sh"),
    "video": Recipe(dict(hidden_features=1024, hidden_layers=3), lr=5e-4, lr_decay=0.1, steps=5_000,
                    batch_size=16384, source="inrkit: the image protocol on random batches"),
    "audio": Recipe(dict(hidden_features=256, hidden_layers=3, first_omega_0=3000.0), lr=5e-4, lr_decay=0.1,
                    steps=5_000, batch_fraction=1.0, source="inrkit: the image protocol, SIREN's audio frequency"),
    # sdf/bacon run_paper_finer.sh: 256 x 2 hidden, lr 1e-4, first bias scale 1
    "sdf": Recipe(dict(hidden_features=256, hidden_layers=2, first_bias_scale=1.0), lr=1e-4,
                  source="FINER sdf/bacon run_paper_finer.sh (net, lr)"),
    "occupancy": Recipe(dict(hidden_features=256, hidden_layers=2, first_bias_scale=1.0), lr=1e-4, loss="bce",
                        source="inrkit: FINER's SDF network and lr"),
}

# SL²A train.py's FINER baseline: first bias U(±20), lr 1e-4 decaying to 0.1x over 501 epochs of 16,384
_SL2A = dict(lr=1e-4, lr_decay=0.1, epochs=501, batch_size=16384)
SL2A_RECIPES = {
    "image": Recipe(dict(hidden_features=256, hidden_layers=3), **_SL2A, targets="minmax",
                    source="SL2A-INR train.py (FINER baseline)"),
    "video": Recipe(dict(hidden_features=1024, hidden_layers=3), **_SL2A, source="inrkit: the image protocol"),
    "audio": Recipe(dict(hidden_features=256, hidden_layers=3, first_omega_0=3000.0), **_SL2A,
                    source="inrkit: the image protocol, SIREN's audio frequency"),
    "sdf": Recipe(dict(hidden_features=256, hidden_layers=3), **_SL2A, source="inrkit: the image protocol"),
    "occupancy": Recipe(dict(hidden_features=256, hidden_layers=3), **_SL2A, loss="bce",
                        source="inrkit: the image protocol"),
}


@register_model("finer", summary="variable-periodic sine sin(omega0 (|u|+1) u) (FINER's own code)",
                paper="Liu et al., CVPR 2024", recipes=RECIPES, fast={"image": 1, "audio": "authors"})
class Finer(Backbone):
    """FINER MLP with a linear output.

    Args:
        in_features: coordinate dimension.
        out_features: output channels.
        hidden_features: width of every layer.
        hidden_layers: layers after the first (3).
        first_omega_0: frequency factor of the first layer (30).
        hidden_omega_0: frequency factor of the hidden layers (30).
        first_bias_scale: the first layer's bias is U(±first_bias_scale); None (FINER's image runs) keeps
            PyTorch's default.

    Example:
        >>> Finer(2, 3)(torch.zeros(5, 2)).shape
        torch.Size([5, 3])
    """

    target_range = (-1.0, 1.0)

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 256, hidden_layers: int = 3,
                 first_omega_0: float = 30.0, hidden_omega_0: float = 30.0,
                 first_bias_scale: float | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        layers = [FinerLayer(in_features, hidden_features, first_omega_0, True, first_bias_scale)]
        layers += [FinerLayer(hidden_features, hidden_features, hidden_omega_0, False) for _ in range(hidden_layers)]
        last = nn.Linear(hidden_features, out_features)
        siren_uniform_(last.weight, hidden_features, hidden_omega_0, is_first=False)
        self.net = nn.Sequential(*layers, last)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.net(coords)


@register_model("finer_sl2a", summary="FINER as SL²A's baseline: first-layer bias U(±20), targets in [0, 1]",
                paper="Liu et al., CVPR 2024 (as run by SL²A-INR, ICCV 2025)", recipes=SL2A_RECIPES,
                fast={"image": 1, "audio": "authors"})
class FinerSL2A(Finer):
    """FINER with the SL²A repository's baseline settings (first-layer bias U(±20), targets in [0, 1]).

    Example:
        >>> FinerSL2A(2, 3)(torch.zeros(5, 2)).shape
        torch.Size([5, 3])
    """

    target_range = (0.0, 1.0)

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 256, hidden_layers: int = 3,
                 first_omega_0: float = 30.0, hidden_omega_0: float = 30.0,
                 first_bias_scale: float | None = 20.0) -> None:
        super().__init__(in_features, out_features, hidden_features, hidden_layers, first_omega_0, hidden_omega_0,
                         first_bias_scale)
