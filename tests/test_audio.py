"""Audio: loading any sound file into [-1, 1], bad input, rendering at other rates, every backbone fits."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from inrkit import create_model, list_models
from inrkit.cli import app
from inrkit.errors import SignalError
from inrkit.fit import FitConfig, fit
from inrkit.inference import render, write_reconstruction
from inrkit.models import get_entry
from inrkit.signals import load_signal

runner = CliRunner()
RATE = 8000


def tone(n: int = 300, channels: int = 1) -> np.ndarray:
    """A two-tone chord, (n, channels), peak 0.8."""
    t = np.arange(n) / RATE
    mono = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 1250 * t)
    return np.stack([mono * (1 - 0.3 * c) for c in range(channels)], axis=-1).astype(np.float32)


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    sf.write(path, tone(), RATE, subtype="PCM_16")
    return path


def test_int16_mono_maps_full_scale_to_one(tmp_path: Path) -> None:
    path = tmp_path / "full.wav"
    sf.write(path, np.array([0, 32767, -32768, 16384], np.int16), 16000)
    sig = load_signal(path)
    assert sig.kind == "audio" and sig.values.shape == (4, 1) and sig.data_range == (-1.0, 1.0)
    assert sig.meta["sample_rate"] == 16000 and sig.meta["subtype"] == "PCM_16"
    assert float(sig.values.min()) == -1.0 and abs(float(sig.values.max()) - 1.0) < 1e-4
    assert abs(float(sig.values[3, 0]) - 0.5) < 1e-6 and "2^(bits-1)" in sig.meta["scaling"]


def test_float_stereo_flac_ogg_keep_rate_and_channels(tmp_path: Path) -> None:
    data = tone(400, channels=2)
    for name, subtype in (("s.wav", "FLOAT"), ("s.flac", "PCM_24"), ("s.ogg", "VORBIS")):
        sf.write(tmp_path / name, data, 22050, subtype=subtype)
        sig = load_signal(tmp_path / name)
        assert sig.values.shape == (400, 2) and sig.meta["sample_rate"] == 22050, name
        assert float(sig.values.abs().max()) <= 1.0
    exact = load_signal(tmp_path / "s.wav").values.numpy()
    np.testing.assert_allclose(exact, data, atol=1e-7)  # float in range: stored as is


def test_float_beyond_one_is_divided_by_peak_and_normalize_option(tmp_path: Path) -> None:
    path = tmp_path / "loud.wav"
    sf.write(path, np.array([0.0, 4.0, -2.0], np.float32), RATE, subtype="FLOAT")
    sig = load_signal(path)
    np.testing.assert_allclose(sig.values[:, 0].numpy(), [0, 1, -0.5])
    assert sig.meta["value_scale"] == 4.0 and "peak" in sig.meta["scaling"]
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.array([0.0, 0.25, -0.1], np.float32), RATE, subtype="FLOAT")
    assert float(load_signal(quiet).values.max()) == pytest.approx(0.25)
    assert float(load_signal(quiet, normalize=True).values.max()) == pytest.approx(1.0)


@pytest.mark.parametrize("content", ["empty", "one", "garbage"])
def test_bad_audio_is_one_line_and_exit_2(tmp_path: Path, content: str) -> None:
    path = tmp_path / f"{content}.wav"
    if content == "garbage":
        path.write_bytes(b"RIFF not really a wave file")
    else:
        sf.write(path, np.zeros(0 if content == "empty" else 1, np.float32), RATE)
    with pytest.raises(SignalError):
        load_signal(path)
    res = runner.invoke(app, ["fit", str(path), "--steps", "2", "--quiet", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and res.output.strip().count("\n") == 0 and "error" in res.output


def test_metrics_psnr_uses_peak_to_peak_two(wav: Path) -> None:
    sig = load_signal(wav)
    model = create_model("siren", signal=sig, hidden_features=8, hidden_layers=1)
    result = fit(model, sig, FitConfig(steps=1, progress=False, device="cpu"))
    pred = render(result.model, sig.info)
    mse = float(((np.clip(pred, -1, 1) - sig.values.numpy()) ** 2).mean())
    assert result.metrics["psnr"] == pytest.approx(10 * math.log10(4 / mse), rel=1e-4)
    snr = 10 * math.log10(float((sig.values.double() ** 2).sum()) / (mse * sig.num_samples))
    assert result.metrics["snr"] == pytest.approx(snr, rel=1e-3)


def tiny_model(name: str, signal: object) -> torch.nn.Module:
    """The backbone with its recipe for the signal's kind, shrunk where its constructor allows."""
    accepted = inspect.signature(get_entry(name).cls).parameters
    small = {k: v for k, v in (("hidden_features", 32), ("hidden_layers", 2)) if k in accepted}
    torch.manual_seed(0)
    return create_model(name, signal=signal, **small)


@pytest.mark.parametrize("name", list_models())
def test_every_backbone_fits_a_tiny_clip(wav: Path, name: str) -> None:
    """Each backbone, through its audio recipe (only the size shrunk), learns a 300-sample chord.

    The floor is progress (the training loss falls), not quality: audio recipes are tuned for
    44.1 kHz clips of 10^5 samples and for full-size networks; quality floors live with the models.
    """
    sig = load_signal(wav)
    result = fit(tiny_model(name, sig), sig, FitConfig(steps=30, progress=False, device="cpu", log_every=1))
    assert math.isfinite(result.metrics["psnr"]) and math.isfinite(result.metrics["snr"])
    assert result.history[-1]["loss"] < 0.99 * result.history[0]["loss"], (result.history[0], result.history[-1])
    assert render(result.model, sig.info, rate=RATE * 2).shape == (600, 1)


def test_render_rate_round_trip_through_the_cli(wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = runner.invoke(app, ["fit", str(wav), "--steps", "20", "--width", "16", "--device", "cpu",
                              "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    for name in ("reconstruction.wav", "comparison.png", "metrics.json", "model.safetensors"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"psnr", "snr"} <= metrics.keys()
    data, rate = sf.read(out / "reconstruction.wav")
    assert rate == RATE and len(data) == 300
    res = runner.invoke(app, ["render", str(out), "--rate", "22050", "--out", str(tmp_path / "up.wav")])
    assert res.exit_code == 0, res.output
    data, rate = sf.read(tmp_path / "up.wav")
    assert rate == 22050 and len(data) == round(300 * 22050 / RATE)


def test_write_keeps_the_source_sample_format(wav: Path, tmp_path: Path) -> None:
    sig = load_signal(wav)
    write_reconstruction(sig.values.numpy(), sig.info, tmp_path / "copy.wav")
    assert sf.info(str(tmp_path / "copy.wav")).subtype == "PCM_16"
    np.testing.assert_allclose(load_signal(tmp_path / "copy.wav").values, sig.values, atol=1 / 32768)


@pytest.mark.data
def test_siren_bach_loads_at_full_length(shared_data: Path) -> None:
    sig = load_signal(shared_data / "audio" / "gt_bach.wav")
    assert sig.shape == (308207,) and sig.meta["sample_rate"] == 44100
