"""Functional metrics, one definition for every backbone. Always pass `data_range` explicitly.

All metrics compute in float64 whatever the input dtype, so numbers do not depend on AMP or device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = np.ndarray | torch.Tensor


def _images(pred: ArrayLike, target: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Two images of one shape as float64 (H, W, C) tensors (a grey (H, W) image gains its channel axis)."""
    x, y = _t(pred), _t(target)
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {tuple(x.shape)} vs {tuple(y.shape)}")
    return (x[..., None], y[..., None]) if x.ndim == 2 else (x, y)


def _t(x: ArrayLike) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().double().cpu()


def mse(pred: ArrayLike, target: ArrayLike) -> float:
    """Mean squared error."""
    return float(((_t(pred) - _t(target)) ** 2).mean())


def psnr_from_mse(err: float, data_range: float) -> float:
    """PSNR in dB for a mean squared error and a peak-to-peak range (inf for a perfect fit)."""
    return math.inf if err <= 0 else 10 * math.log10(data_range**2 / err)


def psnr(pred: ArrayLike, target: ArrayLike, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB: 10 log10(data_range² / MSE).

    Example:
        >>> round(psnr(np.full(4, 0.5), np.full(4, 0.6), data_range=1.0), 2)
        20.0
    """
    return psnr_from_mse(mse(pred, target), data_range)


def snr(pred: ArrayLike, target: ArrayLike) -> float:
    """Signal-to-noise ratio in dB: 10 log10(sum target² / sum (pred - target)²)."""
    t = _t(target)
    noise = float(((_t(pred) - t) ** 2).sum())
    return math.inf if noise <= 0 else 10 * math.log10(float((t**2).sum()) / noise)


def ssim(pred: ArrayLike, target: ArrayLike, data_range: float, win_size: int = 7) -> float:
    """Mean structural similarity of (H, W) or (H, W, C) images, as `skimage.metrics.structural_similarity`.

    Same definition as scikit-image's default: a uniform `win_size` window, sample covariance,
    K1 = 0.01, K2 = 0.03, the mean over the window positions that lie fully inside the image and
    then over channels.

    Example:
        >>> img = np.random.default_rng(0).random((16, 16))
        >>> ssim(img, img, data_range=1.0)
        1.0
    """
    x, y = _images(pred, target)
    if min(x.shape[:2]) < win_size:
        raise ValueError(f"SSIM needs images of at least {win_size}x{win_size}, got {tuple(x.shape[:2])}")
    x, y = x.permute(2, 0, 1)[:, None], y.permute(2, 0, 1)[:, None]  # (C, 1, H, W)

    def mean(z: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(z, win_size, stride=1)

    cov_norm = win_size**2 / (win_size**2 - 1)
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return float(s.mean(dim=(1, 2, 3)).mean())


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Wang, Simoncelli & Bovik (2003), the five scales' exponents, finest first."""


def _gauss_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _ssim_cs(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor,
             data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean SSIM and contrast-structure term of (C, 1, H, W) stacks, Gaussian window, valid part."""
    def blur(z: torch.Tensor) -> torch.Tensor:  # separable 2-D Gaussian, no padding
        return F.conv2d(F.conv2d(z, win.view(1, 1, 1, -1)), win.view(1, 1, -1, 1))

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ux, uy = blur(x), blur(y)
    vx, vy, vxy = blur(x * x) - ux**2, blur(y * y) - uy**2, blur(x * y) - ux * uy
    cs = (2 * vxy + c2) / (vx + vy + c2)
    lum = (2 * ux * uy + c1) / (ux**2 + uy**2 + c1)
    return (lum * cs).mean(dim=(1, 2, 3)), cs.mean(dim=(1, 2, 3))


def ms_ssim_scales(height: int, width: int, win_size: int = 11) -> int:
    """How many of the five MS-SSIM scales an image of this size has room for (0: too small for one).

    Scale k (from 1) needs the image, halved k - 1 times, to be larger than the window's reach:
    min(H, W) > (win_size - 1) * 2^(k - 1). Five scales need 161 px or more.

    Example:
        >>> ms_ssim_scales(512, 768), ms_ssim_scales(128, 128), ms_ssim_scales(8, 8)
        (5, 4, 0)
    """
    n = 0
    while n < len(MS_SSIM_WEIGHTS) and min(height, width) > (win_size - 1) * 2**n:
        n += 1
    return n


def ms_ssim(pred: ArrayLike, target: ArrayLike, data_range: float, scales: int | None = None) -> float:
    """Multi-scale SSIM of (H, W) or (H, W, C) images (Wang, Simoncelli & Bovik 2003).

    The standard definition, as CompressAI reports and `pytorch_msssim.ms_ssim` computes: an 11-tap
    Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, five scales with weights
    (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 average pooling between scales (odd sides padded),
    negative terms clipped to 0, the product over scales taken per channel and then averaged.

    Small images: five scales need min(H, W) >= 161. A smaller image uses the most scales it has
    room for (`ms_ssim_scales`: 81-160 px four, 41-80 three, 21-40 two, 11-20 one), with the first
    weights renormalised to sum to 1, so the number is comparable across sizes only at the same
    scale count; under 11 px it raises ValueError. Pass `scales` to fix the count.

    Example:
        >>> img = np.random.default_rng(0).random((32, 32, 3))
        >>> round(ms_ssim(img, img, data_range=1.0), 6)
        1.0
    """
    x, y = _images(pred, target)
    fits = ms_ssim_scales(*x.shape[:2])
    n = fits if scales is None else scales
    if n < 1 or n > fits:
        raise ValueError(f"MS-SSIM with {n} scale(s) needs images larger than {10 * 2 ** max(n - 1, 0)} px "
                         f"on the short side, got {tuple(x.shape[:2])}")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:n], dtype=torch.float64)
    weights = weights / weights.sum()
    x, y = x.permute(2, 0, 1)[:, None], y.permute(2, 0, 1)[:, None]  # (C, 1, H, W)
    win, terms = _gauss_window(), []
    for level in range(n):
        s, cs = _ssim_cs(x, y, win, data_range)
        if level < n - 1:
            terms.append(cs.clamp(min=0))
            pad = [side % 2 for side in x.shape[2:]]
            x, y = F.avg_pool2d(x, 2, padding=pad), F.avg_pool2d(y, 2, padding=pad)
    terms.append(s.clamp(min=0))
    per_channel = torch.prod(torch.stack(terms) ** weights[:, None], dim=0)
    return float(per_channel.mean())


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of two boolean occupancies (1.0 when both are empty).

    Example:
        >>> iou(np.array([1, 1, 0], bool), np.array([1, 0, 0], bool))
        0.5
    """
    pred, target = np.asarray(pred, bool), np.asarray(target, bool)
    union = np.logical_or(pred, target).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, target).sum() / union)


def chamfer_fscore(pred: np.ndarray, target: np.ndarray, tau: float = 0.01) -> tuple[float, float]:
    """Chamfer distance and F-score between two point sets (N, 3) and (M, 3).

    Chamfer = mean_p min_t |p - t| + mean_t min_p |t - p| (L1 form, as NeuRBF's "CD"); F-score at
    `tau` = harmonic mean of precision (pred within tau of target) and recall (the reverse).

    Example:
        >>> pts = np.random.default_rng(0).random((100, 3))
        >>> chamfer_fscore(pts, pts)
        (0.0, 1.0)
    """
    from .utils import require

    cKDTree = require("scipy.spatial", extra="shapes", feature="Chamfer distance").cKDTree  # noqa: N806
    if len(pred) == 0 or len(target) == 0:
        return math.inf, 0.0
    d_pt = cKDTree(target).query(pred, workers=-1)[0]
    d_tp = cKDTree(pred).query(target, workers=-1)[0]
    precision, recall = float((d_pt < tau).mean()), float((d_tp < tau).mean())
    fscore = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return float(d_pt.mean() + d_tp.mean()), fscore
