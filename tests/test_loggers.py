"""Loggers on fit's callback: a live CSV and TensorBoard scalars + reconstruction pictures."""

from __future__ import annotations

import csv
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from inrkit.cli import app


@pytest.fixture
def img(tmp_path: Path) -> Path:
    y, x = np.mgrid[0:16, 0:16] / 15.0
    path = tmp_path / "tiny.png"
    iio.imwrite(path, (np.stack([x, y, x * y], -1) * 255).astype(np.uint8))
    return path


def _fit(img: Path, out: Path, *log: str) -> object:
    args = ["fit", str(img), "--steps", "20", "--width", "8", "--device", "cpu", "--out", str(out), "--quiet",
            "--no-plots", "--no-checkpoint"]
    return CliRunner().invoke(app, args + [a for name in log for a in ("--log", name)])


def test_tensorboard_gets_every_history_row_and_a_few_pictures(img: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    res = _fit(img, tmp_path / "run", "tensorboard", "csv")
    assert res.exit_code == 0, res.output
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0}).Reload()
    with open(tmp_path / "run" / "history.csv") as f:
        history = list(csv.DictReader(f))
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses] == [int(r["step"]) for r in history]
    assert losses[-1].value == pytest.approx(float(history[-1]["loss"]), rel=1e-5)
    pictures = events.Images("reconstruction")
    assert 3 <= len(pictures) <= 6 and pictures[-1].step == 20  # a few steps and the end, not every row
    assert (pictures[0].width, pictures[0].height) == (16, 16) and len(events.Images("original")) == 1
    with open(tmp_path / "run" / "history.live.csv") as f:
        assert list(csv.DictReader(f)) == history  # the live CSV is the final history, written as it went


def test_unknown_logger_and_missing_tensorboard_are_one_line(img: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    res = _fit(img, tmp_path / "a", "wandb")
    assert res.exit_code == 2 and "unknown logger 'wandb'; choose from csv, tensorboard" in res.output
    monkeypatch.setitem(__import__("sys").modules, "tensorboard", None)
    res = _fit(img, tmp_path / "b", "tensorboard")
    assert res.exit_code == 2 and "pip install 'inrkit[tensorboard]'" in res.output
