"""A new signal kind and a new backbone, defined in this file alone, work through every CLI command.

This is the contract CONTRIBUTING.md promises: adding a kind is one module that registers a
`SignalKind`; adding a backbone is one module that registers a `Backbone`. Nothing else in inrkit
is edited, so if any part of inrkit still knows kinds or backbones by name, a command here fails.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from inrkit import metrics
from inrkit.cli import app
from inrkit.models import MODELS, Recipe, register_model
from inrkit.models.base import Backbone
from inrkit.signals import KINDS, Metric, Signal, SignalInfo, SignalKind, predict_grid, register_kind

# --- the toy kind: a 1-D curve stored as text, one value in [-1, 1] per line -----------------------


def load_curve(path: Path, **_: object) -> Signal:
    values = np.loadtxt(path, dtype=np.float32).reshape(-1, 1)
    return Signal("curve", torch.from_numpy(values), (-1.0, 1.0), meta={"name": Path(path).stem,
                                                                         "source": str(path)})


def evaluate_curve(predict, signal: Signal, **_: object) -> dict[str, float]:
    pred = np.clip(predict_grid(predict, signal.shape), -1, 1)
    target = signal.values.numpy()
    return {"psnr": metrics.psnr(pred, target, 2.0), "maxerr": float(np.abs(pred - target).max())}


def render_curve(predict, info: SignalInfo, scale: float | None = None, **_: object) -> np.ndarray:
    return np.clip(predict_grid(predict, (round(info.shape[0] * (scale or 1)),)), -1, 1)


def write_curve(array: np.ndarray, info: SignalInfo, path: Path) -> None:
    np.savetxt(path, array[:, 0], fmt="%.6f")


CURVE = SignalKind(name="curve", suffixes=(".curve",), load=load_curve, evaluate=evaluate_curve,
                   render=render_curve, write=write_curve, extension=".curve", coord_dims=1, channels=1,
                   data_range=(-1.0, 1.0), metrics=(Metric("psnr", True, "dB"), Metric("maxerr", False)))


# --- the toy backbone: a tanh MLP whose hooks record that fit called them --------------------------


class TanhNet(Backbone):
    """A small tanh MLP; `init_from_signal` sets the output bias to the signal's mean."""

    target_range = (-1.0, 1.0)
    calls: dict[str, int] = {"init": 0, "extra": 0}

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden_features), nn.Tanh(),
                                 nn.Linear(hidden_features, out_features))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.net(coords)

    def init_from_signal(self, signal: Signal) -> None:
        TanhNet.calls["init"] += 1
        with torch.no_grad():
            self.net[2].bias.fill_(float(signal.values.mean()))

    def extra_loss(self, coords: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        TanhNet.calls["extra"] += 1
        return 1e-6 * output.pow(2).mean()


@pytest.fixture(scope="module")
def curve_file(tmp_path_factory: pytest.TempPathFactory):
    register_kind(CURVE)
    register_model("tanhnet", summary="tanh MLP (test)", paper="none",
                   recipes={"curve": Recipe(dict(hidden_features=24), lr=1e-2)})(TanhNet)
    path = tmp_path_factory.mktemp("curve") / "wave.curve"
    np.savetxt(path, 0.8 * np.sin(np.linspace(0, 2 * math.pi, 64)), fmt="%.6f")
    yield path
    KINDS.pop("curve")
    MODELS.pop("tanhnet")


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_new_kind_and_backbone_run_through_every_command(curve_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    invoke("fit", curve_file, "--model", "tanhnet", "--steps", "150", "--out", run, "--quiet")
    record = json.loads((run / "metrics.json").read_text())
    assert record["model"] == "tanhnet" and record["kind"] == "curve"
    assert record["model_args"]["hidden_features"] == 24  # the backbone's recipe for the new kind
    assert record["psnr"] > 15 and "maxerr" in record  # the mean alone (the init) scores 11 dB
    assert TanhNet.calls["init"] >= 1 and TanhNet.calls["extra"] >= 150  # fit called both hooks
    assert (run / "reconstruction.curve").exists()

    invoke("render", run, "--scale", "2", "--out", tmp_path / "big.curve")
    assert np.loadtxt(tmp_path / "big.curve").shape == (128,)

    assert "maxerr" in invoke("eval", run, curve_file)

    invoke("export", run, "--bits", "10", "--out", tmp_path / "m.inrz")
    invoke("decode", tmp_path / "m.inrz", "--out", tmp_path / "decoded.curve")
    decoded, fitted = np.loadtxt(tmp_path / "decoded.curve"), np.loadtxt(run / "reconstruction.curve")
    assert np.abs(decoded - fitted).max() < 0.05

    bench = tmp_path / "bench"
    invoke("bench", "--signals", curve_file, "--models", "tanhnet", "--seeds", "0,1", "--steps", "20",
           "--out", bench, "--quiet")
    report = (bench / "report.md").read_text()
    assert "tanhnet" in report and "maxerr" in report


def test_the_models_table_covers_a_new_kind(curve_file: Path) -> None:
    assert "curve" in invoke("models", "tanhnet")


def test_fit_leaves_the_model_records_alone(curve_file: Path) -> None:
    from inrkit import FitConfig, create_model, fit, load_signal

    signal = load_signal(curve_file)
    model = create_model("tanhnet", 1, 1, kind="curve")
    before = model.model_info
    result = fit(model, signal, FitConfig(steps=3, progress=False, device="cpu"))
    assert model.model_info is before and model.signal_info is None  # built without a signal: fit adds none
    assert result.signal_info.kind == "curve" and result.signal_info.shape == (64,)
