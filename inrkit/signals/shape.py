"""3-D shapes as two signal kinds: "occupancy" (inside = 1) and "sdf" (signed distance, negative inside).

Meshes (OBJ/PLY/STL/OFF/GLB) and oriented point clouds (.xyz, SDF) become point signals: training
points near the surface and in the cube with their targets (see `shape_sampling`), normalised into
[-0.9, 0.9]³; `meta` keeps `centre` and `scale` so exported meshes land in the mesh's own frame.
A dense `.npy`/`.npz` volume becomes a grid signal judged on its own grid (WIRE's protocol).
Metrics: IoU at 0.5 on an N³ grid of cell centres (`eval_res`, default 128), plus Chamfer distance
and F-score of the marching-cubes surface for SDF. The reconstruction is a PLY mesh.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .. import metrics
from ..errors import SignalError
from ..limits import check_shape
from ..utils import require
from .base import Metric, Predict, Signal, SignalInfo, SignalKind, grid_coords, predict_grid, register_kind
from .shape_geometry import MESH_SUFFIXES, Shape, marching_cubes, read_shape, sample_mesh, sample_surface
from .shape_sampling import DEFAULTS, ShapeSampling, content_hash, occupancy_grid, training_samples
from .shape_size import volume_shape

VOLUME_SUFFIXES = (".npy", ".npz")
DEFAULT_RES = 128
MAX_RES = 512
BATCH_SIZE = 1 << 13  # points per step: a full step over 250k points takes seconds on a laptop CPU
_SHAPES: dict[str, Shape] = {}  # content hash -> normalised shape, so evaluation reads a mesh once


def _check_res(res: object, what: str) -> int:
    if isinstance(res, bool) or not isinstance(res, int) or not 8 <= res <= MAX_RES:
        raise SignalError(f"{what} must be an integer from 8 to {MAX_RES}, got {res!r}")
    check_shape((res,) * 3, f"the {what} grid", SignalError)  # 512³ is over the default sample limit
    return res


def _shape(path: Path, digest: str) -> Shape:
    if digest not in _SHAPES:
        _SHAPES[digest] = read_shape(path)
    return _SHAPES[digest]


def require_shapes() -> None:
    """Shapes need trimesh, SciPy and scikit-image (the `shapes` extra): one line naming it when one is missing."""
    for module in ("trimesh", "scipy", "skimage"):
        require(module, extra="shapes", feature="shapes")


def _load(kind: str, path: Path, eval_res: int | None = None, sampling: ShapeSampling | None = None,
          **_: object) -> Signal:
    require_shapes()
    res = _check_res(DEFAULT_RES if eval_res is None else eval_res, "eval-res")  # 0 is an error, not the default
    suffix = path.suffix.lower()
    if suffix in VOLUME_SUFFIXES:
        return _load_volume(kind, path, res)
    if suffix == ".xyz" and kind == "occupancy":
        raise SignalError(f"{path}: a point cloud has no inside for occupancy; fit it with --kind sdf")
    if suffix not in MESH_SUFFIXES + (".xyz",):
        raise SignalError(f"{path}: unsupported shape file {suffix!r}; use {' '.join(MESH_SUFFIXES)} .xyz .npy .npz")
    digest = content_hash(path)
    shape = _shape(path, digest)
    points, values, hit = training_samples(shape, digest, kind, sampling or DEFAULTS[kind])
    if not _has_inside(kind, values):
        raise SignalError(f"{path}: the shape encloses no volume (no sample lies inside it)")
    meta = {"name": path.stem, "source": str(path.resolve()), "content_hash": digest, "eval_res": res,
            "render_res": res, "grid_shape": [res] * 3, "centre": shape.centre.tolist(), "scale": shape.scale,
            "cache_hit": hit}
    data_range = (0.0, 1.0) if kind == "occupancy" else (-1.0, 1.0)
    return Signal(kind, torch.from_numpy(values[:, None]), data_range, torch.from_numpy(points), meta)


def _has_inside(kind: str, values: np.ndarray) -> bool:
    """Some but not all samples inside (a flat or open sheet has no inside; neither has a too-small cube)."""
    inside = values >= 0.5 if kind == "occupancy" else values < 0
    return bool(inside.mean() > 1e-4) and not bool(inside.all())


def _load_volume(kind: str, path: Path, res: int) -> Signal:
    """A dense (D, H, W) volume: occupancy in [0, 1] or signed distance (negative inside)."""
    check_shape(volume_shape(path), f"{path}: the volume", SignalError)
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            data = data[data.files[0]]
    except Exception as exc:
        raise SignalError(f"{path}: cannot read as a NumPy volume ({type(exc).__name__})") from exc
    vol = np.asarray(data, np.float32)
    if vol.ndim == 4 and vol.shape[-1] == 1:
        vol = vol[..., 0]
    if vol.ndim != 3 or min(vol.shape) < 2 or not np.isfinite(vol).all():
        raise SignalError(f"{path}: expected a finite 3-D volume, got shape {vol.shape}")
    if kind == "occupancy" and (vol.min() < 0 or vol.max() > 1):
        raise SignalError(f"{path}: occupancy values must lie in [0, 1] (signed distances? use --kind sdf)")
    inside = vol >= 0.5 if kind == "occupancy" else vol < 0
    if not inside.any():
        raise SignalError(f"{path}: the volume encloses no inside cell")
    if kind == "sdf":
        vol = np.clip(vol, -1, 1)
    meta = {"name": path.stem, "source": str(path.resolve()), "render_res": max(vol.shape),
            "centre": [0.0, 0.0, 0.0], "scale": 1.0, "eval_res": res}
    data_range = (0.0, 1.0) if kind == "occupancy" else (-1.0, 1.0)
    return Signal(kind, torch.from_numpy(np.ascontiguousarray(vol[..., None])), data_range, meta=meta)


def load_occupancy(path: str | Path, **options: object) -> Signal:
    """A mesh (or occupancy volume) as an occupancy signal: training points with targets in {0, 1}.

    Example:
        >>> import tempfile, trimesh
        >>> path = Path(tempfile.mkdtemp()) / "ball.ply"
        >>> _ = trimesh.creation.icosphere(subdivisions=2).export(path)
        >>> sig = load_occupancy(path, sampling=ShapeSampling(points=5000), eval_res=32)
        >>> sig.points.shape, sig.meta["eval_res"], sorted(set(sig.values[:, 0].tolist()))
        (torch.Size([5000, 3]), 32, [0.0, 1.0])
    """
    return _load("occupancy", Path(path), **options)


def load_sdf(path: str | Path, **options: object) -> Signal:
    """A mesh, oriented point cloud (.xyz) or SDF volume as signed distances (negative inside).

    Example:
        >>> import tempfile, trimesh
        >>> path = Path(tempfile.mkdtemp()) / "ball.ply"
        >>> _ = trimesh.creation.icosphere(subdivisions=2).export(path)
        >>> sig = load_sdf(path, sampling=ShapeSampling(points=5000))
        >>> float(sig.values.min()) < 0 < float(sig.values.max())
        True
    """
    return _load("sdf", Path(path), **options)


def _reference_grid(signal: Signal, res: int) -> np.ndarray:
    """Ground-truth occupancy (bool) on the res³ evaluation grid (a volume's own grid)."""
    if signal.is_grid:
        values = signal.values[..., 0].numpy()
        return values >= 0.5 if signal.kind == "occupancy" else values < 0
    return occupancy_grid(_shape(Path(signal.meta["source"]), signal.meta["content_hash"]),
                          signal.meta["content_hash"], res)


def _reference(signal: Signal, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth occupancy on the res³ evaluation grid and 100k points on the reference surface."""
    gt = _reference_grid(signal, res)
    if signal.is_grid:
        verts, faces = marching_cubes(gt.astype(np.float32), 0.5)
        return gt, sample_mesh(verts, faces, 100_000) if len(faces) else np.zeros((0, 3))
    return gt, sample_surface(_shape(Path(signal.meta["source"]), signal.meta["content_hash"]), 100_000,
                              np.random.default_rng(1))


PROBE_CELLS = 1 << 15


def iou_probe(signal: Signal, seed: int) -> Callable[[Predict], dict[str, float]]:
    """IoU on a fixed random subset of the evaluation grid's cells, for progress and a target IoU.

    An unbiased sample of the cells `evaluate_shape` scores (a few tenths of a point off its IoU), at a
    64th of the cost at 128³; the grid's ground truth is labelled once and cached either way.
    """
    # a volume is judged on its own (D, H, W) grid, a mesh on the eval_res³ one
    grid = signal.shape if signal.is_grid else (_check_res(signal.meta.get("eval_res", DEFAULT_RES), "eval-res"),) * 3
    gt = _reference_grid(signal, grid[0]).reshape(-1)
    index = np.random.default_rng(seed).integers(gt.size, size=min(PROBE_CELLS, gt.size))
    coords = grid_coords(grid, torch.from_numpy(index))
    occupancy = signal.kind == "occupancy"

    def estimate(predict: Predict) -> dict[str, float]:
        field = predict(coords)[:, 0].float().cpu().numpy()
        return {"iou": metrics.iou(field >= 0.5 if occupancy else field < 0, gt[index])}

    return estimate


def evaluate_shape(predict: Predict, signal: Signal, eval_res: int | None = None, **_: object) -> dict[str, float]:
    """IoU at 0.5 on an N³ grid (occupancy); IoU of the sign, Chamfer and F-score at 0.01 (SDF).

    Example:
        >>> import tempfile, trimesh
        >>> path = Path(tempfile.mkdtemp()) / "ball.ply"
        >>> _ = trimesh.creation.icosphere(subdivisions=3).export(path)
        >>> signal = load_occupancy(path, sampling=ShapeSampling(points=2000))
        >>> ball = lambda q: (q.norm(dim=1, keepdim=True) < 0.9).float()  # the normalised sphere, exactly
        >>> evaluate_shape(ball, signal, eval_res=32)["iou"] > 0.95
        True
    """
    chosen = signal.meta.get("eval_res", DEFAULT_RES) if eval_res is None else eval_res
    res = signal.shape[0] if signal.is_grid else _check_res(chosen, "eval-res")
    field = predict_grid(predict, (res,) * 3 if not signal.is_grid else signal.shape)[..., 0]
    gt, ref = _reference(signal, res)
    occupancy = signal.kind == "occupancy"
    out = {"iou": metrics.iou(field >= 0.5 if occupancy else field < 0, gt), "eval_res": res}
    if not occupancy:
        verts, faces = marching_cubes(field, 0.0, inside_high=False)
        pred = sample_mesh(verts, faces, 100_000) if len(faces) else np.zeros((0, 3))
        out["chamfer"], out["fscore"] = metrics.chamfer_fscore(pred, ref, 0.01)
    return out


def render_shape(predict: Predict, info: SignalInfo, res: int | None = None, scale: float | None = None,
                 size: tuple[int, ...] | None = None) -> np.ndarray:
    """The field (res³, 1) in signal units on a cell-centre grid of [-1, 1]³ (default: the fitted eval_res)."""
    if scale is not None or size is not None:  # a cube grid has one resolution; say so rather than ignore them
        raise SignalError("--scale and --size do not apply to shapes: they render on a cube grid of --res cells a side")
    res = _check_res(info.meta.get("render_res", DEFAULT_RES) if res is None else res, "res")
    return predict_grid(predict, (res,) * 3)


def write_shape(array: np.ndarray, info: SignalInfo, path: Path) -> None:
    """Marching cubes of a rendered field, mapped back to the mesh's own frame; PLY/OBJ/STL by suffix."""
    require_shapes()
    import trimesh

    occupancy = info.kind == "occupancy"
    verts, faces = marching_cubes(array[..., 0], 0.5 if occupancy else 0.0, inside_high=occupancy)
    if len(faces) == 0:
        raise SignalError("the fitted field has no surface (no point crosses the level); fit longer?")
    verts = verts / float(info.meta.get("scale", 1.0)) + np.asarray(info.meta.get("centre", [0, 0, 0]))
    trimesh.Trimesh(verts, faces, process=False).export(path)


def preview_shape(array: np.ndarray, signal: Signal, path: Path, title: str | None = None) -> None:
    """Central slices of the ground truth (top) and of the fit (middle, the true surface dashed), with a
    colour bar, and the fit's silhouettes along each axis (bottom; a field with no surface says so).

    `title` (e.g. "siren on bunny") heads the figure; the signal's name is used when None.
    """
    from ..plotting import subplots

    field = array[..., 0]
    occupancy = signal.kind == "occupancy"
    level = 0.5 if occupancy else 0.0
    solid = field >= level if occupancy else field < level
    n = field.shape[0]
    style = {"cmap": "viridis" if occupancy else "RdBu", "vmin": 0 if occupancy else -0.3,
             "vmax": 1 if occupancy else 0.3, "extent": (-1, 1, -1, 1), "origin": "lower"}
    truth = _truth_slices(signal, n)
    fig, axes = subplots(3, 4, figsize=(11, 9.6), gridspec_kw={"width_ratios": [1, 1, 1, 0.06]})
    ticks = np.linspace(-1, 1, n)
    for axis in range(3):
        cut = np.take(field, n // 2, axis=axis)
        if truth is not None:
            axes[0, axis].imshow(truth[axis].T, **style)
            axes[0, axis].contour(ticks, ticks, truth[axis].T, levels=[level], colors="k", linewidths=0.8)
        else:
            axes[0, axis].text(0.5, 0.5, "ground truth not available", ha="center", va="center", fontsize=8)
        im = axes[1, axis].imshow(cut.T, **style)
        if cut.min() < level < cut.max():
            axes[1, axis].contour(ticks, ticks, cut.T, levels=[level], colors="k", linewidths=0.8)
        if truth is not None and truth[axis].min() < level < truth[axis].max():
            axes[1, axis].contour(ticks, ticks, truth[axis].T, levels=[level], colors="r", linewidths=0.8,
                                  linestyles="--")
        axes[0, axis].set_title(f"ground truth, {'xyz'[axis]} = 0")
        axes[1, axis].set_title(f"fit, {'xyz'[axis]} = 0 (true surface dashed)", fontsize=9)
        if solid.any():
            axes[2, axis].imshow(solid.any(axis=axis).T, origin="lower", cmap="gray_r", extent=(-1, 1, -1, 1))
        else:
            axes[2, axis].text(0.5, 0.5, "no surface: the fit never\ncrosses the level", ha="center",
                               va="center", fontsize=8)
        axes[2, axis].set_title(f"fit's silhouette along {'xyz'[axis]}")
    fig.colorbar(im, cax=axes[0, 3], label="occupancy" if occupancy else "signed distance (normalised units)")
    fig.colorbar(im, cax=axes[1, 3], label="occupancy" if occupancy else "signed distance (normalised units)")
    axes[2, 3].axis("off")
    for ax in axes[:, :3].flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title or signal.name}: {signal.kind} at {n}³, surface at {level:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _truth_slices(signal: Signal, n: int) -> list[np.ndarray] | None:
    """The ground-truth field on the three central slices of an n³ grid (None when it cannot be had)."""
    from .shape_geometry import inside, unsigned_distance
    from .shape_sampling import cell_centres_3d

    if signal.is_grid:
        values = signal.values[..., 0].numpy()
        return [np.take(values, n // 2, axis=a) for a in range(3)] if values.shape[0] == n else None
    if "content_hash" not in signal.meta:
        return None
    shape = _shape(Path(signal.meta["source"]), signal.meta["content_hash"])
    grid = np.arange(n**3).reshape(n, n, n)
    index = np.concatenate([np.take(grid, n // 2, axis=a).ravel() for a in range(3)])
    pts = cell_centres_3d(n, index)
    occ = inside(shape, pts)
    values = occ.astype(np.float32) if signal.kind == "occupancy" else np.where(occ, -1.0, 1.0) * unsigned_distance(
        shape, pts)
    return [part.reshape(n, n) for part in np.split(values, 3)]


def depth_render(inside: np.ndarray) -> np.ndarray | None:
    """A (D, H, W) boolean volume seen along its first axis: nearer surfaces brighter, empty rays black."""
    if inside.ndim != 3 or not inside.any():
        return None
    hit = inside.any(axis=0)
    first = inside.argmax(axis=0).astype(np.float32)
    depth = np.where(hit, 1.0 - 0.7 * first / max(inside.shape[0] - 1, 1), 0.0)
    return depth[..., None].astype(np.float32)


def _volume(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    return array[..., 0] if array.ndim == 4 else array


def eikonal_term(weight: float, gain: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """weight · mean | |grad f| - 1 | with f in signal units: SIREN's eikonal term for signed distances."""

    def term(coords: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        grad, = torch.autograd.grad(output.sum(), coords, create_graph=True)
        return weight * (grad.norm(dim=-1) / gain - 1).abs().mean()

    return term


SHAPE_WRITES = (".ply", ".obj", ".stl", ".off", ".glb")  # what trimesh exports by suffix
SHAPE_METRICS = (Metric("iou"), Metric("chamfer", False), Metric("fscore"))
OCCUPANCY = register_kind(SignalKind(
    name="occupancy", suffixes=MESH_SUFFIXES + VOLUME_SUFFIXES, load=load_occupancy, evaluate=evaluate_shape,
    render=render_shape, write=write_shape, extension=".ply", write_suffixes=SHAPE_WRITES, coord_dims=3, channels=1,
    data_range=(0.0, 1.0),
    metrics=SHAPE_METRICS, load_options=("eval_res",), render_options=("res",), preview=preview_shape,
    thumbnail=lambda a: depth_render(_volume(a) > 0.5), loss="bce", batch_size=BATCH_SIZE, progress=iou_probe,
))
SDF = register_kind(SignalKind(
    name="sdf", suffixes=(".xyz",), load=load_sdf, evaluate=evaluate_shape, render=render_shape,
    write=write_shape, extension=".ply", write_suffixes=SHAPE_WRITES, coord_dims=3, channels=1, data_range=(-1.0, 1.0),
    metrics=SHAPE_METRICS, load_options=("eval_res",), render_options=("res",), preview=preview_shape,
    thumbnail=lambda a: depth_render(_volume(a) < 0), loss="mse", loss_terms={"eikonal": eikonal_term},
    batch_size=BATCH_SIZE, progress=iou_probe,
))
__all__ = ["OCCUPANCY", "SDF", "ShapeSampling", "evaluate_shape", "load_occupancy", "load_sdf"]
