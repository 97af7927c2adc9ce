"""Machine-readable output (--json), lean run folders, image --crop/--size, one progress style, clean warnings."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from inrkit import progress
from inrkit.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def img(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "tiny.png"
    y, x = np.mgrid[0:24, 0:20] / 23.0
    iio.imwrite(path, (np.stack([x[:, :20], y, x * y], -1) * 255).astype(np.uint8))
    return path


@pytest.fixture(scope="module")
def fitted(img: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A lean fit with --json and progress on (stderr is not a terminal here: plain lines)."""
    out = tmp_path_factory.mktemp("run") / "r"
    res = runner.invoke(app, ["fit", str(img), "--steps", "4", "--width", "8", "--device", "cpu", "--out", str(out),
                              "--crop", "20x16", "--size", "10", "--no-checkpoint", "--no-plots", "--json"])
    assert res.exit_code == 0, res.output
    return out, res


def _one_json(stdout: str) -> dict:
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    return json.loads(lines[0])


def test_fit_json_is_one_object_and_progress_goes_to_stderr(fitted: tuple[Path, object]) -> None:
    out, res = fitted
    data = _one_json(res.stdout)
    assert data["run"] == str(out) and data["steps"] == 4 and data["model"] == "siren" and "psnr" in data
    assert "siren tiny: 4/4 (100%)" in res.stderr  # plain progress lines, not a live bar


def test_lean_run_folder_and_image_crop_then_size(fitted: tuple[Path, object]) -> None:
    out, _ = fitted
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "metrics.json", "history.csv", "reconstruction.png"} <= names
    assert not names & {"checkpoint.pt", "curve.png", "comparison.png"}
    assert iio.imread(out / "reconstruction.png").shape == (10, 10, 3)
    assert json.loads((out / "metrics.json").read_text())["shape"] == [10, 10]


def test_eval_models_export_decode_json(fitted: tuple[Path, object], img: Path, tmp_path: Path) -> None:
    out, _ = fitted
    res = runner.invoke(app, ["eval", str(out), str(img), "--json"])
    assert res.exit_code == 0 and set(_one_json(res.stdout)["metrics"]) >= {"psnr", "mse"}
    res = runner.invoke(app, ["models", "si*", "--json"])
    names = [m["name"] for m in _one_json(res.stdout)["models"]]
    assert res.exit_code == 0 and "siren" in names and "ffn" not in names
    res = runner.invoke(app, ["export", str(out), "--bits", "6", "--out", str(tmp_path / "m.inrz"), "--json",
                              "--qat-steps", "2", "--device", "cpu"])
    stats = _one_json(res.stdout)
    assert res.exit_code == 0 and stats["bytes"] == (tmp_path / "m.inrz").stat().st_size
    assert "QAT" in res.stderr  # QAT progress in the shared style, on stderr
    res = runner.invoke(app, ["decode", str(tmp_path / "m.inrz"), "--out", str(tmp_path / "d.png"), "--json",
                              "--device", "cpu"])
    assert res.exit_code == 0 and _one_json(res.stdout)["shape"] == [10, 10, 3]


def test_models_no_match_names_the_nearest() -> None:
    res = runner.invoke(app, ["models", "sirn"])
    assert res.exit_code == 2 and "nearest: siren" in res.stderr


def test_plain_progress_is_bounded_and_quiet_silences(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PLAIN_MIN_SECONDS", 0.0)
    with progress.task("work", total=1000) as t:
        for _ in range(1000):
            t.advance(loss=0.5)
    lines = capsys.readouterr().err.strip().splitlines()
    assert 9 <= len(lines) <= 11 and lines[-1].startswith("work: 1000/1000 (100%)") and "loss=0.5" in lines[-1]
    with progress.quiet():
        assert list(progress.track(range(5), "silent")) == list(range(5))
        with progress.task("also silent", total=3) as t:
            t.advance(3)
    assert capsys.readouterr().err == ""


def test_warnings_print_as_one_clean_line(capsys: pytest.CaptureFixture[str]) -> None:
    with progress.clean_warnings():
        warnings.warn("no reconstruction written: no surface yet\nsecond line", stacklevel=1)
    err = capsys.readouterr().err
    assert err == "warning: no reconstruction written: no surface yet\n", err


def test_pytorch_notes_on_its_own_deprecations_stay_silent(capsys: pytest.CaptureFixture[str]) -> None:
    with progress.clean_warnings():
        warnings.warn_explicit("`torch.jit.script_method` is deprecated", DeprecationWarning, "_script.py", 365,
                               module="torch.jit._script")
        warnings.warn_explicit("old option", DeprecationWarning, "cli.py", 1, module="inrkit.cli")
    assert capsys.readouterr().err == "warning: old option\n"
