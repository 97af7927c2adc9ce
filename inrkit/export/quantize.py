"""Uniform affine quantisation of weights, magnitude pruning and straight-through fake quantisation.

A tensor w is stored as integers q in [0, 2^bits - 1] with a scale s and an integer zero point z;
it is rebuilt as w' = (q - z) · s in float32. z is chosen so that 0 is exactly representable, so
pruned weights stay exactly zero. With `per_channel` each output channel (dim 0) has its own s, z.
Complex tensors are quantised as their (..., 2) real view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ..errors import ConfigError


@dataclass(frozen=True)
class QuantSpec:
    """How weights are stored.

    Attributes:
        bits: integer bit width (2-16), or None for float16.
        per_channel: one scale per output channel (dim 0) instead of one per tensor.
        prune: fraction (0-1) of each tensor's smallest-magnitude weights set to zero first.
        buffer_bits: bit width of non-trainable float buffers (e.g. FFN's random B), None for float16.
        layer_bits: (state-dict name, bits) pairs that override `bits` for single weight tensors
            (per-layer bit allocation); the .inrz tensor table records each tensor's own width.
    """

    bits: int | None = 8
    per_channel: bool = False
    prune: float = 0.0
    buffer_bits: int | None = 16
    layer_bits: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        for name in ("bits", "buffer_bits"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and 2 <= value <= 16):
                raise ConfigError(f"{name.replace('_', '-')} must be an integer from 2 to 16 (or fp16), got {value!r}")
        if not 0.0 <= self.prune < 1.0:
            raise ConfigError(f"prune must be a fraction in [0, 1), got {self.prune}")
        for name, value in self.layer_bits:
            if not (isinstance(value, int) and 2 <= value <= 16):
                raise ConfigError(f"bits of {name} must be an integer from 2 to 16, got {value!r}")

    def bits_for(self, name: str) -> int | None:
        """The bit width of the trained tensor `name`: its own override, else `bits`.

        Example:
            >>> QuantSpec(bits=6, layer_bits=(("net.0.linear.weight", 8),)).bits_for("net.0.linear.weight")
            8
        """
        return dict(self.layer_bits).get(name, self.bits)

    def with_bits(self, name: str, bits: int) -> QuantSpec:
        """A copy in which tensor `name` is stored at `bits`."""
        table = {**dict(self.layer_bits), name: bits}
        return replace(self, layer_bits=tuple(sorted(table.items())))


def real_view(t: torch.Tensor) -> torch.Tensor:
    """A float32 real tensor: complex tensors become (..., 2)."""
    t = t.detach()
    return (torch.view_as_real(t) if t.is_complex() else t).float()


def _channels(w: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """w as (channels, rest): one row per scale."""
    return w.reshape(w.shape[0], -1) if per_channel and w.dim() > 1 else w.reshape(1, -1)


def affine_params(w: torch.Tensor, bits: int, per_channel: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale (float32) and zero point (int64) per row of `w`, with 0 on the grid.

    Example:
        >>> scale, zero = affine_params(torch.tensor([-1.0, 0.0, 3.0]), bits=2)
        >>> scale.tolist(), zero.tolist()
        ([1.3359375], [1])
    """
    rows = _channels(w, per_channel)
    levels = (1 << bits) - 1
    lo = rows.min(dim=1).values.clamp(max=0.0)
    hi = rows.max(dim=1).values.clamp(min=0.0)
    scale = bfloat16_ceil(((hi - lo) / levels).float())
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row: any scale works
    zero = torch.round(-lo / scale).clamp(0, levels).long()
    return scale, zero


def bfloat16_ceil(x: torch.Tensor) -> torch.Tensor:
    """The smallest bfloat16 values at or above positive float32 `x`, as float32: a scale the file stores
    in 2 bytes, rounded up so that the row's range still fits its levels (a grid at most 0.8 % coarser).

    Example:
        >>> bfloat16_ceil(torch.tensor([1.0, 1.001])).tolist()
        [1.0, 1.0078125]
    """
    bits = x.contiguous().view(torch.int32)
    return ((bits + 0xFFFF) & ~0xFFFF).view(torch.float32)


def channel_rows(t: torch.Tensor) -> bool:
    """Whether a tensor has output channels to scale one by one: its own rows, so a complex vector, whose
    real view is (n, 2), has none (format 1 gave each of its (real, imaginary) pairs a scale)."""
    return t.dim() > 1


def quantize(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int,
             per_channel: bool = False) -> torch.Tensor:
    """Integers q in [0, 2^bits - 1] (int64, same shape as w)."""
    rows = _channels(w, per_channel)
    q = torch.round(rows / scale[:, None]) + zero[:, None]
    return q.clamp(0, (1 << bits) - 1).long().reshape(w.shape)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, per_channel: bool = False) -> torch.Tensor:
    """w' = (q - z) · s in float32; the encoder and the decoder both call this, so they agree bit for bit."""
    rows = _channels(q, per_channel)
    return ((rows - zero[:, None]).float() * scale[:, None]).reshape(q.shape)


def prune_mask(w: torch.Tensor, fraction: float) -> torch.Tensor:
    """True where a weight survives: all but the `fraction` of entries smallest in magnitude."""
    if fraction <= 0 or w.numel() < 2:
        return torch.ones_like(w, dtype=torch.bool)
    k = int(fraction * w.numel())
    if k == 0:
        return torch.ones_like(w, dtype=torch.bool)
    threshold = w.abs().flatten().kthvalue(k).values
    return w.abs() > threshold


def fake_quantize(w: torch.Tensor, spec: QuantSpec, mask: torch.Tensor | None = None,
                  bits: int | None = None) -> torch.Tensor:
    """What storage turns w into (float, same dtype/shape), with straight-through gradients.

    `bits` overrides `spec.bits` (a tensor's own width under per-layer allocation).

    The forward pass sees the quantised weight, the backward pass treats rounding as the identity,
    so training moves the float weights towards values that survive rounding (QAT).
    """
    real = torch.view_as_real(w) if w.is_complex() else w
    target = real if mask is None else real * mask
    bits = spec.bits if bits is None else bits
    with torch.no_grad():
        if bits is None:
            stored = target.half().float()
        else:
            per_channel = spec.per_channel and channel_rows(w)
            scale, zero = affine_params(target, bits, per_channel)
            stored = dequantize(quantize(target, scale, zero, bits, per_channel), scale, zero, per_channel)
    out = target + (stored.to(real.dtype) - target).detach()
    return torch.view_as_complex(out) if w.is_complex() else out


class FakeQuant(nn.Module):
    """A parametrisation (torch.nn.utils.parametrize) applying `fake_quantize` to one parameter."""

    def __init__(self, spec: QuantSpec, mask: torch.Tensor | None = None, bits: int | None = None) -> None:
        super().__init__()
        self.spec, self.bits = spec, bits
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quantize(w, self.spec, self.mask, self.bits)
