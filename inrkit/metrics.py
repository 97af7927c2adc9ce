"""Functional metrics, one definition for every backbone. Always pass `data_range` explicitly.

All metrics compute in float64 whatever the input dtype, so numbers do not depend on AMP or device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = np.ndarray | torch.Tensor


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
    x, y = _t(pred), _t(target)
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
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
    from scipy.spatial import cKDTree

    if len(pred) == 0 or len(target) == 0:
        return math.inf, 0.0
    d_pt = cKDTree(target).query(pred, workers=-1)[0]
    d_tp = cKDTree(pred).query(target, workers=-1)[0]
    precision, recall = float((d_pt < tau).mean()), float((d_tp < tau).mean())
    fscore = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return float(d_pt.mean() + d_tp.mean()), fscore
