"""Feature grids in pure PyTorch: multi-resolution hash grids (Instant-NGP) and dense multi-level grids.

Both map coordinates in [-1, 1] (any of 1, 2 or 3 dimensions) to the concatenated features of every
level, interpolated (multi)linearly from the level's vertices. Shared by the `ngp` and `neurbf`
backbones, whose authors use CUDA extensions (tiny-cuda-nn, torch-ngp's `gridencoder`) for this.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

# Instant-NGP's spatial-hash primes (Müller et al. 2022, Eq. 4); the first is 1 for memory coherence.
PRIMES = (1, 2654435761, 805459861)


def level_resolutions(base: int, finest: int, levels: int) -> list[int]:
    """Vertices per axis of each level, growing geometrically from `base` to `finest`.

    Example:
        >>> level_resolutions(16, 256, 3)
        [16, 64, 256]
    """
    finest = max(finest, base)
    if levels == 1:
        return [finest]
    growth = math.exp((math.log(finest) - math.log(base)) / (levels - 1))
    return [int(round(base * growth**level)) for level in range(levels)]


class HashGrid(nn.Module):
    """Multi-resolution hash encoding (Müller et al., SIGGRAPH 2022), all levels vectorised.

    A level whose (res)^d vertices fit in `hashmap_size` entries is stored densely (one entry per
    vertex, as Instant-NGP does); finer levels index a table of `hashmap_size` entries through the
    spatial hash XOR_d(v_d · π_d) mod T. `hashmap_size` need not be a power of two, so parameter
    budgets can be matched closely. Entries start U(±1e-4) as in the paper.

    Example:
        >>> HashGrid(2, levels=4, hashmap_size=1024)(torch.zeros(5, 2)).shape
        torch.Size([5, 8])
    """

    def __init__(self, in_features: int, levels: int = 16, features_per_level: int = 2, hashmap_size: int = 2**19,
                 base_resolution: int = 16, finest_resolution: int = 512, init_scale: float = 1e-4) -> None:
        super().__init__()
        self.in_features, self.levels, self.features_per_level = in_features, levels, features_per_level
        self.hashmap_size = int(hashmap_size)
        res = level_resolutions(base_resolution, finest_resolution, levels)
        sizes = [min(r**in_features, self.hashmap_size) for r in res]
        self.register_buffer("resolutions", torch.tensor(res, dtype=torch.long), persistent=False)
        dense = torch.tensor([r**in_features <= self.hashmap_size for r in res])
        self.register_buffer("dense", dense, persistent=False)
        self.register_buffer("sizes", torch.tensor(sizes, dtype=torch.long), persistent=False)
        self.register_buffer("offsets", torch.tensor([0, *itertools.accumulate(sizes)][:-1], dtype=torch.long),
                             persistent=False)
        strides = [[r**d for d in range(in_features)] for r in res]
        self.register_buffer("strides", torch.tensor(strides, dtype=torch.long), persistent=False)
        corners = list(itertools.product((0, 1), repeat=in_features))
        self.register_buffer("corners", torch.tensor(corners, dtype=torch.long), persistent=False)
        self.embeddings = nn.Parameter(torch.empty(sum(sizes), features_per_level).uniform_(-init_scale, init_scale))
        self.out_features = levels * features_per_level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        scale = (self.resolutions - 1).to(x.dtype)  # vertices 0..res-1 span [-1, 1]
        pos = ((x.clamp(-1, 1) + 1) / 2)[:, None, :] * scale[None, :, None]  # (N, L, D)
        low = pos.floor().clamp(max=scale[None, :, None] - 1).clamp(min=0)
        frac = pos - low
        vert = low.long()[:, :, None, :] + self.corners[None, None]  # (N, L, 2^D, D)
        dense_index = (vert * self.strides[None, :, None, :]).sum(-1)
        hashed = vert[..., 0] * PRIMES[0]
        for d in range(1, self.in_features):
            hashed = hashed ^ (vert[..., d] * PRIMES[d])
        index = torch.where(self.dense[None, :, None], dense_index, hashed % self.sizes[None, :, None])
        index = index + self.offsets[None, :, None]
        feats = self.embeddings[index]  # (N, L, 2^D, F)
        c = self.corners.to(x.dtype)[None, None]  # weight of a corner: prod_d (frac or 1 - frac)
        weights = (c * frac[:, :, None, :] + (1 - c) * (1 - frac[:, :, None, :])).prod(-1)
        return (feats * weights[..., None]).sum(2).reshape(n, self.out_features)


class DenseGrids(nn.Module):
    """Dense multi-level feature grids read with `F.grid_sample` (bilinear / trilinear, align_corners).

    1-D grids are stored as 1-row images so the same call covers audio. Entries start U(±init_scale).

    Example:
        >>> DenseGrids(2, levels=2, finest_resolution=32)(torch.zeros(5, 2)).shape
        torch.Size([5, 4])
    """

    def __init__(self, in_features: int, levels: int = 2, features_per_level: int = 2, base_resolution: int = 16,
                 finest_resolution: int = 256, init_scale: float = 1e-4) -> None:
        super().__init__()
        if in_features not in (1, 2, 3):
            raise TypeError(f"dense grids support 1-3 coordinate dimensions, got {in_features}")
        self.in_features = in_features
        res = level_resolutions(base_resolution, finest_resolution, levels)
        shape = [[1, r] if in_features == 1 else [r] * in_features for r in res]
        self.grids = nn.ParameterList(
            nn.Parameter(torch.empty(1, features_per_level, *s).uniform_(-init_scale, init_scale)) for s in shape)
        self.out_features = levels * features_per_level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        # grid_sample wants (x, y[, z]) = (last axis, ..., first axis); inrkit's coordinates are `ij`
        g = torch.cat([x, torch.zeros_like(x)], -1) if self.in_features == 1 else x.flip(-1)
        g = g.view(1, *[1] * max(self.in_features - 1, 1), n, g.shape[-1])
        out = [F.grid_sample(grid, g, mode="bilinear", padding_mode="border", align_corners=True).reshape(-1, n)
               for grid in self.grids]
        return torch.cat(out, 0).T
