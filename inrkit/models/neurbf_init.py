"""NeuRBF's data-dependent kernel initialisation in torch: importance weights, weighted k-means, shapes.

Written from the formulas of `oppo-us-research/NeuRBF: util_init.py` (`kc_init_v3`, `kw_init_v3`),
which use CuPy and a KD-tree; here chunked `torch.cdist` does the nearest-centre search.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ALPHA = 0.5  # the authors divide each cluster's covariance by 0.5 (kernels twice as wide)
EXTENT = 2.0  # inrkit's domain [-1, 1] per axis
MAX_POINTS = 1 << 17  # points k-means sees on CPU; more are drawn ∝ weight (same expected centres)


def nearest(points: torch.Tensor, centres: torch.Tensor, k: int = 1, chunk: int = 8192) -> torch.Tensor:
    """Indices (N, k) of each point's k nearest centres (Euclidean), computed in chunks."""
    return torch.cat([torch.cdist(p, centres).topk(k, dim=1, largest=False).indices for p in points.split(chunk)])


def _sobel_magnitude(img: torch.Tensor) -> torch.Tensor:
    """|∇| of an (H, W, C) image with normalised Sobel filters (1/8), L2 over channels and directions."""
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
    kernel = torch.stack([kx, kx.T])[:, None]  # (2, 1, 3, 3): d/dcol, d/drow
    x = F.pad(img.permute(2, 0, 1)[:, None], (1, 1, 1, 1), mode="replicate")  # (C, 1, H+2, W+2)
    return F.conv2d(x, kernel).square().sum((0, 1)).sqrt()


def signal_weights(signal, in_features: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Points (N, D), importance weights (N,) and the sample pitch per axis (D,) for a signal.

    Grid signals: all sample centres weighted by the gradient magnitude of the values (Sobel in 2-D,
    central differences otherwise), as the authors' `weight_src='gt_grad'`. SDF points: 1/(|sdf| + 1e-9)
    (`'gt_inv'`), which puts centres on the surface. Other point signals: uniform weights.
    """
    values = signal.values.float()
    if signal.is_grid:
        shape = signal.shape
        if len(shape) == 2:
            w = _sobel_magnitude(values)
        else:
            grads = torch.gradient(values, dim=tuple(range(len(shape)))) if min(shape) > 1 else [values * 0]
            w = torch.stack([g.square().sum(-1) for g in grads]).sum(0).sqrt()
        pitch = torch.tensor([EXTENT / n for n in shape])
        return signal.coords(), w.reshape(-1), pitch
    points = signal.points.float()
    w = 1 / (values[:, 0].abs() + 1e-9) if signal.kind == "sdf" else torch.ones(points.shape[0])
    pitch = torch.full((in_features,), EXTENT / points.shape[0] ** (1 / in_features))
    return points, w, pitch


def prepare(points: torch.Tensor, weights: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise weights by their mean, drop zero weights, subsample to MAX_POINTS (∝ weight)."""
    weights = weights.double().clamp(min=0)
    if int((weights > 0).sum()) < n:  # a flat signal: fall back to (nearly) uniform weights
        weights = weights + weights.mean() + 1e-12
    keep = weights > 0
    points, weights = points[keep], weights[keep] / weights[keep].mean()
    if points.shape[0] > MAX_POINTS:
        index = torch.multinomial(weights.float(), MAX_POINTS, replacement=True)
        points, weights = points[index], torch.ones(MAX_POINTS, dtype=torch.float64)
    return points, weights


def weighted_kmeans(points: torch.Tensor, weights: torch.Tensor, n: int, iters: int = 10) -> torch.Tensor:
    """Centres (n, D): seeds drawn without replacement ∝ weight, then `iters` weighted Lloyd steps.

    Empty clusters keep their centre; no convergence test, as in the authors' `kc_init_v3`.
    """
    replace = points.shape[0] < n
    centres = points[torch.multinomial(weights.float(), n, replacement=replace)].clone()
    for _ in range(iters):
        assign = nearest(points, centres)[:, 0]
        mass = torch.zeros(n, dtype=weights.dtype).index_add_(0, assign, weights)
        sums = torch.zeros(n, points.shape[1], dtype=weights.dtype)
        sums.index_add_(0, assign, points.double() * weights[:, None])
        filled = mass > 0
        centres[filled] = (sums[filled] / mass[filled, None]).to(centres.dtype)
    return centres


def _cluster_moments(points, weights, centres):
    assign = nearest(points, centres)[:, 0]
    off = (points - centres[assign]).double()
    mass = torch.zeros(centres.shape[0], dtype=torch.float64).index_add_(0, assign, weights)
    return assign, off, mass


def anisotropic_shapes(points, weights, centres, pitch) -> torch.Tensor:
    """Inverse covariances S_i (n, D, D) for inverse-quadratic kernels 1 / (1 + δᵀ S δ).

    Σ_i = weighted covariance of the cluster's offsets / 0.5; diagonal clipped to
    [(pitch/200)², (extent/10)²], off-diagonals to ±0.999 sqrt(Σ_ii Σ_jj); empty clusters get the floor.
    """
    assign, off, mass = _cluster_moments(points, weights, centres)
    n, d = centres.shape
    outer = off[:, :, None] * off[:, None, :] * weights[:, None, None]
    cov = torch.zeros(n, d, d, dtype=torch.float64).index_add_(0, assign, outer)
    cov = cov / mass.clamp(min=1e-30)[:, None, None] / ALPHA
    lo, hi = (pitch.double() / 200) ** 2, torch.full((d,), (EXTENT / 10) ** 2, dtype=torch.float64)
    diag = torch.where(mass[:, None] > 0, cov.diagonal(dim1=1, dim2=2), lo).clamp(min=lo, max=hi)
    limit = 0.999 * (diag[:, :, None] * diag[:, None, :]).sqrt()
    cov = torch.maximum(torch.minimum(cov, limit), -limit)
    cov = cov * (1 - torch.eye(d, dtype=torch.float64)) + torch.diag_embed(diag)
    return torch.linalg.inv(cov).float()


def isotropic_scales(points, weights, centres, pitch) -> torch.Tensor:
    """Scales s_i (n,) for tent kernels Π_d clamp(1 - s_i |δ_d|, 0, 1) (the authors' `nlin_s`).

    σ_i² = 4 · (weighted mean squared distance / 0.5), clipped like the diagonal above; s_i = 1/σ_i.
    """
    assign, off, mass = _cluster_moments(points, weights, centres)
    msd = torch.zeros(centres.shape[0], dtype=torch.float64).index_add_(0, assign, off.square().sum(1) * weights)
    var = 4 * msd / mass.clamp(min=1e-30) / ALPHA
    lo, hi = float(pitch.mean()) ** 2 / 200**2, (EXTENT / 10) ** 2
    var = torch.where(mass > 0, var, torch.full_like(var, lo)).clamp(lo, hi)
    return var.rsqrt().float()
