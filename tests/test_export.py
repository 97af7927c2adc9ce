"""Weights files: self-describing, round-trip exact, rendering at any resolution."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inrkit import ExportError, FitConfig, create_model, fit, load, load_signal, render, save
from inrkit.export import read_metadata


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    y, x = np.mgrid[0:16, 0:16] / 15.0
    sig = load_signal(np.stack([x, y, x * y], -1).astype(np.float32))
    torch.manual_seed(0)
    model = create_model("ffn", signal=sig, hidden_features=32)
    result = fit(model, sig, FitConfig(steps=20, device="cpu", progress=False))
    path = save(result.model, tmp_path_factory.mktemp("w") / "model.safetensors")
    return sig, result, path


def test_metadata_describes_model_and_signal(fitted) -> None:
    sig, result, path = fitted
    meta = read_metadata(path)
    assert meta["model"]["name"] == "ffn" and meta["model"]["kwargs"]["hidden_features"] == 32
    assert meta["signal"]["kind"] == "image" and meta["signal"]["shape"] == [16, 16]
    assert meta["signal"]["data_range"] == [0.0, 1.0] and meta["inrkit_version"]


def test_load_reproduces_outputs_and_render(fitted) -> None:
    sig, result, path = fitted
    model = load(path)
    coords = sig.coords()
    with torch.no_grad():
        assert torch.equal(model(coords), result.model(coords))
    assert np.abs(render(model) - render(result.model, sig.info)).max() <= 1e-5
    assert render(model, scale=2).shape == (32, 32, 3)
    assert render(model, size=(5, 7)).shape == (5, 7, 3)


def test_corrupt_or_foreign_weights(tmp_path: Path) -> None:
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(ExportError):
        load(tmp_path / "junk.safetensors")
    with pytest.raises(ExportError, match="no such weights file"):
        load(tmp_path / "nothing.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ExportError, match="without inrkit metadata"):
        load(tmp_path / "foreign.safetensors")


def test_loading_never_unpickles(fitted) -> None:
    _, _, path = fitted
    assert json.loads(json.dumps(read_metadata(path)))  # metadata is plain JSON
    assert path.read_bytes()[:8] != b"\x80\x02\x8a\x0al\xfc\x9cF"  # not a torch pickle
