"""Winding numbers and distances: libigl and the hand-written fallback agree with each other and with
exact answers on a sphere and a cube."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from inrkit.errors import SignalError
from inrkit.signals.shape_geometry import (
    IglWinding,
    Shape,
    WindingNumber,
    geometry_backend,
    inside,
    unsigned_distance,
)

BACKENDS = ["torch", pytest.param("igl", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("igl") is None, reason="libigl not installed"))]


def _shape(mesh: trimesh.Trimesh) -> Shape:
    return Shape(np.asarray(mesh.vertices, float), np.asarray(mesh.faces), None, np.zeros(3), 1.0)


def _points(n: int = 3000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.95, 0.95, (n, 3))


def _cube_distance(p: np.ndarray, h: float) -> np.ndarray:
    """Exact distance to the surface of the cube [-h, h]³, inside and out."""
    q = np.abs(p) - h
    outside = np.linalg.norm(np.maximum(q, 0), axis=1)
    return np.where((q <= 0).all(1), -q.max(1), outside)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cube_inside_and_distance_are_exact(backend: str) -> None:
    cube = _shape(trimesh.creation.box(extents=(1.2, 1.2, 1.2)))
    pts = _points()
    exact = _cube_distance(pts, 0.6)
    clear = exact > 1e-3  # points on the surface have no inside/outside to test
    truth = (np.abs(pts) < 0.6).all(1)
    assert (inside(cube, pts[clear], backend=backend) == truth[clear]).all()
    dist = unsigned_distance(cube, pts, backend=backend)
    assert np.abs(dist - exact).max() < 1e-6  # 12 big triangles: the fallback's samples cover every face


def _brute_distance(mesh: trimesh.Trimesh, pts: np.ndarray) -> np.ndarray:
    """Exact distance to a polyhedron: the closest point on every one of its triangles, the nearest kept."""
    tri = np.asarray(mesh.triangles)
    out = []
    for p in pts:
        closest = trimesh.triangles.closest_point(tri, np.repeat(p[None], len(tri), 0))
        out.append(np.linalg.norm(closest - p, axis=1).min())
    return np.array(out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sphere_inside_and_distance_match_the_polyhedron(backend: str) -> None:
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.7)  # 1,280 faces
    pts = _points(400)
    radius = np.linalg.norm(pts, axis=1)
    gap = 0.7 * (1 - np.cos(np.deg2rad(6.0)))  # how far an icosphere-3 face sags inside the true sphere
    clear = np.abs(radius - 0.7) > 2 * gap
    assert (inside(_shape(ball), pts[clear], backend=backend) == (radius < 0.7)[clear]).all()
    dist = unsigned_distance(_shape(ball), pts, backend=backend)
    assert np.abs(dist - np.abs(radius - 0.7)).max() < gap
    assert np.abs(dist - _brute_distance(ball, pts)).max() < 1e-9  # exact on this very polyhedron


@pytest.mark.skipif(__import__("importlib").util.find_spec("igl") is None, reason="libigl not installed")
def test_backends_agree_on_an_open_scan_and_on_flipped_faces() -> None:
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.6)
    keep = ball.triangles_center[:, 2] < 0.5  # a hole at the top, like a scan: winding numbers still work
    verts, faces = np.asarray(ball.vertices, float), np.asarray(ball.faces)[keep]
    pts = _points(2000, seed=1)
    hand, igl = WindingNumber(verts, faces)(pts), IglWinding(verts, faces)(pts)
    assert np.abs(hand - igl).max() < 0.05 and ((hand >= 0.5) != (igl >= 0.5)).mean() < 0.005
    flipped = IglWinding(verts, faces[:, ::-1])(pts)  # an inward-facing scan is flipped back: +1 inside
    assert np.abs(flipped - igl).max() < 1e-9


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INRKIT_GEOMETRY", "torch")
    assert geometry_backend() == "torch"
    monkeypatch.setenv("INRKIT_GEOMETRY", "fast")
    with pytest.raises(SignalError, match="unknown geometry backend 'fast'"):
        geometry_backend()
    monkeypatch.delenv("INRKIT_GEOMETRY")
    monkeypatch.setitem(__import__("sys").modules, "igl", None)
    assert geometry_backend() == "torch"  # libigl missing: the fallback, silently
