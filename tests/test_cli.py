"""The command line: a tiny fit writes a complete run; render/eval/models; every bad input is one line, exit 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from inrkit.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "pattern.png"
    y, x = np.mgrid[0:16, 0:16] / 15.0
    iio.imwrite(path, (np.stack([x, y, x * y], -1) * 255).astype(np.uint8))
    return path


@pytest.fixture(scope="module")
def run_dir(image_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    res = runner.invoke(app, ["fit", str(image_file), "--model", "siren", "--steps", "40", "--width", "32",
                              "--device", "cpu", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return out


def test_fit_writes_a_complete_run(run_dir: Path) -> None:
    for name in ("metrics.json", "reconstruction.png", "model.safetensors", "history.csv", "curve.png",
                 "comparison.png"):
        assert (run_dir / name).stat().st_size > 0, name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("psnr", "ssim", "params", "steps", "seconds", "seed", "device", "torch", "model"):
        assert key in metrics
    assert metrics["steps"] == 40 and metrics["model"] == "siren" and metrics["device"] == "cpu"
    rows = list(csv.DictReader(open(run_dir / "history.csv")))
    assert list(rows[0]) == ["step", "loss", "psnr", "seconds", "samples"] and rows[-1]["step"] == "40"
    assert int(rows[-1]["samples"]) == 40 * 16 * 16  # full batch: every step sees every pixel
    assert iio.imread(run_dir / "reconstruction.png").shape == (16, 16, 3)


def test_render_scale_and_size(run_dir: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["render", str(run_dir), "--scale", "2", "--out", str(tmp_path / "x2.png")])
    assert res.exit_code == 0, res.output
    assert iio.imread(tmp_path / "x2.png").shape == (32, 32, 3)
    res = runner.invoke(app, ["render", str(run_dir / "model.safetensors"), "--size", "8x24"])
    assert res.exit_code == 0 and iio.imread(run_dir / "render-8x24.png").shape == (8, 24, 3)


def test_render_at_scale_one_reproduces_the_reconstruction(run_dir: Path, tmp_path: Path) -> None:
    runner.invoke(app, ["render", str(run_dir), "--out", str(tmp_path / "same.png")])
    assert np.array_equal(iio.imread(tmp_path / "same.png"), iio.imread(run_dir / "reconstruction.png"))


def test_eval_and_models(run_dir: Path, image_file: Path) -> None:
    res = runner.invoke(app, ["eval", str(run_dir), str(image_file)])
    assert res.exit_code == 0 and "psnr" in res.output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"{metrics['psnr']:.4g}" in res.output
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0 and "siren" in res.output and "198,915" in res.output
    assert "ffn" not in runner.invoke(app, ["models", "si*"]).output


@pytest.mark.parametrize("args, message", [
    (["fit", "{tmp}/missing.png"], "no such file"),
    (["fit", "{tmp}/empty"], "holds no image frames"),  # a folder is read as video frames
    (["fit", "{tmp}/corrupt.png"], "cannot read as an image"),
    (["fit", "{tmp}/notes.txt"], "unsupported file type"),
    (["fit", "{img}", "--model", "sirne"], "did you mean 'siren'"),
    (["fit", "{img}", "--steps", "0"], "Invalid value for '--steps'"),
    (["fit", "{img}", "--batch-size", "-1"], "Invalid value for '--batch-size'"),
    (["fit", "{img}", "--out", "{tmp}/notes.txt/run"], "not writable"),
    (["fit", "{img}", "--params", "lots"], "cannot read 'lots'"),
    (["fit", "{img}", "--device", "cuda:7"], "cuda"),
    (["render", "{tmp}/nothing"], "no such weights file"),
    (["render", "{run}", "--size", "abc"], "cannot read --size"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path, image_file: Path,
                                          run_dir: Path) -> None:
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG garbage")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "empty").mkdir()
    argv = [a.format(tmp=tmp_path, img=image_file, run=run_dir) for a in args]
    res = runner.invoke(app, argv)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output


def test_unknown_model_lists_valid_names(image_file: Path) -> None:
    res = runner.invoke(app, ["fit", str(image_file), "--model", "nope"])
    assert res.exit_code == 2 and "valid models:" in res.output and "siren" in res.output


def test_python_dash_m_works() -> None:
    out = subprocess.run([sys.executable, "-m", "inrkit", "--help"], capture_output=True, text=True, check=True)
    assert "fit" in out.stdout and "render" in out.stdout


def test_a_fit_that_fails_validation_keeps_the_folders_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"an earlier fit's state")
    res = runner.invoke(app, ["fit", "data/camera64.png", "--model", "nosuchnet", "--out", str(run)])
    assert res.exit_code == 2 and "unknown model" in res.output
    assert (run / "checkpoint.pt").read_bytes() == b"an earlier fit's state"
