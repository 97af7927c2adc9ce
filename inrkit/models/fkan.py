"""FKAN: implicit neural representations with Fourier Kolmogorov-Arnold networks.

Mehrabian et al., ICASSP 2025 (arXiv 2409.09323); code `Ali-Meh619/FKAN: FKAN_INR.ipynb`.

Layer 0 is a learnable Fourier series per input axis, y_o = b_o + Σ_j Σ_{k=1..K} A_ojk cos(k x_j) +
B_ojk sin(k x_j), followed by LayerNorm. Hidden layers use the released code's activation
g(u) = (u + tanh(30 u)) · σ(u) (the paper writes tanh(ω0 u): `activation="tanh"`), with widths
128 → 256 → 256 → 256 → 512 at the default `hidden_features=128` (all widths scale with it), and a
linear output. Init as in the notebook: A, B ~ N(0, 1/(d_in K)), zero bias; hidden weights
U(±sqrt(6/n)/30), biases PyTorch default; output weights U(±sqrt(6/128)/30) — the authors hard-code
the fan-in to `hidden_features`, not the real 512, and inrkit keeps that.

Image recipe (notebook cells 1, 3, 9, 15): K = 270 for kodim03 (512 × 768), Adam lr 1e-4 decaying
to 0.1x over 500 epochs, each epoch a random permutation of the pixels in batches of 4,096
(500 · ceil(N / 4096) steps: 48,000 for a Kodak image), MSE, targets min-max normalised to [0, 1].
K follows the shorter side, K = round(270 · min(H, W) / 512) (`image_harmonics`): the notebook fits
one size, and this keeps its ratio of K to the shorter side's pixel count (K = 270 for every Kodak
image, 135 at 256², 34 at 64²); pass `harmonics=270` to run the notebook's network at any size.

Departures, and why:
- The Fourier layer is ONE matmul of the basis features [cos(k x_j), sin(k x_j)] (N × 2 d_in K)
  with a (2 d_in K, width) weight. The authors broadcast into an N × width × d_in × K tensor
  (~2.3 GB at N = 4096, >90% of a CPU step); the result is the same sum.
- The three scalar parameters (a, b, c) each authors' hidden layer registers and never uses are
  left out: 436,355 parameters for kodim03 instead of the notebook's 436,367.
- Coordinates are cell centres where the notebook uses linspace(-1, 1, N) (see `siren` for that
  effect).
- The decay is applied per step, not per epoch (rates differ by at most 0.1^(1/500), 0.5%), and the
  notebook's "max PSNR" (best epoch, from the in-training buffer) is replaced by a clean evaluation.
- There is no audio, video or 3-D code; those recipes are inrkit's own and scale K with the signal
  (see `_harmonics`); occupancy takes WIRE's occupancy schedule (the notes' guess for the paper's).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .base import Backbone
from .layers import siren_uniform_
from .registry import Recipe, register_model


class FourierSeriesLayer(nn.Module):
    """Per-axis learnable Fourier series, computed as basis features @ weight.

    `weight` rows are ordered [cos(k x_j) for j, k] then [sin(k x_j) for j, k], k = 1..K fastest.

    Example:
        >>> FourierSeriesLayer(2, 8, harmonics=4)(torch.zeros(3, 2)).shape
        torch.Size([3, 8])
    """

    def __init__(self, in_features: int, out_features: int, harmonics: int) -> None:
        super().__init__()
        self.register_buffer("k", torch.arange(1, harmonics + 1, dtype=torch.float32), persistent=False)
        self.weight = nn.Parameter(torch.randn(2 * in_features * harmonics, out_features)
                                   / math.sqrt(in_features * harmonics))  # keeps unit output variance
        self.bias = nn.Parameter(torch.zeros(out_features))

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        kx = (x[..., None] * self.k).flatten(-2)  # (N, d_in * K)
        return torch.cat([torch.cos(kx), torch.sin(kx)], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, self.basis(x), self.weight)


def gated_tanh(u: torch.Tensor, omega: float = 30.0) -> torch.Tensor:
    """The released code's hidden activation (u + tanh(omega u)) · sigmoid(u)."""
    return (u + torch.tanh(omega * u)) * torch.sigmoid(u)


def _harmonics(rule_side: int, cap: int) -> int:
    """K for a signal side: the notebook's K = 270 at a 512-sample side, in proportion, capped."""
    return max(8, min(cap, round(rule_side * 270 / 512)))


