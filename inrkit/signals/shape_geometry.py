"""Geometry for 3-D shapes: reading meshes, normalising them, inside/outside and distances.

Inside/outside uses **generalised winding numbers** (Jacobson et al., SIGGRAPH 2013): w(p) is the
sum of the signed solid angles of all triangles seen from p, divided by 4π. It is 1 inside and 0
outside a closed surface and degrades gracefully (≈0.5 across a hole) on open or self-intersecting
scans, where a ray test flips its answer whenever the ray happens to leave through a hole (Stanford
scans such as `bun_zipper.ply` have several). Thresholding w at 0.5 gives occupancy.

An exact sum costs points × faces solid angles (2·10¹¹ for a 128³ grid of the 69k-face bunny), so
faces are grouped into clusters on a regular grid and a far cluster is replaced by its dipole term
(area vector · (c − p) / |c − p|³), as in Barill et al.'s fast winding numbers (SIGGRAPH 2018); the
clusters within `beta` radii of a point are summed exactly.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import SignalError
from ..utils import require
from .shape_size import check_mesh_size
from .sniff import SHAPE_FORMATS, expect_format

MESH_SUFFIXES = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")
MARGIN = 0.9  # the shape's largest half-extent after normalisation: room for near-surface offsets


@dataclass
class Shape:
    """A surface in normalised coordinates ([-MARGIN, MARGIN]³) and the map back to its own frame.

    `faces` is None for an oriented point cloud (then `normals` is set).
    """

    vertices: np.ndarray
    faces: np.ndarray | None
    normals: np.ndarray | None
    centre: np.ndarray
    scale: float


def _fail(path: Path, why: str) -> SignalError:
    return SignalError(f"{path}: {why}")


def read_shape(path: Path) -> Shape:
    """Read a mesh (OBJ/PLY/STL/OFF/GLB) or an oriented point cloud (.xyz: x y z nx ny nz), normalised.

    Example:
        >>> import tempfile, trimesh
        >>> path = Path(tempfile.mkdtemp()) / "box.stl"
        >>> _ = trimesh.creation.box(extents=(4, 2, 2)).apply_translation((10, 0, 0)).export(path)
        >>> shape = read_shape(path)  # centred and scaled into [-0.9, 0.9]³
        >>> round(float(np.abs(shape.vertices).max()), 3), shape.centre.tolist()
        (0.9, [10.0, 0.0, 0.0])
    """
    expect_format(path, SHAPE_FORMATS, "a mesh", text_ok=True)  # OBJ, OFF, ASCII PLY/STL and .xyz are text
    check_mesh_size(path)
    if path.suffix.lower() == ".xyz":
        return _read_xyz(path)
    import trimesh

    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for corrupt files
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(path, f"cannot read as a mesh ({why})") from exc
    faces = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), dtype=np.int64)
    vertices = np.asarray(getattr(mesh, "vertices", np.zeros((0, 3))), dtype=np.float64)
    if len(faces) == 0:
        raise _fail(path, "has no faces (a point cloud? use an .xyz file with normals and --kind sdf)")
    if not np.isfinite(vertices).all():
        raise _fail(path, "has NaN or infinite vertex coordinates")
    vertices, centre, scale = _normalise(path, vertices[np.unique(faces)] if len(vertices) else vertices, vertices)
    area = np.linalg.norm(face_area_vectors(vertices, faces), axis=1)
    if area.sum() <= 0:
        raise _fail(path, "all faces are degenerate (zero area)")
    return Shape(vertices, faces, None, centre, scale)


def _read_xyz(path: Path) -> Shape:
    try:
        data = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except Exception as exc:
        raise _fail(path, f"cannot read as an x y z nx ny nz point cloud ({type(exc).__name__})") from exc
    if data.shape[1] < 6:
        raise _fail(path, f"point cloud has {data.shape[1]} columns; SDF fitting needs normals (x y z nx ny nz)")
    if not np.isfinite(data).all() or len(data) < 10:
        raise _fail(path, "point cloud is empty or holds NaN/inf values")
    normals = data[:, 3:6] / np.maximum(np.linalg.norm(data[:, 3:6], axis=1, keepdims=True), 1e-12)
    vertices, centre, scale = _normalise(path, data[:, :3], data[:, :3])
    return Shape(vertices, None, normals, centre, scale)


def _normalise(path: Path, used: np.ndarray, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre the bounding box and scale its largest half-extent to MARGIN (keeps the aspect ratio)."""
    lo, hi = used.min(0), used.max(0)
    extent = hi - lo
    if extent.max() <= 0 or extent.min() <= 1e-6 * extent.max():
        raise _fail(path, "shape is flat or a single point: it encloses no volume")
    centre = (lo + hi) / 2
    scale = 2 * MARGIN / float(extent.max())
    return (vertices - centre) * scale, centre, scale


