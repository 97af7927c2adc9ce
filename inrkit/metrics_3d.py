"""Metrics for 3-D shapes: IoU of occupancy grids, Chamfer distance and F-score between surfaces.

Distances are in the normalised frame, where the shape's longest side spans 1.8 (it is scaled into
[-0.9, 0.9]³), so numbers compare across meshes of any size.
"""

from __future__ import annotations

import math

import numpy as np


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of two boolean occupancies (1.0 when both are empty).

    Example:
        >>> iou(np.array([1, 1, 0], bool), np.array([1, 0, 0], bool))
        0.5
    """
    pred, target = np.asarray(pred, bool), np.asarray(target, bool)
    union = np.logical_or(pred, target).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, target).sum() / union)


def marching_cubes(field: np.ndarray, level: float, inside_high: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Closed surface where a (n, n, n) cell-centre field crosses `level`; vertices in [-1, 1]³.

    The field is padded with an outside value so that shapes touching the cube's faces still close,
    and faces are oriented outwards (positive signed volume).

    Example:
        >>> c = (2 * np.arange(32) + 1) / 32 - 1
        >>> x, y, z = np.meshgrid(c, c, c, indexing="ij")
        >>> verts, faces = marching_cubes(0.5 - np.sqrt(x**2 + y**2 + z**2), 0.0)
        >>> bool(np.abs(np.linalg.norm(verts, axis=1) - 0.5).max() < 0.02)
        True
    """
    from skimage import measure

    f = np.asarray(field, np.float32) if inside_high else -np.asarray(field, np.float32)
    level = level if inside_high else -level
    low = min(float(f.min()), level) - 1.0
    padded = np.pad(f, 1, constant_values=low)
    if not (padded.max() > level):
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    verts, faces, _, _ = measure.marching_cubes(padded, level)
    n = field.shape[0]
    verts = (2 * (verts - 1) + 1) / n - 1
    tri = verts[faces]
    if np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() < 0:
        faces = faces[:, ::-1]
    return verts, np.ascontiguousarray(faces)


def sample_mesh(verts: np.ndarray, faces: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n points uniformly (area-weighted) on a triangle mesh."""
    rng = np.random.default_rng(seed)
    tri = verts[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face = rng.choice(len(area), size=n, p=area / area.sum())
    u, v = rng.random((2, n))
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[face]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


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
