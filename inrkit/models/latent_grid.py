"""Latent grids: an overfitted image codec in the Cool-chic family (Ladune et al., ICCV 2023; Leguay et
al., 2023, "Low-complexity overfitted neural image codec").

An image is a pyramid of one-channel latent grids, level k at 1/2^k of the image's size. Each level is
upsampled to full size (bicubic), the stack goes through a tiny per-pixel network (40 hidden units,
Cool-chic 2's "40-1-linear-relu, 3-1-linear-none") and two 3x3 residual convolutions, and out comes
the image. The latents are the coded content: trained with uniform noise standing in for rounding,
under a rate term from the entropy model, so the loss is distortion + lambda * bits.

Departure from Cool-chic: its entropy model (ARM) reads causal neighbours in raster order, which
needs a sequential decoder (theirs is C). Here each latent's Laplace (mean, scale) comes from what a
*parallel* decoder already has: the next-coarser level, and for the second half of a checkerboard
(He et al., CVPR 2021) the four neighbours from the first half. A level decodes in two passes.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 7  # Cool-chic's pyramid: full size down to 1/64
HIDDEN = 40
CONTEXT_HIDDEN = 16
MIN_PROBABILITY = 2.0**-16  # as Cool-chic: no symbol costs more than 16 bits
LOG_SCALE_RANGE = (-4.0, 6.0)  # Laplace scales from 0.02 to 400 quantisation steps
COMPILE_FROM = 1 << 18  # pixels from which the rate runs compiled: smaller images never repay the compile
CHUNK = 8192  # pixels per block of the per-pixel networks: a block's hidden layer stays in cache


def level_shapes(height: int, width: int, levels: int = LEVELS) -> list[tuple[int, int]]:
    """(h, w) of each latent level: ceil(size / 2^k), never below 1.

    Example:
        >>> level_shapes(512, 768, 3)
        [(512, 768), (256, 384), (128, 192)]
    """
    return [(max(1, math.ceil(height / 2**k)), max(1, math.ceil(width / 2**k))) for k in range(levels)]


def checkerboard(height: int, width: int) -> torch.Tensor:
    """(1, 1, h, w) bool mask of the first-pass latents ((row + column) even)."""
    rows, cols = torch.arange(height)[:, None], torch.arange(width)[None, :]
    return ((rows + cols) % 2 == 0)[None, None]


class _PixelMLP(torch.autograd.Function):
    """Linear-ReLU-...-Linear on channels-first (features, pixels) input, block by block, in fp32.

    The per-pixel networks are tiny and their inputs huge (768x512 pixels), so a plain module spends
    its time writing and re-reading a (pixels, hidden) activation in memory. Here each block of CHUNK
    pixels runs through every layer while in cache, and the backward pass recomputes a block's
    activations instead of storing them (`benchmarks/speed_vs_commit.py --codec` times the whole step).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            x, params = x.to(dtype), [p.to(dtype) for p in params]
            out = x.new_empty(params[-2].shape[0], x.shape[1])
            for start in range(0, x.shape[1], CHUNK):
                out[:, start:start + CHUNK] = _activations(x[:, start:start + CHUNK], params)[-1]
        ctx.save_for_backward(x, *params)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, *params = ctx.saved_tensors
        grad = grad.to(x.dtype)
        grads = [torch.zeros_like(p) for p in params]
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        for start in range(0, x.shape[1], CHUNK):
            acts = _activations(x[:, start:start + CHUNK], params)
            g = grad[:, start:start + CHUNK]
            for i in reversed(range(len(params) // 2)):  # layer i: acts[i] -> acts[i + 1]
                if i < len(params) // 2 - 1:
                    g = torch.ops.aten.threshold_backward(g, acts[i + 1], 0)  # through the ReLU
                grads[2 * i].addmm_(g, acts[i].T)
                grads[2 * i + 1] += g.sum(1)
                if i or grad_x is not None:
                    g = params[2 * i].T @ g
            if grad_x is not None:
                grad_x[:, start:start + CHUNK] = g
        return grad_x, *grads


def _activations(x: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """[input, hidden..., output] of Linear-ReLU-...-Linear with params [w0, b0, w1, b1, ...]."""
    acts = [x]
    for i in range(0, len(params), 2):
        y = torch.addmm(params[i + 1][:, None], params[i], acts[-1])
        acts.append(y.relu_() if i + 2 < len(params) else y)
    return acts


def pixel_mlp(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """`net` (Linear and ReLU layers) on channels-first x of shape (features, pixels) -> (outputs, pixels)."""
    params = [t for layer in net if isinstance(layer, nn.Linear) for t in (layer.weight, layer.bias)]
    return _PixelMLP.apply(x, *params)


@lru_cache(maxsize=32)
def _upsampling_matrix(size: int, target: int, device: torch.device) -> torch.Tensor:
    """(target, size) matrix of 1-D bicubic upsampling (PyTorch's, align_corners=False): the image of
    each unit vector. Cached per device, so a GPU step does not copy it from the host again."""
    units = torch.eye(size, dtype=torch.float64)[:, None, :, None]
    matrix = F.interpolate(units, size=(target, 1), mode="bicubic", align_corners=False)[:, 0, :, 0].T
    return matrix.float().to(device)


def upsample(z: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """F.interpolate(z, (height, width), mode="bicubic") for a (1, 1, h, w) grid, as two matrix products
    in fp32: on a CPU, the interpolation kernel's backward pass was among the largest costs of a training step."""
    rows = _upsampling_matrix(z.shape[-2], height, z.device)
    cols = _upsampling_matrix(z.shape[-1], width, z.device)
    with torch.autocast(z.device.type, enabled=False):
        return (rows @ z[0, 0].float() @ cols.T)[None, None]


def laplace_bits(values: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Bits of each value under a Laplace(mean, e^log_scale) integrated over [v - 1/2, v + 1/2]."""
    scale = log_scale.exp()

    def cdf(x: torch.Tensor) -> torch.Tensor:
        return 0.5 + 0.5 * torch.sign(x) * -torch.expm1(-x.abs() / scale)

    centred = values - mean
    probability = (cdf(centred + 0.5) - cdf(centred - 0.5)).clamp_min(MIN_PROBABILITY)
    return -torch.log2(probability)


_compile_failed = False


def fast_laplace_bits(values: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """`laplace_bits` through torch.compile: one fused loop, where eager autograd makes about 25 passes
    over every latent (half a million at 768x512). Falls back to eager, with one warning, where
    compiling fails (no C++ compiler, say)."""
    global _compile_failed
    if not _compile_failed:
        try:
            return _compiled_laplace_bits()(values, mean, log_scale)
        except Exception as exc:  # noqa: BLE001  (no compiler, unsupported platform)
            _compile_failed = True
            warnings.warn(f"torch.compile failed ({type(exc).__name__}); the rate runs uncompiled", stacklevel=2)
    return laplace_bits(values, mean, log_scale)


@lru_cache(maxsize=1)
def _compiled_laplace_bits():
    return torch.compile(laplace_bits, dynamic=True)


class ContextModel(nn.Module):
    """Laplace (mean, log scale) of each latent from what the decoder has before decoding it.

    Features per latent: whether it is in the first checkerboard pass, its four neighbours (zero in
    the first pass, decoded anchors in the second), and the next-coarser level at its place (zero for
    the coarsest). One small network serves every level, as Cool-chic's ARM does.
    """

    FEATURES = 6

    def __init__(self, hidden: int = CONTEXT_HIDDEN):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(self.FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def features(self, latent: torch.Tensor, coarser: torch.Tensor | None) -> torch.Tensor:
        """(h*w, FEATURES) for a (1, 1, h, w) quantised latent level and its coarser level (or None)."""
        return self.feature_maps(latent, coarser).flatten(2).squeeze(0).T

    def feature_maps(self, latent: torch.Tensor, coarser: torch.Tensor | None) -> torch.Tensor:
        """(1, FEATURES, h, w): `features` as images."""
        h, w = latent.shape[-2:]
        first = checkerboard(h, w).to(latent.device)
        padded = F.pad(latent, (1, 1, 1, 1))  # the four neighbours (up, down, left, right); zero off the edge
        neighbours = torch.cat([padded[..., :-2, 1:-1], padded[..., 2:, 1:-1], padded[..., 1:-1, :-2],
                                padded[..., 1:-1, 2:]], dim=1) * ~first
        if coarser is None:
            coarse = torch.zeros_like(latent)
        else:
            coarse = F.interpolate(coarser, size=(h, w), mode="bilinear", align_corners=False)
        return torch.cat([first.to(latent.dtype), neighbours, coarse], dim=1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_scale = self.net(features).unbind(-1)
        return mean, log_scale.clamp(*LOG_SCALE_RANGE)

    def level_params(self, latent: torch.Tensor, coarser: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log scale), each (h*w,), for every latent of a level, given the whole quantised level.

        A second-pass latent's neighbours are first-pass latents, so this equals what the two-pass
        decoder computes (which runs `forward` in float64; this is the fast path for training).
        """
        mean, log_scale = pixel_mlp(self.net, self.feature_maps(latent, coarser).flatten(2).squeeze(0))
        return mean, log_scale.clamp(*LOG_SCALE_RANGE)


class Residual(nn.Module):
    """x + conv3x3(x), optionally followed by a ReLU; zero-initialised, so it starts as the identity."""

    def __init__(self, channels: int, relu: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="replicate")
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.conv(x)
        return F.relu(x) if self.relu else x


class LatentGrid(nn.Module):
    """A latent pyramid, its entropy model and a synthesis network, for one (height, width) image.

    Example:
        >>> net = LatentGrid(32, 48, channels=3, levels=4)
        >>> image, bits = net(noise=True)
        >>> tuple(image.shape), bits.ndim
        ((1, 3, 32, 48), 0)
    """

    def __init__(self, height: int, width: int, channels: int = 3, levels: int = LEVELS, hidden: int = HIDDEN,
                 context_hidden: int = CONTEXT_HIDDEN):
        super().__init__()
        self.height, self.width, self.channels, self.levels = height, width, channels, levels
        self.hidden, self.context_hidden = hidden, context_hidden
        self.latents = nn.ParameterList(nn.Parameter(torch.zeros(1, 1, h, w))
                                        for h, w in level_shapes(height, width, levels))
        self.context = ContextModel(context_hidden)
        self.mix = nn.Sequential(nn.Linear(levels, hidden), nn.ReLU(), nn.Linear(hidden, channels))  # 1x1 convs
        self.refine = nn.Sequential(Residual(channels, relu=True), Residual(channels, relu=False))

    def weights(self) -> dict[str, nn.Parameter]:
        """The networks' parameters (everything but the latents), by name, in file order."""
        return {n: p for n, p in self.named_parameters() if not n.startswith("latents")}

    def synthesize(self, latents: list[torch.Tensor]) -> torch.Tensor:
        """(1, channels, H, W) image from the (quantised) latents."""
        stack = [latents[0].float()] + [upsample(z, self.height, self.width) for z in latents[1:]]
        mixed = pixel_mlp(self.mix, torch.cat(stack, dim=1).flatten(2).squeeze(0))  # (channels, H*W)
        return self.refine(mixed.reshape(1, self.channels, self.height, self.width))

    def bits(self, latents: list[torch.Tensor]) -> torch.Tensor:
        """Total bits of the (quantised) latents under the context model."""
        total = latents[0].new_zeros(())
        rate = fast_laplace_bits if self.height * self.width >= COMPILE_FROM else laplace_bits
        for k, z in enumerate(latents):
            mean, log_scale = self.context.level_params(z, latents[k + 1] if k + 1 < len(latents) else None)
            total = total + rate(z.flatten(), mean, log_scale).sum()
        return total

    def quantised(self, noise: bool) -> list[torch.Tensor]:
        """The latents with rounding: uniform noise in its place (training), or rounded with
        straight-through gradients."""
        if noise:
            return [z + torch.empty_like(z).uniform_(-0.5, 0.5) for z in self.latents]
        return [z + (torch.round(z) - z).detach() for z in self.latents]

    def forward(self, noise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(image, total bits of the latents)."""
        coded = self.quantised(noise)
        return self.synthesize(coded), self.bits(coded)
