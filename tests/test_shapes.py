"""3-D shapes: loading meshes, winding numbers, sampling cache, IoU/Chamfer, marching cubes, fitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from typer.testing import CliRunner

from inrkit import FitConfig, create_model, fit, list_models, load_signal
from inrkit.cli import app
from inrkit.errors import ConfigError, SignalError
from inrkit.metrics import chamfer_fscore, iou
from inrkit.models import get_entry
from inrkit.signals.shape import evaluate_shape, render_shape, write_shape
from inrkit.signals.shape_geometry import WindingNumber, marching_cubes, solid_angles
from inrkit.signals.shape_sampling import ShapeSampling

SMALL = ShapeSampling(points=8000)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INRKIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def sphere_file(tmp_path):
    """A sphere of radius 2 centred at (5, 0, 0), in its own frame (normalisation must undo this)."""
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=2.0)
    mesh.apply_translation([5.0, 0.0, 0.0])
    path = tmp_path / "sphere.ply"
    mesh.export(path)
    return path


@pytest.fixture
def torus_file(tmp_path):
    path = tmp_path / "torus.obj"
    trimesh.creation.torus(major_radius=1.0, minor_radius=0.4, major_sections=48, minor_sections=24).export(path)
    return path


def _analytic(kind: str, name: str):
    """The exact inside test of the normalised sphere (radius 0.9) or torus (R = 0.9/1.4, r = 0.4 R)."""
    def predict(coords: torch.Tensor) -> torch.Tensor:
        if name == "sphere":
            inside = coords.norm(dim=1) < 0.9
        else:
            big = 0.9 / 1.4
            ring = (coords[:, :2].norm(dim=1) - big) ** 2 + coords[:, 2] ** 2
            inside = ring < (0.4 * big) ** 2
        return inside.float()[:, None]
    return predict


@pytest.mark.parametrize("name", ["sphere", "torus"])
def test_ground_truth_iou(name, sphere_file, torus_file):
    signal = load_signal(sphere_file if name == "sphere" else torus_file, "occupancy", eval_res=32, sampling=SMALL)
    gt = evaluate_shape(_analytic("occupancy", name), signal)
    assert gt["iou"] > 0.95  # the analytic shape vs the winding-number labels of its triangulation
    # the other shape is wrong: the torus fills about 28% of the sphere, so the IoU must say so
    wrong = evaluate_shape(_analytic("occupancy", "torus" if name == "sphere" else "sphere"), signal)
    assert 0.15 < wrong["iou"] < 0.4
    assert evaluate_shape(lambda q: torch.zeros(len(q), 1), signal)["iou"] == 0.0  # an empty field
    grid = render_shape(_analytic("occupancy", name), signal.info, res=32)[..., 0] >= 0.5
    assert iou(grid, grid) == 1.0 and iou(grid, ~grid) == 0.0


def test_winding_numbers_on_mesh_with_hole():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.8)
    keep = sphere.triangles_center[:, 2] < 0.6  # cut a cap off: a ray test flips on rays through the hole
    verts, faces = sphere.vertices, sphere.faces[keep]
    wn = WindingNumber(verts, faces, cells=4)
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1, 1, (400, 3))
    tri = torch.as_tensor(verts[faces], dtype=torch.float32)
    exact = np.array([float(solid_angles(torch.as_tensor(p, dtype=torch.float32).expand(len(tri), 3),
                                         tri[:, 0], tri[:, 1], tri[:, 2]).sum()) for p in pts]) / (4 * np.pi)
    assert np.abs(wn(pts) - exact).max() < 0.03
    radius = np.linalg.norm(pts, axis=1)
    clear = (radius < 0.6) | (radius > 0.9)
    labels = wn(pts) >= 0.5
    assert (labels[clear] == (radius[clear] < 0.6)).all()
    assert wn(np.array([[0.0, 0.0, 0.0]]))[0] > 0.8  # the centre, right under the hole


def test_inward_faces_are_flipped():
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.8)
    assert WindingNumber(sphere.vertices, sphere.faces[:, ::-1])(np.zeros((1, 3)))[0] == pytest.approx(1, abs=0.02)


def test_marching_cubes_sphere_is_closed():
    c = (2 * np.arange(32) + 1) / 32 - 1
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    sdf = np.sqrt(x**2 + y**2 + z**2) - 0.6
    verts, faces = marching_cubes(sdf, 0.0, inside_high=False)
    mesh = trimesh.Trimesh(verts, faces, process=True)
    assert mesh.is_watertight and mesh.volume == pytest.approx(4 / 3 * np.pi * 0.6**3, rel=0.03)
    # a shape cut by the cube's faces is closed too (padding)
    verts, faces = marching_cubes(np.ones((8, 8, 8)), 0.5)
    assert trimesh.Trimesh(verts, faces, process=True).is_watertight


def test_chamfer_and_fscore():
    pts = np.random.default_rng(0).random((500, 3))
    assert chamfer_fscore(pts, pts) == (0.0, 1.0)
    cd, fs = chamfer_fscore(pts + [0.1, 0, 0], pts, tau=0.01)
    assert 0.05 < cd < 0.2 and fs < 0.5


def test_sample_cache_hit(sphere_file):
    first = load_signal(sphere_file, "sdf", sampling=SMALL)
    second = load_signal(sphere_file, "sdf", sampling=SMALL)
    assert not first.meta["cache_hit"] and second.meta["cache_hit"]
    assert torch.equal(first.points, second.points)
    other = load_signal(sphere_file, "sdf", sampling=ShapeSampling(points=8000, seed=1))
    assert not other.meta["cache_hit"]


def test_sdf_targets_and_transform(sphere_file, tmp_path):
    signal = load_signal(sphere_file, "sdf", sampling=SMALL)
    radius = signal.points.norm(dim=1)
    expected = (radius - 0.9).clamp(-1, 1)
    assert (signal.values[:, 0] - expected).abs().max() < 0.02
    assert signal.meta["scale"] == pytest.approx(0.45) and signal.meta["centre"][0] == pytest.approx(5.0)
    field = render_shape(lambda c: c.norm(dim=1, keepdim=True) - 0.9, signal.info, res=32)
    write_shape(field, signal.info, tmp_path / "out.ply")
    mesh = trimesh.load(tmp_path / "out.ply")
    assert np.allclose(mesh.bounds.mean(0), [5, 0, 0], atol=0.05)
    assert np.linalg.norm(mesh.vertices - [5, 0, 0], axis=1).mean() == pytest.approx(2.0, rel=0.02)


@pytest.mark.quality
def test_fitted_sphere_reaches_floor(sphere_file):
    torch.manual_seed(0)
    signal = load_signal(sphere_file, "occupancy", eval_res=32, sampling=SMALL)
    model = create_model("siren", signal=signal, hidden_features=32, hidden_layers=1, first_omega_0=10.0)
    result = fit(model, signal, FitConfig(steps=150, lr=1e-3, batch_size=4096, progress=False, device="cpu"))
    assert result.metrics["iou"] > 0.9


def test_a_shape_fit_stops_at_its_target_iou(sphere_file):
    torch.manual_seed(0)
    signal = load_signal(sphere_file, "occupancy", eval_res=48, sampling=SMALL)
    model = create_model("siren", signal=signal, hidden_features=32, hidden_layers=1, first_omega_0=10.0)
    config = FitConfig(steps=300, lr=1e-3, batch_size=4096, eval_every=5, target_iou=0.85, progress=False, device="cpu")
    result = fit(model, signal, config)
    assert result.steps < 300 and result.time_to_target is not None
    assert result.history[-1]["iou"] >= 0.85 and all("iou" in row for row in result.history)  # a CSV's columns
    # the estimate samples the cells the final IoU grades (a 48³ grid, 32,768 of its 110,592 cells)
    assert abs(result.metrics["iou"] - result.history[-1]["iou"]) < 0.02


def test_a_target_iou_is_for_shapes_only():
    image = load_signal(np.random.default_rng(0).random((8, 8, 3)).astype(np.float32))
    model = create_model("siren", signal=image, hidden_features=8, hidden_layers=1)
    with pytest.raises(ConfigError, match="target IoU applies to occupancy and sdf fits, not image"):
        fit(model, image, FitConfig(steps=5, target_iou=0.9, progress=False, device="cpu"))


@pytest.fixture(scope="module")
def tiny_sphere_signal(tmp_path_factory):
    """One small occupancy sphere shared by the backbone checks (loaded once)."""
    folder = tmp_path_factory.mktemp("tiny")
    trimesh.creation.icosphere(subdivisions=2).export(folder / "ball.ply")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INRKIT_CACHE", str(folder / "cache"))
        return load_signal(folder / "ball.ply", "occupancy", eval_res=16, sampling=ShapeSampling(points=2000))


@pytest.mark.parametrize("name", list_models())
def test_every_backbone_learns_in_3d(name, tiny_sphere_signal):
    torch.manual_seed(0)
    signal = tiny_sphere_signal
    model = create_model(name, signal=signal, **{get_entry(name).width_arg: 16})
    assert model(torch.zeros(4, 3)).shape == (4, 1)
    lr = 5e-3 if name == "ffn" else None  # its occupancy recipe divides the features by ||a|| (16x smaller inputs)
    config = FitConfig(steps=30, lr=lr, batch_size=len(signal.points), log_every=1, progress=False, device="cpu")
    history = fit(model, signal, config).history  # full batches: the loss is comparable from step to step
    assert history[-1]["loss"] < 0.995 * history[0]["loss"], (history[0], history[-1])


def _point_cloud_ply(path):
    trimesh.PointCloud(np.random.default_rng(0).random((50, 3))).export(path)
    return path


@pytest.mark.parametrize("case", ["no_faces", "flat", "no_normals", "garbage", "xyz_occupancy"])
def test_bad_input_is_one_clear_error(case, tmp_path):
    if case == "no_faces":
        path, kind, words = _point_cloud_ply(tmp_path / "cloud.ply"), "occupancy", "no faces"
    elif case == "flat":
        path, kind, words = tmp_path / "flat.obj", "occupancy", "no volume"
        trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], [[0, 1, 2], [1, 3, 2]]).export(path)
    elif case == "no_normals":
        path, kind, words = tmp_path / "cloud.xyz", "sdf", "normals"
        np.savetxt(path, np.random.default_rng(0).random((50, 3)))
    elif case == "garbage":
        path, kind, words = tmp_path / "broken.stl", "sdf", "cannot read|no faces"
        path.write_bytes(b"\x00\x01 not a mesh")
    else:
        path, kind, words = tmp_path / "cloud.xyz", "occupancy", "--kind sdf"
        np.savetxt(path, np.random.default_rng(0).random((50, 6)))
    with pytest.raises(SignalError, match=words):
        load_signal(path, kind)
    run = CliRunner().invoke(app, ["fit", str(path), "--kind", kind, "--steps", "1", "--quiet"])
    assert run.exit_code == 2 and "Traceback" not in run.output


def test_volume_file_is_a_grid_signal(tmp_path):
    c = (2 * np.arange(16) + 1) / 16 - 1
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    np.save(tmp_path / "ball.npy", (x**2 + y**2 + z**2 < 0.5).astype(np.float32))
    signal = load_signal(tmp_path / "ball.npy", "occupancy")
    assert signal.is_grid and signal.shape == (16, 16, 16)
    assert evaluate_shape(lambda q: (q.norm(dim=1, keepdim=True) ** 2 < 0.5).float(), signal)["iou"] == 1.0


def test_a_field_with_no_surface_still_keeps_weights_and_metrics(sphere_file, tmp_path):
    from inrkit.runs import write_run

    signal = load_signal(sphere_file, "occupancy", eval_res=16, sampling=SMALL)
    model = create_model("siren", signal=signal, hidden_features=8, hidden_layers=1)
    result = fit(model, signal, FitConfig(steps=1, lr=1e-6, progress=False, device="cpu"))
    with torch.no_grad():  # an empty field: every logit very negative
        model.net[-1].weight.zero_()
        model.net[-1].bias.fill_(-20.0)
    result.metrics = {"iou": 0.0}
    with pytest.warns(UserWarning, match="no reconstruction written"):
        write_run(result, signal, tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "metrics.json").exists()
    assert "reconstruction_error" in (tmp_path / "metrics.json").read_text()


def test_eikonal_term_pushes_the_gradient_norm_towards_one(sphere_file):
    signal = load_signal(sphere_file, "sdf", eval_res=16, sampling=SMALL)
    coords = signal.points[:2000].clone().requires_grad_(True)

    def grad_error(eikonal: float) -> float:
        torch.manual_seed(0)
        model = create_model("siren", signal=signal, hidden_features=32, hidden_layers=1, first_omega_0=10.0)
        fit(model, signal, FitConfig(steps=60, lr=1e-3, batch_size=2048, loss_terms={"eikonal": eikonal},
                                     progress=False, device="cpu"))
        grad, = torch.autograd.grad(model(coords).sum(), coords)
        return float((grad.norm(dim=-1) - 1).abs().mean())

    assert grad_error(1.0) < grad_error(0.0)


def test_eikonal_is_for_sdf_only(tmp_path):
    from inrkit import ConfigError

    signal = load_signal(np.random.default_rng(0).random((8, 8, 3)).astype(np.float32))
    with pytest.raises(ConfigError, match="sdf"):
        fit(create_model("siren", signal=signal, hidden_features=8), signal,
            FitConfig(steps=1, loss_terms={"eikonal": 1.0}, progress=False, device="cpu"))


def test_rendering_a_shape_at_a_scale_or_size_is_refused_with_a_pointer_to_res(sphere_file, tmp_path):
    from typer.testing import CliRunner

    from inrkit.export import load, save

    signal = load_signal(sphere_file, "sdf", eval_res=16, sampling=SMALL)
    save(create_model("siren", signal=signal, hidden_features=8, hidden_layers=1), tmp_path / "m.safetensors")
    runner = CliRunner()
    for flags in (["--size", "32"], ["--scale", "2"]):
        result = runner.invoke(app, ["render", str(tmp_path / "m.safetensors"), *flags])
        assert result.exit_code == 2 and "cube grid of --res" in result.output, result.output
    from inrkit.inference import render

    assert render(load(tmp_path / "m.safetensors"), res=12).shape == (12, 12, 12, 1)  # --res is the way
