"""SPDER: semiperiodic damping-enabled object representation (Shah & Sitawarin, ICLR 2024, arXiv 2306.15242).

Follows `katop1234/SPDER` (SPDER_image_batched.py, SPDER_audio.py): every layer but the last is
y = sin(z) · delta(z) with z = omega0 (W x + b), the damping delta(z) = sqrt(|z|) for images, video
and shapes and arctan(z) for audio, and a linear last layer. The init is SIREN's, reused unchanged:
first layer U(±1/n), hidden and last layer U(±sqrt(6/n)/omega0), biases at PyTorch's default.
Targets are fitted in [-1, 1].

Departures:
- sin(z)·sqrt(|z|) has derivative cos(z) sqrt(|z|) + sin(z) sign(z) / (2 sqrt(|z|)), which is 0 at
  z = 0, but autograd evaluates 0·inf = NaN there. The authors clamp |z| at 1e-43, a float32 denormal
  that flush-to-zero modes (some GPUs, AMP) turn into 0, bringing the NaN back; their clamp floor is
  also a tensor requiring grad, which alone costs ~0.1 s per step at 256². inrkit uses a custom
  autograd function with the analytic derivative, evaluated as cos(z) r + sin(z) z / (2 r³) with
  r = sqrt(|z|) floored at 1e-12 (normal range): exact away from 0 and 0 at 0. It also fuses the
  omega0 scaling, so forward + backward takes a handful of elementwise passes instead of a dozen.
- Audio: the authors scale coordinates to [-100, 100] (SIREN's audio loader); inrkit keeps [-1, 1]
  and sets first_omega_0 = 3000 instead, as for SIREN (equal weights; the first bias is scaled by 3000).
- Recipes for SDF and occupancy are inrkit's own (the authors have no such experiments).
- Full-batch gradients: the scripts accumulate gradients over chunks of the signal, one optimiser
  step per pass, to fit GPU memory; inrkit computes the same full-batch gradient in one pass (the
  recipes' `batch_fraction=1.0`), so memory grows with the signal (12 × 1024 on a 64-frame 256²
  clip needs hundreds of GB: pass a batch size there, which turns each step into a random subset).
- Coordinates are cell centres where the scripts use linspace(-1, 1, N) (see `siren`).
- Beside the authors' code (`benchmarks/results/authors_cpu.md`, three seeds): 24.37 against 24.34 dB at
  256² after 25 steps; at 64² after 300 steps both fit the 8-bit crop past 60 dB, where the authors' own
  seeds scatter by 13 dB (65.0 / 52.1 / 64.1), so the comparison is made after 50 steps
  (`authors_cpu/early.md`): 48.54 against 48.27 dB.

Recipes: Adam at a constant rate, MSE, targets (x - 0.5)/0.5, every step on the whole signal.
- image (SPDER_image_batched.py): 256 × 5 hidden, lr 1e-4, 501 steps.
- audio (SPDER_audio.py): arctan damping, lr 5e-5, 5,001 steps.
- video (SPDER_video_batched.py): 1024 × 12 hidden, lr 5e-6, 5,001 steps.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Backbone
from .layers import siren_uniform_
from .registry import Recipe, register_model

_FLOOR = 1e-12  # floor for sqrt(|z|) in the backward only; a normal float32, so flush-to-zero keeps it


class _SqrtDampedSine(torch.autograd.Function):
    """y = sin(w u) sqrt(|w u|) with the analytic, NaN-free derivative.

    torch.func style (`setup_context`, generated vmap rule) so `vmap`/`grad` work through it; z and
    sqrt|z| are returned as extra, non-differentiable outputs because torch.func only lets a
    function save its inputs and outputs for the backward.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(u: torch.Tensor, omega_0: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # type: ignore[override]
        z = u * omega_0
        root = z.abs().sqrt_()
        return torch.sin(z).mul_(root), z, root

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: tuple) -> None:  # type: ignore[override]
        _, z, root = output
        ctx.mark_non_differentiable(z, root)
        ctx.set_materialize_grads(False)  # else autograd fills zero gradients for z and root every backward
        ctx.save_for_backward(z, root)
        ctx.omega_0 = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor | None, *_: None) -> tuple[torch.Tensor | None, None]:  # type: ignore[override]
        if grad is None:
            return None, None
        z, root = ctx.saved_tensors
        r = root.clamp_min(_FLOOR)
        # d/dz = cos(z) r + sin(z) sign(z) / (2 r) = cos(z) r + sin(z) z / (2 r^3)
        # in place, by add_ (vmap has no batching rule for addcmul_; out of place, SPDER ran 0.91x instead of 0.98x
        # of 4d700ea's speed in benchmarks/speed_vs_commit.py)
        slope = torch.sin(z).mul_(z).div_(r.pow(3).mul_(2)).add_(torch.cos(z).mul_(r))
        return slope.mul_(grad).mul_(ctx.omega_0), None