def face_area_vectors(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Half the cross product of each triangle's edges: area times unit normal."""
    tri = vertices[faces]
    return 0.5 * np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])


def solid_angles(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Signed solid angle of triangles (a, b, c) seen from p, all (T, 3) (Van Oosterom & Strackee 1983)."""
    a, b, c = a - p, b - p, c - p
    la, lb, lc = a.norm(dim=1), b.norm(dim=1), c.norm(dim=1)
    det = (a * torch.cross(b, c, dim=1)).sum(1)
    denom = la * lb * lc + (a * b).sum(1) * lc + (b * c).sum(1) * la + (c * a).sum(1) * lb
    return 2 * torch.atan2(det, denom)


class WindingNumber:
    """Generalised winding numbers of a triangle mesh, with far clusters approximated by dipoles.

    Example:
        >>> import trimesh
        >>> ball = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
        >>> wn = WindingNumber(ball.vertices, ball.faces)
        >>> wn(np.array([[0.0, 0.0, 0.0], [0.9, 0.0, 0.0]])) >= 0.5  # about 1 inside, 0 outside
        array([ True, False])
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, cells: int = 24, beta: float = 2.0) -> None:
        tri = vertices[faces]
        if np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() < 0:
            tri = tri[:, ::-1]  # inward-facing scan: flip so that w is +1 inside (signed volume > 0)
        area_vec = 0.5 * np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        area = np.linalg.norm(area_vec, axis=1)
        centroid = tri.mean(1)
        key = np.clip(((centroid + 1) / 2 * cells).astype(np.int64), 0, cells - 1) @ np.array([cells * cells, cells, 1])
        order = np.argsort(key, kind="stable")
        key, tri, area_vec, area, centroid = key[order], tri[order], area_vec[order], area[order], centroid[order]
        _, start, count = np.unique(key, return_index=True, return_counts=True)
        cid = np.repeat(np.arange(len(start)), count)
        weight = np.maximum(np.bincount(cid, area), 1e-30)
        centre = np.stack([np.bincount(cid, area * centroid[:, i]) for i in range(3)], 1) / weight[:, None]
        radius = np.zeros(len(start))
        np.maximum.at(radius, cid, np.linalg.norm(tri - centre[cid][:, None], axis=2).max(1))
        sums = np.stack([np.bincount(cid, area_vec[:, i]) for i in range(3)], 1)
        f32 = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        self.tri, self.centre, self.area_vec, self.reach = f32(tri), f32(centre), f32(sums), f32(beta * radius)
        self.area_dot_centre = (self.area_vec * self.centre).sum(1)
        self.start, self.count = torch.as_tensor(start), torch.as_tensor(count)

    def __call__(self, points: np.ndarray, chunk: int = 2048) -> np.ndarray:
        pts = torch.as_tensor(points, dtype=torch.float32)
        return torch.cat([self._chunk(piece) for piece in pts.split(chunk)]).numpy().astype(np.float64)

    def _chunk(self, p: torch.Tensor) -> torch.Tensor:
        # dipole term A·(c − p)/|c − p|³ for every cluster, as matrix products (no (m, K, 3) temporaries)
        dist = torch.cdist(p, self.centre)
        near = dist <= self.reach[None]
        numerator = self.area_dot_centre[None] - p @ self.area_vec.T
        total = (numerator / dist.clamp_min(1e-9).pow(3)).masked_fill_(near, 0).sum(1)
        row, cluster = near.nonzero(as_tuple=True)
        if len(row):
            counts = self.count[cluster]
            pair = torch.repeat_interleave(torch.arange(len(row)), counts)
            offset = torch.arange(len(pair)) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
            face = self.start[cluster][pair] + offset
            tri = self.tri[face]
            omega = solid_angles(p[row[pair]], tri[:, 0], tri[:, 1], tri[:, 2])
            total = total.index_add(0, row[pair], omega)
        return total / (4 * math.pi)


def geometry_backend(backend: str | None = None) -> str:
    """"igl" (libigl's fast winding number and exact point-mesh distance) where installed, else "torch".

    `$INRKIT_GEOMETRY=torch` forces the hand-written fallback (to compare, or to match older caches);
    asking for "igl" without libigl is one line naming the install.

    Example:
        >>> geometry_backend("torch")
        'torch'
    """
    choice = backend or os.environ.get("INRKIT_GEOMETRY") or "auto"
    if choice not in ("auto", "igl", "torch"):
        raise SignalError(f"unknown geometry backend {choice!r}; use auto, igl or torch")
    if choice == "auto":
        return "igl" if importlib.util.find_spec("igl") is not None else "torch"
    if choice == "igl":
        require("igl", extra="shapes", feature="the igl geometry backend")
    return choice


