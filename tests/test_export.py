"""Weights files: self-describing, round-trip exact, rendering at any resolution."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from inrkit import ExportError, FitConfig, compress, create_model, decompress, fit, load, load_signal, render, save
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


@pytest.fixture
def unpickling_forbidden(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way to unpickle raises and is recorded; torch.load stays allowed only with weights_only=True."""
    calls: list[str] = []

    def forbid(name: str):
        def refuse(*args: object, **kwargs: object) -> None:
            calls.append(name)
            raise AssertionError(f"{name} called: loading must never unpickle")
        return refuse

    class Unpickler(pickle.Unpickler):
        load = forbid("pickle.Unpickler.load")

    real_torch_load = torch.load

    def torch_load(*args: object, weights_only: bool | None = None, **kwargs: object) -> object:
        if weights_only is not True:
            forbid("torch.load without weights_only=True")()
        return real_torch_load(*args, weights_only=True, **kwargs)

    monkeypatch.setattr(pickle, "load", forbid("pickle.load"))
    monkeypatch.setattr(pickle, "loads", forbid("pickle.loads"))
    monkeypatch.setattr(pickle, "Unpickler", Unpickler)
    monkeypatch.setattr(torch, "load", torch_load)
    return calls


def test_the_unpickling_guard_is_live(unpickling_forbidden: list[str], tmp_path: Path) -> None:
    """The guard below would catch a loader that unpickles (here: plain torch.load of a pickle)."""
    torch.save({"w": torch.zeros(2)}, tmp_path / "state.pt")
    for call in (lambda: torch.load(tmp_path / "state.pt"), lambda: pickle.loads(pickle.dumps(1))):
        with pytest.raises(AssertionError, match="never unpickle"):
            call()
    assert len(unpickling_forbidden) == 2
    assert torch.equal(torch.load(tmp_path / "state.pt", weights_only=True)["w"], torch.zeros(2))


def test_loading_never_unpickles(fitted, tmp_path: Path, unpickling_forbidden: list[str]) -> None:
    sig, result, path = fitted
    run = path.parent  # a run folder holding model.safetensors
    compress(result.model, tmp_path / "m.inrz", bits=8)
    model, decoded = load(run), decompress(tmp_path / "m.inrz")
    with torch.no_grad():
        assert torch.equal(model(sig.coords()), result.model(sig.coords()))
    assert render(decoded).shape == (16, 16, 3)
    assert unpickling_forbidden == []


def test_resuming_a_fit_never_unpickles(tmp_path: Path, unpickling_forbidden: list[str]) -> None:
    sig = load_signal(np.random.default_rng(0).random((8, 8, 3)).astype(np.float32))
    cfg = FitConfig(steps=6, device="cpu", progress=False, log_every=1, checkpoint_path=str(tmp_path / "ckpt.pt"))
    steps: list[int] = []

    def stop_at_3(row: dict) -> None:
        steps.append(int(row["step"]))
        if row["step"] == 3:
            raise KeyboardInterrupt

    fit(create_model("siren", signal=sig, hidden_features=8), sig, cfg, callback=stop_at_3)
    resumed = fit(create_model("siren", signal=sig, hidden_features=8), sig, cfg, callback=stop_at_3,
                  resume=cfg.checkpoint_path)
    assert steps == [1, 2, 3, 4, 5, 6] and resumed.steps == 6  # the second fit started from the checkpoint
    assert unpickling_forbidden == []
