"""Training samples and ground-truth grids for 3-D shapes, computed once and cached on disk.

Cache: `$INRKIT_CACHE` or `~/.cache/inrkit`, folder `shapes/`, one `.npz` per (file content hash,
kind, sampling settings) for training samples and per (content hash, resolution) for occupancy grids,
so a second fit of the same mesh starts at once.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import progress
from .shape_geometry import (
    IglWinding,
    Shape,
    WindingNumber,
    geometry_backend,
    inside,
    make_winding,
    sample_surface,
    unsigned_distance,
)

CACHE_VERSION = 1


@dataclass(frozen=True)
class ShapeSampling:
    """Where training points are drawn, as fractions of `points` (they must sum to 1).

    Attributes:
        points: number of training points.
        surface: fraction on the surface (SDF 0; never used for occupancy, whose label is undefined there).
        near: fraction at surface points plus N(0, sigma²) offsets, split equally over `sigmas`.
        uniform: fraction uniform in the cube [-1, 1]³.
        sigmas: standard deviations of the near-surface offsets, in normalised units (the shape spans 1.8).
        seed: seed of the sampling generator.
    """

    points: int = 250_000
    surface: float = 0.0
    near: float = 0.75
    uniform: float = 0.25
    sigmas: tuple[float, ...] = (0.01, 0.05)
    seed: int = 0

    def counts(self) -> tuple[int, list[int], int]:
        surface = round(self.points * self.surface)
        near = [round(self.points * self.near / len(self.sigmas))] * len(self.sigmas)
        return surface, near, self.points - surface - sum(near)


DEFAULTS = {
    # IoU is judged on a uniform grid, so occupancy puts most points in a thin band where labels flip.
    "occupancy": ShapeSampling(),
    # NeuRBF's SDF mix (4/8 surface, 3/8 near with sigma 0.01, 1/8 uniform).
    "sdf": ShapeSampling(surface=0.5, near=0.375, uniform=0.125, sigmas=(0.01,)),
}


def cache_dir() -> Path:
    """`$INRKIT_CACHE` or `~/.cache/inrkit`, created on first use."""
    root = Path(os.environ.get("INRKIT_CACHE") or Path.home() / ".cache" / "inrkit") / "shapes"
    root.mkdir(parents=True, exist_ok=True)
    return root


def content_hash(path: Path) -> str:
    """sha256 of the file's bytes (the cache key survives renames and copies)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps([CACHE_VERSION, *parts], sort_keys=True).encode()).hexdigest()[:24]


def _cached(name: str, compute) -> dict[str, np.ndarray]:
    """Load `name` from the cache, or compute, save (atomically) and return it."""
    path = cache_dir() / f"{name}.npz"
    if path.exists():
        try:
            with np.load(path) as data:
                return dict(data)
        except Exception:  # a torn or foreign file: recompute it
            pass
    arrays = compute()
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return arrays


def training_samples(shape: Shape, digest: str, kind: str,
                     settings: ShapeSampling) -> tuple[np.ndarray, np.ndarray, bool]:
    """Points (N, 3) and targets (N,) for `kind` (occupancy in {0, 1}, or signed distance), plus cache-hit flag.

    Example:
        >>> import tempfile, trimesh
        >>> from inrkit.signals.shape_geometry import read_shape
        >>> path = Path(tempfile.mkdtemp()) / "ball.ply"
        >>> _ = trimesh.creation.icosphere(subdivisions=2).export(path)
        >>> settings = ShapeSampling(points=1000, surface=0.5, near=0.25, uniform=0.25)
        >>> pts, values, hit = training_samples(read_shape(path), content_hash(path), "sdf", settings)
        >>> pts.shape, values.shape, hit, bool(np.abs(values[:500]).max() < 0.01)  # half on the surface
        ((1000, 3), (1000,), False, True)
    """
    name = f"samples-{_key(digest, kind, asdict(settings), geometry_backend())}"  # backends differ in the last digits
    hit = (cache_dir() / f"{name}.npz").exists()
    data = _cached(name, lambda: _compute_samples(shape, kind, settings))
    return data["points"], data["values"], hit