class IglWinding:
    """libigl's fast winding number (Barnes-Hut, Barill et al. 2018), same call as `WindingNumber`.

    Example:
        >>> import trimesh
        >>> ball = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
        >>> IglWinding(ball.vertices, ball.faces)(np.array([[0.0, 0.0, 0.0], [0.9, 0.0, 0.0]])) >= 0.5
        array([ True, False])
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        tri = self.vertices[self.faces]
        if np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() < 0:
            self.faces = np.ascontiguousarray(self.faces[:, ::-1])  # inward-facing scan: +1 inside, as WindingNumber

    def __call__(self, points: np.ndarray) -> np.ndarray:
        import igl

        return igl.fast_winding_number(self.vertices, self.faces, np.ascontiguousarray(points, dtype=np.float64))


def make_winding(vertices: np.ndarray, faces: np.ndarray, backend: str | None = None) -> WindingNumber | IglWinding:
    """The winding-number function of a mesh on the chosen backend (see `geometry_backend`)."""
    if geometry_backend(backend) == "igl":
        return IglWinding(vertices, faces)
    return WindingNumber(vertices, faces)


def inside(shape: Shape, points: np.ndarray, winding: WindingNumber | IglWinding | None = None,
           backend: str | None = None) -> np.ndarray:
    """Occupancy (bool) of points: winding number ≥ 0.5 for meshes, the nearest normal's side for clouds."""
    if shape.faces is None:
        from scipy.spatial import cKDTree

        _, idx = cKDTree(shape.vertices).query(points)
        return ((points - shape.vertices[idx]) * shape.normals[idx]).sum(1) < 0
    return (winding or make_winding(shape.vertices, shape.faces, backend))(points) >= 0.5


def sample_surface(shape: Shape, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniformly on the surface (area-weighted); a point cloud's own points, drawn with replacement."""
    if shape.faces is None:
        return shape.vertices[rng.integers(len(shape.vertices), size=n)]
    return sample_mesh(shape.vertices, shape.faces, n, rng)


def unsigned_distance(shape: Shape, points: np.ndarray, candidates: int = 8, backend: str | None = None) -> np.ndarray:
    """Distance to the surface (to the nearest point for a cloud).

    Backend "igl": exact (libigl's AABB-tree point-mesh distance). Backend "torch": the exact
    point-triangle distance to the faces of the `candidates` nearest of 200k+ area-weighted surface
    samples; it can overestimate only where the true nearest face has none of those samples.
    """
    from scipy.spatial import cKDTree

    if shape.faces is None:
        return cKDTree(shape.vertices).query(points)[0]
    if geometry_backend(backend) == "igl":
        import igl

        faces = np.ascontiguousarray(shape.faces, dtype=np.int64)
        sq = igl.point_mesh_squared_distance(np.ascontiguousarray(points, dtype=np.float64),
                                             np.ascontiguousarray(shape.vertices, dtype=np.float64), faces)[0]
        return np.sqrt(np.maximum(sq, 0.0))
    import trimesh

    rng = np.random.default_rng(0)
    dense = max(200_000, 4 * len(shape.faces))
    area = np.linalg.norm(face_area_vectors(shape.vertices, shape.faces), axis=1)
    face_of = rng.choice(len(area), size=dense, p=area / area.sum())
    # Points spread over each face, not its centroid: a big face's centroid can be far from the point of it
    # nearest to a query, so centroids alone picked wrong faces (0.27 too far on a cube).
    u, v = rng.random((2, dense, 1))
    flip = (u + v) > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    tri = shape.vertices[shape.faces[face_of]]
    spread = tri[:, 0] + u * (tri[:, 1] - tri[:, 0]) + v * (tri[:, 2] - tri[:, 0])
    _, idx = cKDTree(spread).query(points, k=candidates)
    faces = face_of[idx].reshape(-1)
    tri = shape.vertices[shape.faces[faces]]
    closest = trimesh.triangles.closest_point(tri, np.repeat(points, candidates, axis=0))
    dist = np.linalg.norm(closest - np.repeat(points, candidates, axis=0), axis=1)
    return dist.reshape(len(points), candidates).min(1)


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


def sample_mesh(verts: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator | int = 0) -> np.ndarray:
    """n points uniformly (area-weighted) on a triangle mesh; the one surface sampler of inrkit."""
    rng = np.random.default_rng(rng)  # a Generator passes through unchanged
    tri = verts[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face = rng.choice(len(area), size=n, p=area / area.sum())
    u, v = rng.random((2, n))
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[face]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