def damped_sine(u: torch.Tensor, omega_0: float, damping: str = "sqrt") -> torch.Tensor:
    """SPDER's activation of the affine output u: sin(omega0 u) · delta(omega0 u).

    Example:
        >>> damped_sine(torch.zeros(2), 30.0)
        tensor([0., 0.])
    """
    if damping == "sqrt":
        return _SqrtDampedSine.apply(u, omega_0)[0]
    z = omega_0 * u
    return torch.sin(z) * torch.atan(z)  # arctan is smooth: plain autograd is NaN-free


class SpderLayer(nn.Module):
    """sin(z) · delta(z), z = omega0 (W x + b), with SIREN's init."""

    def __init__(self, in_features: int, out_features: int, omega_0: float, is_first: bool, damping: str) -> None:
        super().__init__()
        self.omega_0, self.damping = omega_0, damping
        self.linear = nn.Linear(in_features, out_features)
        siren_uniform_(self.linear.weight, in_features, omega_0, is_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return damped_sine(self.linear(x), self.omega_0, self.damping)


RECIPES = {
    "image": Recipe(dict(hidden_features=256, hidden_layers=5), lr=1e-4, steps=501, batch_fraction=1.0,
                    source="SPDER_image_batched.py"),
    # arctan damping, lr 5e-5, coordinates x100 (here first_omega_0 = 3000)
    "audio": Recipe(dict(hidden_features=256, hidden_layers=5, first_omega_0=3000.0, damping="arctan"), lr=5e-5,
                    steps=5_001, batch_fraction=1.0, source="SPDER_audio.py"),
    "video": Recipe(dict(hidden_features=1024, hidden_layers=12), lr=5e-6, steps=5_001, batch_fraction=1.0,
                    source="SPDER_video_batched.py"),
    "sdf": Recipe(dict(hidden_features=256, hidden_layers=5), lr=1e-4, source="inrkit: the image network and rate"),
    "occupancy": Recipe(dict(hidden_features=256, hidden_layers=5), lr=1e-4, loss="bce",
                        source="inrkit: the image network and rate"),
}


@register_model("spder", summary="sine x sqrt(|z|) damping (arctan for audio), SIREN init",
                paper="Shah & Sitawarin, ICLR 2024", recipes=RECIPES, fast={"image": 1, "audio": "authors"})
class Spder(Backbone):
    """SPDER: damped-sine MLP with a linear output.

    Args:
        in_features: coordinate dimension.
        out_features: output channels.
        hidden_features: width of every damped-sine layer.
        hidden_layers: layers after the first (5, as in the authors' image script).
        first_omega_0: frequency factor of the first layer (30; 3000 for audio).
        hidden_omega_0: frequency factor of the hidden layers (30).
        damping: "sqrt" (images, video, shapes) or "arctan" (the authors' audio choice).

    Example:
        >>> Spder(2, 3)(torch.zeros(5, 2)).shape
        torch.Size([5, 3])
    """

    target_range = (-1.0, 1.0)

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 256, hidden_layers: int = 5,
                 first_omega_0: float = 30.0, hidden_omega_0: float = 30.0, damping: str = "sqrt") -> None:
        super().__init__()
        if damping not in ("sqrt", "arctan"):
            raise TypeError(f"damping must be 'sqrt' or 'arctan', got {damping!r}")
        self.in_features, self.out_features = in_features, out_features
        layers = [SpderLayer(in_features, hidden_features, first_omega_0, True, damping)]
        layers += [SpderLayer(hidden_features, hidden_features, hidden_omega_0, False, damping)
                   for _ in range(hidden_layers)]
        last = nn.Linear(hidden_features, out_features)
        siren_uniform_(last.weight, hidden_features, hidden_omega_0, is_first=False)
        self.net = nn.Sequential(*layers, last)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.net(coords)