def _compute_samples(shape: Shape, kind: str, settings: ShapeSampling) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(settings.seed)
    n_surface, n_near, n_uniform = settings.counts()
    if kind == "occupancy":  # occupancy is undefined on the surface: those points go near it instead
        n_near[0] += n_surface
        n_surface = 0
    parts = [sample_surface(shape, n, rng) + rng.normal(0, s, (n, 3)) for n, s in zip(n_near, settings.sigmas)]
    off = np.clip(np.concatenate(parts + [rng.uniform(-1, 1, (n_uniform, 3))]), -1, 1)
    winding, chunks = _winding(shape), np.array_split(np.arange(len(off)), 10)
    # The labels are per point, so chunks give progress for the minute a first mesh fit takes.
    with progress.task(f"preparing {kind} samples (cached for next time)", len(chunks) + (kind != "occupancy")) as bar:
        occ = np.concatenate([_step(bar, inside(shape, off[idx], winding)) for idx in chunks])
        if kind == "occupancy":
            return {"points": off.astype(np.float32), "values": occ.astype(np.float32)}
        sdf = np.where(occ, -1.0, 1.0) * _step(bar, unsigned_distance(shape, off))
    points = np.concatenate([sample_surface(shape, n_surface, rng), off])
    values = np.concatenate([np.zeros(n_surface), sdf])
    return {"points": points.astype(np.float32), "values": np.clip(values, -1, 1).astype(np.float32)}


def _step(bar: progress.Task, result: np.ndarray) -> np.ndarray:
    bar.advance()
    return result


def _winding(shape: Shape) -> WindingNumber | IglWinding | None:
    return None if shape.faces is None else make_winding(shape.vertices, shape.faces)


def cell_centres_3d(res: int, index: np.ndarray | None = None) -> np.ndarray:
    """Cell-centre coordinates of a res³ grid (ij order), for flat indices (all when None)."""
    index = np.arange(res**3) if index is None else index
    i, j, k = np.unravel_index(index, (res, res, res))
    return (2 * np.stack([i, j, k], 1) + 1) / res - 1


def occupancy_grid(shape: Shape, digest: str, res: int) -> np.ndarray:
    """Ground-truth occupancy (bool, res³) of the normalised shape at cell centres, cached on disk.

    Meshes are labelled coarse to fine: at each doubling only cells near the surface or near a label
    change are evaluated exactly; the rest inherit their parent's label, since away from the surface
    the winding number changes only across hole spans, which show up as label changes. So the cost
    grows with the surface area (res²), not the volume (res³), and 512³ stays feasible.
    """
    name = f"grid-{_key(digest, res, geometry_backend())}"
    data = _cached(name, lambda: {"occ": np.packbits(_label_grid(shape, res))})
    return np.unpackbits(data["occ"], count=res**3).astype(bool).reshape(res, res, res)


def _label_grid(shape: Shape, res: int) -> np.ndarray:
    if shape.faces is None:  # nearest-normal labels are cheap: evaluate every cell
        return np.concatenate([inside(shape, cell_centres_3d(res, idx))
                               for idx in np.array_split(np.arange(res**3), max(1, res**3 // 500_000))])
    winding = _winding(shape)
    r = res
    while r > 32 and r % 2 == 0:
        r //= 2
    occ = inside(shape, cell_centres_3d(r), winding).reshape(r, r, r)
    rng = np.random.default_rng(0)
    with progress.task(f"labelling the {res}³ evaluation grid (cached for next time)", int(np.log2(res // r))) as bar:
        while r < res:
            occ, r = _refine(shape, occ, r, rng, winding), 2 * r
            bar.advance()
    return occ.reshape(-1)


def _refine(shape: Shape, occ: np.ndarray, r: int, rng: np.random.Generator,
            winding: WindingNumber | IglWinding | None) -> np.ndarray:
    """The (2r)³ labels from the r³ ones: only cells near the surface or a label change are evaluated."""
    from scipy import ndimage

    surface = np.zeros((r, r, r), bool)
    pts = sample_surface(shape, 64 * r * r, rng)  # dense enough to touch every cell the surface crosses
    idx = np.clip(((pts + 1) / 2 * r).astype(int), 0, r - 1)
    surface[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    cross = ndimage.generate_binary_structure(3, 1)
    changes = ndimage.maximum_filter(occ, footprint=cross) != ndimage.minimum_filter(occ, footprint=cross)
    unsure = surface | changes
    occ = occ.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    unsure = unsure.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    flat = np.flatnonzero(unsure)
    occ.reshape(-1)[flat] = inside(shape, cell_centres_3d(2 * r, flat), winding)
    return occ
