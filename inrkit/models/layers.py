"""Blocks shared by several backbones: sine layers with SIREN's init, Fourier encodings."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def siren_uniform_(weight: torch.Tensor, fan_in: int, omega_0: float, is_first: bool) -> torch.Tensor:
    """SIREN's weight init: U(±1/n) for the first layer, U(±sqrt(6/n)/omega_0) after it (biases untouched)."""
    bound = 1 / fan_in if is_first else math.sqrt(6 / fan_in) / omega_0
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


class ScaledLinear(nn.Linear):
    """scale · (W x + b), computed as (scale W) x + scale b: the product touches the weights, not the
    (much larger) activations, which saves one pass over them forward and one backward."""

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return F.linear(x, self.weight * scale, None if self.bias is None else self.bias * scale)


class SineLayer(nn.Module):
    """y = sin(omega_0 · (W x + b)); omega_0 multiplies the bias too, as in the authors' code."""

    def __init__(self, in_features: int, out_features: int, omega_0: float = 30.0, is_first: bool = False) -> None:
        super().__init__()
        self.omega_0 = omega_0
        self.linear = ScaledLinear(in_features, out_features)
        siren_uniform_(self.linear.weight, in_features, omega_0, is_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.linear(x, self.omega_0))


class GaussianFourierFeatures(nn.Module):
    """Random Fourier features [sin(2π B x), cos(2π B x)] with a fixed B ~ N(0, sigma²) (Tancik et al.)."""

    def __init__(self, in_features: int, num_frequencies: int, sigma: float) -> None:
        super().__init__()
        self.register_buffer("B", torch.randn(num_frequencies, in_features) * sigma)
        self.out_features = 2 * num_frequencies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = 2 * math.pi * x @ self.B.T
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


# Exponents at or below EXP_FLOOR give exactly 0. exp(-60) = 8.8e-27 is far below what float32 can add
# to any O(1e-3) term, yet far enough above the denormal range (< 1.2e-38) that its products with
# weights, cosines and gradients stay normal. Without the cut, WIRE's and Gauss's activations (sigma
# 30) are mostly tiny numbers whose products are denormals, which CPUs compute far slower
# (benchmarks/results/denormals.md).
EXP_FLOOR = -60.0


def floored_exp_(exponent: torch.Tensor) -> torch.Tensor:
    """exp(exponent), exactly 0 where exponent <= EXP_FLOOR, computed in place: returns `exponent` overwritten.

    Example:
        >>> floored_exp_(torch.tensor([0.0, -60.0, -1000.0]))
        tensor([1., 0., 0.])
    """
    below = exponent <= EXP_FLOOR
    return exponent.clamp_min_(EXP_FLOOR).exp_().masked_fill_(below, 0.0)


def nyquist_frequencies(samples: int) -> int:
    """NeRF encoding frequencies for a signal of `samples` points per side: floor(log2(samples / 4)).

    This is the "Nyquist" rule of SIREN's `PosEncodingNeRF` (and WIRE's ReLU+PE), at least 1.

    Example:
        >>> nyquist_frequencies(512), nyquist_frequencies(64)
        (7, 4)
    """
    return max(1, int(math.floor(math.log2(max(samples, 8) / 4))))


class NerfEncoding(nn.Module):
    """NeRF positional encoding [x, sin(2^i π x), cos(2^i π x)] for i < num_frequencies (per coordinate)."""

    def __init__(self, in_features: int, num_frequencies: int) -> None:
        super().__init__()
        self.register_buffer("freqs", (2.0 ** torch.arange(num_frequencies)) * math.pi, persistent=False)
        self.out_features = in_features * (1 + 2 * num_frequencies)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = (x[..., None] * self.freqs).flatten(-2)  # (N, D*L), frequencies fastest
        return torch.cat([x, torch.sin(proj), torch.cos(proj)], dim=-1)
