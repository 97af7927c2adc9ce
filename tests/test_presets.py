"""`inrkit bench --preset`: published protocols resolve to the paper's settings and run end to end."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from inrkit.bench.presets import PRESETS, preset_spec
from inrkit.bench.spec import make_spec, resolve
from inrkit.cli import app
from inrkit.errors import ConfigError


@pytest.fixture
def data_dir(tmp_path):
    """A data folder laid out like the benchmark data, with tiny stand-ins for every preset's files."""
    import imageio.v3 as iio
    import soundfile as sf
    import trimesh

    rng = np.random.default_rng(0)
    div2k = tmp_path / "images" / "finer_div2k" / "train_data"
    div2k.mkdir(parents=True)
    for i in (0, 5, 10):
        iio.imwrite(div2k / f"{i:02d}.png", rng.integers(0, 255, (12, 12, 3), dtype=np.uint8))
    iio.imwrite(tmp_path / "images" / "camera_skimage_cc0.png", rng.integers(0, 255, (12, 12), dtype=np.uint8))
    (tmp_path / "kodak").mkdir()
    iio.imwrite(tmp_path / "kodak" / "kodim03.png", rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "gt_bach.wav", rng.uniform(-0.5, 0.5, 400).astype(np.float32), 8000)
    (tmp_path / "meshes").mkdir()
    trimesh.creation.icosphere(1).export(tmp_path / "meshes" / "armadillo_50k.obj")
    return tmp_path


def _all_cases(name, data, protocol):
    return resolve(make_spec(preset_spec(name, data, protocol, "cpu")))


def _cases(name, data, protocol):
    return {c.model.label: c for c in _all_cases(name, data, protocol)}


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("protocol", ["full", "reduced"])
def test_every_preset_resolves_to_cases(name, protocol, data_dir):
    cases = _cases(name, data_dir, protocol)
    assert {m.get("label", m["name"]) for m in PRESETS[name].models} == set(cases)


def test_sl2a_preset_runs_each_baseline_with_train_py_settings(data_dir):
    cases = _cases("sl2a-div2k", data_dir, "full")
    siren, gauss, wire = cases["siren"], cases["gauss"], cases["wire"]
    settings = (siren.fit["epochs"], siren.fit["lr"], siren.fit["batch_size"], siren.fit["lr_decay"])
    assert settings == (501, 1e-3, 65536, 0.1)
    assert (gauss.fit["lr"], gauss.fit["batch_size"], gauss.model.overrides["sigma"]) == (1e-4, 1024, 30.0)
    assert wire.model.overrides["first_omega_0"] == 30.0 and wire.model.overrides["hidden_layers"] == 3
    assert cases["sl2a"].fit["steps"] is None  # sl2a's own recipe: 501 epochs of 16,384 pixels


def test_reduced_protocol_shrinks_the_signal_or_the_steps_not_the_settings(data_dir):
    full, reduced = _cases("sl2a-div2k", data_dir, "full"), _cases("sl2a-div2k", data_dir, "reduced")
    signals = {p: {c.signal for c in _all_cases("sl2a-div2k", data_dir, p)} for p in ("full", "reduced")}
    assert len(signals["reduced"]) == 2 < len(signals["full"])
    assert reduced["siren"].load == {"size": 128} and reduced["siren"].fit == full["siren"].fit
    assert _cases("siren-image", data_dir, "reduced")["siren"].fit["steps"] == 1000
    assert _cases("siren-image", data_dir, "full")["siren"].fit["steps"] == 10_000


def test_missing_data_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="camera_skimage_cc0.png.*--data"):
        preset_spec("siren-image", tmp_path, "reduced")


def test_cli_runs_a_preset_and_says_which_protocol_ran(data_dir, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "--preset", "siren-image", "--data", str(data_dir), "--protocol",
                                      "reduced", "--steps", "3", "--device", "cpu", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Protocol: **reduced**" in result.output
    assert "Protocol: **reduced**" in (out / "preset.md").read_text()
    assert (out / "results.sqlite").exists()


def test_cli_refuses_a_spec_and_a_preset_together(data_dir, tmp_path):
    spec = tmp_path / "b.toml"
    spec.write_text('signals = ["x.png"]\n')
    result = CliRunner().invoke(app, ["bench", str(spec), "--preset", "siren-image", "--data", str(data_dir)])
    assert result.exit_code == 2 and "not both" in result.output
