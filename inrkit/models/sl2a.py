"""SL²A-INR: a single learnable-activation layer + fusion blocks (Heidari, Rezaeian et al., ICCV 2025).

arXiv 2409.10836; code `moeinheidari7829/SL2A-INR` (and the `Iceage7/SL2A-INR` fork): `SL2A_INR.py`,
`ChebyKANLayer.py`, `train.py`.

Forward: z = LayerNorm(Σ_j Σ_{k=0..K} a_jok T_k(tanh x_j)) (Chebyshev polynomials of the first kind
on tanh of each coordinate, no bias: T_0 supplies the constant); then L low-rank ReLU layers fused
with z, h_1 = ReLU((z ⊙ z) P_1 Q_1 + c_1), h_l = ReLU((z ⊙ h_{l-1}) P_l Q_l + c_l), and the output
Linear also sees z ⊙ h_L. Init as `train.py` runs it: `xavier_uniform_` on the (d_in, h, K+1)
coefficient tensor (bound sqrt(6/((K+1)(h+d_in)))); P ~ U(±1/sqrt(r)), Q ~ U(±1/sqrt(h)),
c ~ U(±1/sqrt(r)) (kaiming_uniform with a = √5 on each factor); PyTorch defaults elsewhere.
At the `train.py` defaults (h 256, K 256, rank 128, 3 layers) a 2 → 3 model has 330,243 parameters.

Image recipe (`train.py`): Adam lr 1e-3 decaying to 0.1x over 501 epochs, each a random permutation
of the pixels in batches of 16,384 (501 · ceil(N / 16384) steps: 8,016 at 512²), MSE, targets
min-max normalised per image to [0, 1], seed 42.

Departures, and why:
- The Chebyshev layer is one matmul of the basis features T_k(tanh x_j) (N × d_in(K+1)) with the
  coefficients; the authors' einsum gives the same sum.
- tanh(x) is clamped to ±(1 - 1e-6) before arccos, so saturated inputs (|x| ≳ 9) give finite
  gradients instead of NaN; on inrkit's [-1, 1] coordinates nothing changes (|tanh x| ≤ 0.762).
- `forward` takes (N, D) as is; the authors' `coords.squeeze()` breaks a batch of one point.
- rank defaults to hidden_features // 2 (128 at 256), so budgets scale width and rank together.
- Image targets are min-max normalised per image, as `train.py` does (the recipe's `targets`; so do
  WIRE's and FKAN's scripts); PSNR is always reported on x/255. Min-max stretches a crop's values to
  the full [0, 1], so the same error in model units is a smaller error on x/255: with ReLU+PE (the
  same WIRE-family loader) on the 64² kodim23 crop, 300 full-batch steps, seeds 0/1, x/255 gave
  33.12 / 34.07 dB and min-max 34.90 / 35.91 dB (`python benchmarks/departures.py minmax relu_pe`).
- Coordinates are cell centres where `train.py` uses linspace(-1, 1, N): on the 64² kodim23 crop,
  300 full-batch steps, seeds 0/1/2, cell centres 49.58 / 49.61 / 48.97 dB, linspace 49.33 / 50.50 /
  49.71 dB, +0.46 dB on average for the authors' grid (`python benchmarks/departures.py linspace
  sl2a`; +0.16 dB over seeds 0-5). Beside the authors' code (`benchmarks/results/authors_cpu.md`)
  inrkit is within 0.2 dB at 256² and 0.61 dB lower at 64² over twelve seeds (50.30 ± 1.02 against
  49.69 ± 0.56 dB; the standard error of that difference is 0.34 dB). Given the authors' initial
  weights, inrkit trains to the same PSNR as their code (50.71 against 50.70 dB over seeds 0-5,
  `python benchmarks/twins.py sl2a --seeds 0 1 2 3 4 5`), so the rest is the init draw.
- The decay is applied per step, not per epoch (rates differ by at most 0.1^(1/501), 0.5%).
- No audio, video or 3-D code was released: those recipes reuse the image protocol (the paper says
  its shape experiments use the image architecture) with K scaled to the signal for audio.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .base import Backbone
from .registry import Recipe, register_model


class ChebyshevLayer(nn.Module):
    """ψ_o(x) = Σ_j Σ_k a_jok T_k(tanh x_j), as basis features @ coefficients.

    Example:
        >>> ChebyshevLayer(2, 8, degree=4)(torch.zeros(3, 2)).shape
        torch.Size([3, 8])
    """

    def __init__(self, in_features: int, out_features: int, degree: int) -> None:
        super().__init__()
        self.coefficients = nn.Parameter(torch.empty(in_features, out_features, degree + 1))
        nn.init.xavier_uniform_(self.coefficients)  # on the 3-D tensor, as the authors call it
        self.register_buffer("k", torch.arange(degree + 1, dtype=torch.float32), persistent=False)

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.tanh(x).clamp(-1 + 1e-6, 1 - 1e-6)
        return torch.cos(torch.acos(t)[..., None] * self.k).flatten(-2)  # (N, d_in * (K+1)), k fastest

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.coefficients.permute(0, 2, 1).flatten(0, 1)  # (d_in * (K+1), out)
        return self.basis(x) @ weight


class LowRankLinear(nn.Module):
    """x ↦ x (P Q) + c with P (h × r), Q (r × h), initialised as the authors' kaiming_uniform(a=√5)."""

    def __init__(self, features: int, rank: int) -> None:
        super().__init__()
        self.P = nn.Parameter(torch.empty(features, rank).uniform_(-1 / math.sqrt(rank), 1 / math.sqrt(rank)))
        self.Q = nn.Parameter(torch.empty(rank, features).uniform_(-1 / math.sqrt(features), 1 / math.sqrt(features)))
        self.bias = nn.Parameter(torch.empty(features).uniform_(-1 / math.sqrt(rank), 1 / math.sqrt(rank)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x @ self.P, self.Q)  # same product as x @ (P Q), cheaper


def _degree(cap: int, default: int):
    def model(info: Any) -> dict[str, Any]:
        if info is None or not info.shape:
            return {"degree": default}
        return {"degree": max(16, min(cap, int(max(info.shape[: info.in_features])) // 2))}

    return model


_TRAIN_PY = dict(lr=1e-3, lr_decay=0.1, epochs=501, batch_size=16384)
RECIPES = {
    # train.py: Adam 1e-3 decaying to 0.1x over 501 epochs of random 16,384-pixel batches, MSE, K = 256
    "image": Recipe({"degree": 256}, **_TRAIN_PY, targets="minmax", source="SL2A-INR train.py"),
    "video": Recipe({"degree": 256}, **_TRAIN_PY, source="inrkit: the image protocol"),
    "audio": Recipe(_degree(cap=4096, default=1024), **_TRAIN_PY, source="inrkit: the image protocol"),
    "sdf": Recipe({"degree": 256}, **_TRAIN_PY, source="inrkit: the image protocol"),
    "occupancy": Recipe({"degree": 256}, **_TRAIN_PY, loss="mse", source="inrkit: the image protocol"),
}


@register_model("sl2a", summary="Chebyshev learnable activation + LayerNorm + fused low-rank ReLU blocks",
                paper="Heidari, Rezaeian et al., ICCV 2025", recipes=RECIPES,
                fast={"image": 1, "audio": "authors", "video": 3})
class SL2A(Backbone):
    """SL²A-INR.

    Args:
        in_features: coordinate dimension.
        out_features: output channels.
        hidden_features: width h of the Chebyshev layer and fusion blocks (256).
        hidden_layers: fused low-rank ReLU layers (3).
        degree: Chebyshev degree K (256 in `train.py`).
        rank: rank r of each fused layer's weight (None: hidden_features // 2).
        nonlinearity: "relu" or "none" (the authors' switch).

    Example:
        >>> SL2A(2, 3, hidden_features=16, degree=8)(torch.zeros(5, 2)).shape
        torch.Size([5, 3])
    """

    target_range = (0.0, 1.0)

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 256, hidden_layers: int = 3,
                 degree: int = 256, rank: int | None = None, nonlinearity: str = "relu") -> None:
        super().__init__()
        if nonlinearity not in ("relu", "none"):
            raise TypeError(f"nonlinearity must be 'relu' or 'none', got {nonlinearity!r}")
        self.in_features, self.out_features = in_features, out_features
        self.cheby = ChebyshevLayer(in_features, hidden_features, degree)
        self.norm = nn.LayerNorm(hidden_features)
        rank = rank or max(1, hidden_features // 2)
        self.fused = nn.ModuleList(LowRankLinear(hidden_features, rank) for _ in range(hidden_layers))
        self.act = nn.ReLU() if nonlinearity == "relu" else nn.Identity()
        self.last = nn.Linear(hidden_features, out_features)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        z = self.norm(self.cheby(coords))
        h = z
        for layer in self.fused:
            h = self.act(layer(z * h))
        return self.last(z * h)
