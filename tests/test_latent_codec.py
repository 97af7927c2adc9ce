"""The latent-grid image codec: exact bitstreams, rate control, damaged files, resumable rd sweeps."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from inrkit.bench.rd_latent import CASES, run_rd_latent
from inrkit.cli import app
from inrkit.errors import ExportError
from inrkit.export.latent import LatentRecipe, code_latents, decode, decode_latents, encode, train
from inrkit.models import latent_grid
from inrkit.models.latent_grid import LatentGrid

FEW = LatentRecipe(steps=150, bf16=False)


def _image(path, height: int, width: int) -> None:
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    pixels = np.stack([x, y, 0.5 + 0.5 * np.sin(9 * x * y)], -1)
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(path)


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "img.png"
    _image(path, 40, 56)
    return path


def test_latents_decode_to_exactly_what_was_coded_on_an_odd_sized_pyramid() -> None:
    torch.manual_seed(0)
    net = LatentGrid(37, 21, levels=5)
    for layer in net.context.net:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=0.5)  # a context model that really varies per latent
    latents = [torch.round(torch.randn_like(z) * 3) for z in net.latents]
    low, high, words = code_latents(net, latents)
    back = decode_latents(net, low, high, words)
    assert all(torch.equal(a, b) for a, b in zip(latents, back))


def test_the_blockwise_pixel_network_computes_what_the_module_does_values_and_gradients() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
                              torch.nn.Linear(16, 2)).double()
    x = torch.randn(6, 2 * latent_grid.CHUNK + 37, dtype=torch.float64, requires_grad=True)  # a ragged last block
    grad = torch.randn(2, x.shape[1], dtype=torch.float64)
    fast = latent_grid.pixel_mlp(net, x)
    fast_grads = torch.autograd.grad((fast * grad).sum(), [x, *net.parameters()])
    plain = net(x.T).T
    plain_grads = torch.autograd.grad((plain * grad).sum(), [x, *net.parameters()])
    torch.testing.assert_close(fast, plain)
    for a, b in zip(fast_grads, plain_grads):
        torch.testing.assert_close(a, b)


def test_upsampling_by_matrices_is_pytorchs_bicubic_interpolation_at_odd_sizes() -> None:
    torch.manual_seed(0)
    for h, w, height, width in [(5, 7, 37, 53), (1, 3, 4, 21), (10, 12, 37, 48)]:
        z = torch.randn(1, 1, h, w)
        expected = torch.nn.functional.interpolate(z, size=(height, width), mode="bicubic", align_corners=False)
        torch.testing.assert_close(latent_grid.upsample(z, height, width), expected, atol=1e-5, rtol=1e-5)


def test_the_compiled_rate_equals_the_eager_one_and_falls_back_to_it_with_one_warning(monkeypatch) -> None:
    torch.manual_seed(0)
    values = torch.round(torch.randn(4000) * 3)
    mean, log_scale = torch.randn(4000, requires_grad=True), torch.randn(4000, requires_grad=True)
    eager = latent_grid.laplace_bits(values, mean, log_scale)
    fast = latent_grid.fast_laplace_bits(values, mean, log_scale)
    close = {"rtol": 1e-2, "atol": 1e-4}  # a fused loop rounds differently where the tails cancel
    torch.testing.assert_close(fast, eager, **close)
    for a, b in zip(torch.autograd.grad(fast.sum(), [mean, log_scale]),
                    torch.autograd.grad(eager.sum(), [mean, log_scale])):
        torch.testing.assert_close(a, b, **close)

    def no_compiler():
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(latent_grid, "_compile_failed", False)
    monkeypatch.setattr(latent_grid, "_compiled_laplace_bits", no_compiler)
    with pytest.warns(UserWarning, match="uncompiled"):
        torch.testing.assert_close(latent_grid.fast_laplace_bits(values, mean, log_scale), eager)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call neither warns again nor retries the compile
        torch.testing.assert_close(latent_grid.fast_laplace_bits(values, mean, log_scale), eager)


@pytest.mark.parametrize("scale", [0.0, 1.0])
def test_the_latents_learning_rate_is_scaled_once_rounding_is_true(scale: float) -> None:
    torch.manual_seed(0)
    net, target = LatentGrid(16, 24, levels=3), torch.rand(1, 3, 16, 24)
    seen = {}

    def record(step: int, mse: float, rate: float) -> None:
        seen[step] = [z.detach().clone() for z in net.latents]

    recipe = LatentRecipe(steps=16, ste_from=0.5, ste_latent_scale=scale, lam=0.01, bf16=False)
    train(net, target, 1.0, recipe, 0.0, on_step=record)  # rounding is true from step 8; seen at 10 and 15
    frozen = all(torch.equal(a, b) for a, b in zip(seen[10], seen[15]))
    assert frozen == (scale == 0.0)


def test_a_file_decodes_to_the_image_the_encoder_measured_and_keeps_to_its_target(image, tmp_path) -> None:
    out = tmp_path / "img.inrz"
    stats = encode(image, out, bpp=8, recipe=FEW)
    assert out.stat().st_size == stats.bytes and stats.bpp <= 8
    decoded = decode(out)
    original = np.asarray(Image.open(image)) / 255.0
    assert decoded.shape == original.shape
    db = 10 * np.log10(1 / np.mean((decoded - original) ** 2))
    assert db == pytest.approx(stats.metrics["psnr"], abs=1e-4) and db > 20


def test_rate_control_spends_a_larger_budget_on_quality(tmp_path) -> None:
    image = tmp_path / "wide.png"
    _image(image, 64, 96)
    low = encode(image, tmp_path / "low.inrz", bpp=1.2, recipe=LatentRecipe(steps=150, bf16=False))
    high = encode(image, tmp_path / "high.inrz", bpp=4, recipe=LatentRecipe(steps=150, bf16=False))
    assert low.bpp <= 1.2 and low.bpp + 0.3 < high.bpp <= 4
    assert high.metrics["psnr"] > low.metrics["psnr"] + 1


def test_an_over_budget_file_loses_the_fewest_latents_that_bring_it_within_budget() -> None:
    """The dead zone thins out the smallest latents gradually (on the unrounded latents), instead of
    zeroing every ±1 at once and handing back a fraction of the budget (as it did on rounded ones)."""
    from inrkit.export.latent import _dead_zone, _fitting, pack, quantise_weights

    torch.manual_seed(0)
    y, x = torch.meshgrid(torch.linspace(0, 1, 24), torch.linspace(0, 1, 32), indexing="ij")
    target = torch.stack([x, y, 0.5 + 0.5 * torch.sin(9 * x * y)])[None]
    net = LatentGrid(24, 32)
    side_bits = 8 * sum(p.numel() for p in net.weights().values())
    lam = train(net, target, 8.0, LatentRecipe(steps=60, bf16=False, lam=1e-4), side_bits)
    latents = [z.detach() for z in net.latents]
    rounded = [torch.round(z) for z in latents]
    weights = quantise_weights(net, target, rounded, lam)
    full, ones_gone = len(pack(net, rounded, weights)), len(pack(net, _dead_zone(rounded, 0.55), weights))
    budget = (full + ones_gone) / 2  # between the rounded file and the one without its ±1s
    data, zone = _fitting(net, latents, weights, budget, "img.png")
    assert len(data) <= budget and len(data) > budget - 0.1 * (full - ones_gone) and 0 < zone < 0.5


def test_compress_and_decompress_round_trip_through_the_cli(image, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "img.inrz"
    result = runner.invoke(app, ["compress", str(image), "--bpp", "8", "--steps", "20", "--out", str(out),
                                 "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    stored = json.loads(result.output)
    assert stored["model"] == "latent" and stored["bpp"] <= 8
    back = runner.invoke(app, ["decompress", str(out), "--out", str(tmp_path / "back.png")])
    assert back.exit_code == 0, back.output
    decoded = np.asarray(Image.open(tmp_path / "back.png")) / 255.0
    original = np.asarray(Image.open(image)) / 255.0
    assert 10 * np.log10(1 / np.mean((decoded - original) ** 2)) == pytest.approx(stored["metrics"]["psnr"], abs=1e-4)
    decode_model = runner.invoke(app, ["decode", str(out)])  # a model decoder, not an image one
    assert decode_model.exit_code == 2 and "inrkit decompress" in decode_model.output


def test_a_target_below_the_smallest_file_names_it_and_leaves_nothing(image, tmp_path) -> None:
    out = tmp_path / "x.inrz"
    result = CliRunner().invoke(app, ["compress", str(image), "--bpp", "0.05", "--out", str(out)])
    assert result.exit_code == 2 and "cannot be met" in result.output and "need about" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign"])
def test_damaged_files_are_one_line_errors(image, tmp_path, damage: str) -> None:
    good = tmp_path / "good.inrz"
    encode(image, good, bpp=8, recipe=LatentRecipe(steps=2, bf16=False))
    data = bytearray(good.read_bytes())
    if damage == "truncate":
        data = data[:-5]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x40
    else:
        data = bytearray(b"INRL" + bytes(5))
    bad = tmp_path / "bad.inrz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="truncated|corrupt|not a latent"):
        decode(bad)
    result = CliRunner().invoke(app, ["decompress", str(bad), "--out", str(tmp_path / "b.png")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "b.png").exists()


def test_an_rd_sweep_resumes_with_only_the_cases_it_lacks(tmp_path) -> None:
    images = [tmp_path / "a.png", tmp_path / "b.png"]
    for path in images:
        _image(path, 32, 32)
    out = tmp_path / "rd"
    first = run_rd_latent(images, [0.01], steps=3, out=out, progress=False)
    assert len((out / CASES).read_text().splitlines()) == 2
    again = run_rd_latent(images, [0.01, 0.001], steps=3, out=out, progress=False)
    lines = [json.loads(line) for line in (out / CASES).read_text().splitlines()]
    assert len(lines) == 4 and sorted(r["lambda"] for r in lines) == [0.001, 0.001, 0.01, 0.01]
    assert again["configs"][0]["psnr"] == first["configs"][0]["psnr"]  # the finished case was kept, not redone
    assert (out / "rd.png").exists() and "over jpeg (same images)" in again["gain_db"]
