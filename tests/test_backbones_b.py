"""Tests specific to fkan, sl2a, neurbf and ngp: the authors' formulas, counts, data init and hashing."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from inrkit import FitConfig, create_model, fit, load_signal
from inrkit.models.grids import HashGrid
from inrkit.utils import count_params


def test_fkan_fourier_layer_equals_the_naive_per_harmonic_sum() -> None:
    torch.manual_seed(0)
    model = create_model("fkan", 2, 3, hidden_features=5, harmonics=4)
    layer = model.fourier
    x = torch.rand(7, 2) * 2 - 1
    w = layer.weight.detach().reshape(2, 2, 4, 5)  # (cos|sin, axis j, harmonic k, out o)
    naive = layer.bias.detach().expand(7, 5).clone()
    for j in range(2):
        for k in range(1, 5):
            naive += torch.cos(k * x[:, j:j + 1]) * w[0, j, k - 1] + torch.sin(k * x[:, j:j + 1]) * w[1, j, k - 1]
    torch.testing.assert_close(layer(x), naive)


@torch.no_grad()
def test_fkan_defaults_are_the_notebook_model_without_unused_scalars() -> None:
    model = create_model("fkan", 2, 3)
    assert [layer.out_features for layer in model.hidden] == [256, 256, 256, 512]
    assert count_params(model) == 436_367 - 12  # the notebook's torchinfo total minus the unused a, b, c
    std = float(model.fourier.weight.std())
    assert abs(std - 1 / (2 * 270) ** 0.5) < 0.002 and float(model.fourier.bias.abs().max()) == 0
    assert float(model.last.weight.abs().max()) <= (6 / 128) ** 0.5 / 30  # authors' hard-coded fan-in
    u = torch.linspace(-1, 1, 11)
    torch.testing.assert_close(model.act(u), (u + torch.tanh(30 * u)) * torch.sigmoid(u))
    paper = create_model("fkan", 2, 3, activation="tanh")
    torch.testing.assert_close(paper.act(u), torch.tanh(30 * u))


@torch.no_grad()
def test_sl2a_count_matches_the_paper_and_basis_is_chebyshev() -> None:
    model = create_model("sl2a", 2, 3)
    assert count_params(model) == 330_243
    x = torch.linspace(-1, 1, 9)[:, None]
    t = torch.tanh(x)[:, 0].double()
    rec = [torch.ones_like(t), t]  # T_{k+1} = 2 t T_k - T_{k-1}
    for _ in range(3):
        rec.append(2 * t * rec[-1] - rec[-2])
    basis = create_model("sl2a", 1, 1, hidden_features=4, degree=4).cheby.basis(x)
    torch.testing.assert_close(basis.double(), torch.stack(rec, 1), atol=1e-5, rtol=1e-5)
    bound = (6 / (257 * (256 + 2))) ** 0.5  # xavier on the (d_in, h, K+1) tensor
    assert bound * 0.95 < float(model.cheby.coefficients.abs().max()) <= bound


def test_sl2a_fuses_the_first_layer_into_every_later_one() -> None:
    torch.manual_seed(0)
    model = create_model("sl2a", 2, 2, hidden_features=8, hidden_layers=2, degree=6)
    x = torch.rand(5, 2)
    z = model.norm(model.cheby(x))
    h = torch.relu((z * z) @ (model.fused[0].P @ model.fused[0].Q) + model.fused[0].bias)
    h = torch.relu((z * h) @ (model.fused[1].P @ model.fused[1].Q) + model.fused[1].bias)
    torch.testing.assert_close(model(x), model.last(z * h))


def _edge_image() -> object:
    img = np.zeros((32, 32, 1), np.float32)
    img[:, 20:] = 1.0  # one vertical edge between columns 19 and 20
    return load_signal(img)


def test_neurbf_init_from_signal_puts_centres_on_the_gradient() -> None:
    torch.manual_seed(0)
    model = create_model("neurbf", 2, 1, num_kernels=16)
    before = model.centres.clone()
    model.init_from_signal(_edge_image())
    edge_x = (2 * 19.5 + 1) / 32 - 1  # coordinate between the two columns
    assert float((before[:, 1] - edge_x).abs().mean()) > 0.3
    assert float((model.centres[:, 1] - edge_x).abs().max()) < 0.1
    assert not any(n in dict(model.named_parameters()) for n in ("centres", "shapes"))  # frozen
    assert {"centres", "shapes"} <= set(model.state_dict())  # but saved with the weights


def test_neurbf_kernel_values_are_normalised_and_all_finite() -> None:
    torch.manual_seed(0)
    model = create_model("neurbf", 2, 3, num_kernels=32)
    x = torch.rand(50, 2) * 2 - 1
    phi = model.rbf_values(x, model.neighbour_index(x))  # regular-grid kernels before the data init
    torch.testing.assert_close(phi.sum(1), torch.ones(50), atol=1e-5, rtol=0)
    model.init_from_signal(_edge_image())  # thin kernels along the edge: sums can fall below 1, never above
    phi = model.rbf_values(x, model.neighbour_index(x.clone()))
    assert float(phi.sum(1).max()) <= 1 + 1e-6 and float(phi.sum(1).min()) > 0.5  # and no point is left uncovered
    assert torch.isfinite(model(x)).all() and torch.isfinite(model.shapes).all()
    assert model.neighbour_index(x) is model.neighbour_index(x)  # cached for the same tensor


def test_neurbf_sdf_init_uses_the_surface() -> None:
    torch.manual_seed(0)
    surface = torch.nn.functional.normalize(torch.randn(1000, 3), dim=1) * 0.5  # sdf = 0, as the authors sample
    pts = torch.cat([surface, torch.rand(1000, 3) * 2 - 1])
    sdf = pts.norm(dim=1, keepdim=True) - 0.5
    from inrkit.signals.base import Signal

    sig = Signal("sdf", sdf, (-1.0, 1.0), points=pts)
    model = create_model("neurbf", 3, 1, kind="sdf", num_kernels=64)
    model.init_from_signal(sig)
    radius = model.centres.norm(dim=1)
    assert float((radius - 0.5).abs().median()) < 0.1


def test_ngp_hashing_is_deterministic_and_uses_tables_only_where_needed() -> None:
    torch.manual_seed(0)
    a = HashGrid(2, levels=3, features_per_level=2, hashmap_size=500, base_resolution=8, finest_resolution=64)
    torch.manual_seed(0)
    b = HashGrid(2, levels=3, features_per_level=2, hashmap_size=500, base_resolution=8, finest_resolution=64)
    assert a.dense.tolist() == [True, False, False]  # 8² fits in 500 entries, 23² and 64² do not
    assert a.embeddings.shape[0] == 64 + 500 + 500
    x = torch.rand(100, 2) * 2 - 1
    torch.testing.assert_close(a(x), b(x))
    torch.testing.assert_close(a(x), a(x.clone()))


def test_ngp_dense_level_interpolates_linear_functions_exactly() -> None:
    grid = HashGrid(2, levels=1, features_per_level=1, hashmap_size=100, base_resolution=5, finest_resolution=5)
    axis = torch.linspace(-1, 1, 5)
    with torch.no_grad():  # first coordinate varies fastest in the dense index
        grid.embeddings[:, 0] = (axis[None, :] + 10 * axis[:, None]).flatten()
    x = torch.rand(20, 2) * 2 - 1
    torch.testing.assert_close(grid(x)[:, 0], x[:, 0] + 10 * x[:, 1])


# --- quality floors (150 full-batch steps, 10k parameters, 32x32 crop; flat mean colour: 14.7 dB) ---
# Measured (seed 0/1): sl2a 25.3/25.6, neurbf 34.8, ngp 30.8/33.6, fkan at lr 1e-3 26.3/27.6.
FLOORS = {"sl2a": 22.0, "neurbf": 30.0, "ngp": 27.0, "fkan": 23.0}
# FKAN's recipe (lr 1e-4, the notebook's, for ~48k steps) barely moves in 150 steps.
OVERRIDES = {"fkan": dict(lr=1e-3)}


@pytest.mark.quality
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FLOORS))
def test_quality_floor_on_a_32px_crop(name: str) -> None:
    img = iio.imread(Path(__file__).resolve().parents[1] / "data" / "astronaut.png")[32:64, 48:80]
    sig = load_signal(img.astype(np.float32) / 255)
    torch.manual_seed(0)
    model = create_model(name, signal=sig, params=10_000)
    result = fit(model, sig, FitConfig(steps=150, seed=0, device="cpu", progress=False, **OVERRIDES.get(name, {})))
    assert result.metrics["psnr"] >= FLOORS[name]
