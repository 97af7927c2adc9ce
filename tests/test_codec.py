"""`inrkit compress` / `inrkit decompress` with a backbone (`--model siren`): an image into an .inrz file
within a bpp target and back. The default latent-grid codec has its own tests (test_latent_codec.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from inrkit.cli import app
from inrkit.codec import budget_for


def _image(path, side: int) -> None:
    y, x = np.mgrid[0:side, 0:side] / (side - 1)
    pixels = np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x * y)], -1)
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(path)


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "img.png"
    _image(path, 32)
    return path


def test_compress_stays_under_the_target_and_decompress_gives_the_image_back(image, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "img.inrz"
    result = runner.invoke(app, ["compress", str(image), "--bpp", "12", "--model", "siren", "--steps", "40",
                                 "--qat-steps", "0", "--out", str(out), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size * 8 / (32 * 32) <= 12
    back = runner.invoke(app, ["decompress", str(out), "--out", str(tmp_path / "back.png")])
    assert back.exit_code == 0, back.output
    decoded = np.asarray(Image.open(tmp_path / "back.png"))
    original = np.asarray(Image.open(image))
    assert decoded.shape == original.shape
    mse = np.mean((decoded / 255.0 - original / 255.0) ** 2)
    stored = json.loads(result.output)["metrics"]["psnr"]  # what compress measured is what decompress gives
    assert 10 * np.log10(1 / mse) == pytest.approx(stored, abs=0.3) and stored > 12


@pytest.mark.parametrize("bpp", ["0", "-1"])
def test_a_bpp_of_zero_or_below_is_one_line(image, tmp_path, bpp: str) -> None:
    out = tmp_path / "x.inrz"
    result = CliRunner().invoke(app, ["compress", str(image), "--bpp", bpp, "--out", str(out)])
    assert result.exit_code == 2 and "--bpp" in result.output and "above 0" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_an_image_too_small_or_a_target_too_low_is_one_line(tmp_path) -> None:
    small = tmp_path / "small.png"
    _image(small, 4)
    out = tmp_path / "x.inrz"
    result = CliRunner().invoke(app, ["compress", str(small), "--bpp", "1", "--out", str(out)])
    assert result.exit_code == 2 and "too small" in result.output and not out.exists()
    big = tmp_path / "big.png"
    _image(big, 16)
    result = CliRunner().invoke(app, ["compress", str(big), "--bpp", "0.5", "--model", "siren", "--out", str(out)])
    assert result.exit_code == 2 and "raise --bpp" in result.output and not out.exists()
    assert len(result.output.strip().splitlines()) == 1


def test_foreign_and_truncated_files_are_one_line(image, tmp_path) -> None:
    runner = CliRunner()
    foreign = tmp_path / "foreign.inrz"
    foreign.write_bytes(image.read_bytes())
    result = runner.invoke(app, ["decompress", str(foreign), "--out", str(tmp_path / "f.png")])
    assert result.exit_code == 2 and "not an .inrz file" in result.output and not (tmp_path / "f.png").exists()
    good = tmp_path / "good.inrz"
    assert runner.invoke(app, ["compress", str(image), "--bpp", "12", "--steps", "2", "--qat-steps", "0",
                               "--out", str(good), "--quiet"]).exit_code == 0
    cut = tmp_path / "cut.inrz"
    cut.write_bytes(good.read_bytes()[:-7])
    result = runner.invoke(app, ["decompress", str(cut), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 2 and "truncated" in result.output and not (tmp_path / "c.png").exists()


def test_the_budget_follows_the_target() -> None:
    assert budget_for(0.6, 1000) == 2 * budget_for(0.3, 1000)