def image_harmonics(shape: tuple[int, ...]) -> int:
    """The image recipe's K: 270 at the notebook's kodim03 (512 × 768), in proportion to the shorter side.

    Example:
        >>> image_harmonics((512, 768)), image_harmonics((64, 64))
        (270, 34)
    """
    return _harmonics(int(min(shape[:2])), cap=1024)


def _image_model(info: Any) -> dict[str, Any]:
    if info is None or len(info.shape) < 2:
        return {"harmonics": 270}
    return {"harmonics": image_harmonics(tuple(info.shape))}


def _recipe_model(cap: int, default: int):
    def model(info: Any) -> dict[str, Any]:
        if info is None or not info.shape:
            return {"harmonics": default}
        return {"harmonics": _harmonics(int(max(info.shape[: info.in_features])), cap)}

    return model


_NOTEBOOK = dict(lr=1e-4, lr_decay=0.1, epochs=500, batch_size=4096)
RECIPES = {
    # FKAN_INR.ipynb: Adam 1e-4 decaying to 0.1x over 500 epochs of random 4,096-pixel batches, MSE
    "image": Recipe(_image_model, **_NOTEBOOK, targets="minmax", source="FKAN_INR.ipynb"),
    "video": Recipe(_recipe_model(cap=256, default=64), **_NOTEBOOK, source="inrkit: the image protocol"),
    "audio": Recipe(_recipe_model(cap=8192, default=1024), **_NOTEBOOK, source="inrkit: the image protocol"),
    "sdf": Recipe({"harmonics": 64}, lr=1e-4, lr_decay=0.1, source="inrkit"),
    # no released 3-D code: WIRE-style occupancy schedule (notes §1.5, unverified)
    "occupancy": Recipe({"harmonics": 64}, lr=5e-3, lr_decay=0.2, loss="mse", epochs=200, batch_size=200_000,
                        source="inrkit: wire_occupancy.py's schedule (a guess at the paper's)"),
}


@register_model("fkan", summary="learnable Fourier-series first layer + LayerNorm + gated-tanh MLP",
                paper="Mehrabian et al., ICASSP 2025", recipes=RECIPES, fast={"image": 3, "audio": 3, "video": 10})
class FKAN(Backbone):
    """Fourier KAN: a learnable Fourier-series layer, LayerNorm and a widening gated-tanh MLP.

    Args:
        in_features: coordinate dimension.
        out_features: output channels.
        hidden_features: width of the Fourier layer (128); hidden widths are 2x it, the last 4x it.
        hidden_layers: hidden layers after the Fourier layer (4: 128 → 256 → 256 → 256 → 512).
        harmonics: K, integer frequencies 1..K per axis (270 in the image notebook).
        hidden_omega_0: omega inside the hidden activation (30).
        activation: "gated" (released code) or "tanh" (the paper's tanh(omega_0 u)).

    Example:
        >>> FKAN(2, 3, hidden_features=16, harmonics=8)(torch.zeros(5, 2)).shape
        torch.Size([5, 3])
    """

    target_range = (0.0, 1.0)

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 128, hidden_layers: int = 4,
                 harmonics: int = 270, hidden_omega_0: float = 30.0, activation: str = "gated") -> None:
        super().__init__()
        if activation not in ("gated", "tanh"):
            raise TypeError(f"activation must be 'gated' or 'tanh', got {activation!r}")
        self.in_features, self.out_features = in_features, out_features
        self.activation, self.hidden_omega_0 = activation, hidden_omega_0
        self.fourier = FourierSeriesLayer(in_features, hidden_features, harmonics)
        self.norm = nn.LayerNorm(hidden_features)
        widths = [hidden_features] + [2 * hidden_features] * (hidden_layers - 1) + [4 * hidden_features]
        widths = widths[: hidden_layers + 1]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        for layer in self.hidden:
            siren_uniform_(layer.weight, layer.in_features, hidden_omega_0, is_first=False)
        self.last = nn.Linear(widths[-1], out_features)
        siren_uniform_(self.last.weight, hidden_features, hidden_omega_0, is_first=False)  # authors' fan-in

    def act(self, u: torch.Tensor) -> torch.Tensor:
        if self.activation == "tanh":
            return torch.tanh(self.hidden_omega_0 * u)
        return gated_tanh(u, self.hidden_omega_0)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.fourier(coords))
        for layer in self.hidden:
            h = self.act(layer(h))
        return self.last(h)
