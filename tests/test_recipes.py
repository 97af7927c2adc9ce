"""Recipes carry the authors' whole protocol: steps from epochs, batch and lr rules, Adam settings, K."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inrkit import FitConfig, create_model, fit, load, load_signal, render, save
from inrkit.errors import ModelError
from inrkit.fit import resolve_config
from inrkit.inference import OutputMap, evaluate
from inrkit.models import Recipe, get_entry
from inrkit.utils import count_params

KODIM03 = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak" / "kodim03.png"


def _image(h: int, w: int) -> object:
    return load_signal(np.zeros((h, w, 3), dtype=np.float32))


def _resolved(name: str, signal: object, **config: object) -> FitConfig:
    model = create_model(name, 2, 3, kind="image", hidden_features=8)  # the size does not enter the protocol
    return resolve_config(FitConfig(**config), model, signal)


@pytest.mark.parametrize(("name", "h", "w", "steps", "batch", "lr"), [
    ("sl2a", 512, 512, 501 * 16, 16384, 1e-3),  # train.py: 501 epochs x 16 batches of 16,384
    ("finer_sl2a", 512, 512, 501 * 16, 16384, 1e-4),
    ("fkan", 512, 768, 500 * 96, 4096, 1e-4),  # the notebook on kodim03: 96 batches of 4,096 per epoch
    ("wire", 512, 768, 2000 * 6, 65536, 5e-3 / 6),  # lr x min(1, 65536 / HW), 6 batches per epoch
    ("wire", 64, 64, 2000, 65536, 5e-3),  # a small image is one batch: no lr scaling
    ("finer", 64, 64, 5000, 64 * 64, 5e-4),  # FINER's own: full batch, 5,000 steps
    ("siren", 100, 60, 10_000, 6000, 1e-4),  # train_img.py: 10,000 full-image steps
    ("spder", 32, 32, 501, 1024, 1e-4),
])
def test_fit_without_steps_follows_the_recipe_for_the_signal_size(name: str, h: int, w: int, steps: int, batch: int,
                                                                   lr: float) -> None:
    cfg = _resolved(name, _image(h, w))
    assert (cfg.steps, cfg.batch_size) == (steps, batch)
    assert cfg.lr == pytest.approx(lr)


def test_explicit_settings_replace_the_recipes() -> None:
    cfg = _resolved("sl2a", _image(512, 512), steps=10, batch_size=100, lr=0.5)
    assert (cfg.steps, cfg.batch_size, cfg.lr) == (10, 100, 0.5)


def test_a_recipe_in_epochs_needs_a_batch() -> None:
    with pytest.raises(ValueError, match="batch"):
        Recipe(epochs=10)


def test_finer_has_its_own_protocol_and_sl2a_s_baseline_by_name() -> None:
    torch.manual_seed(0)
    own, sl2a = create_model("finer", 2, 3), create_model("finer_sl2a", 2, 3)
    assert own.target_range == (-1.0, 1.0) and sl2a.target_range == (0.0, 1.0)
    own_bias, sl2a_bias = own.net[0].linear.bias.abs().max(), sl2a.net[0].linear.bias.abs().max()
    assert own_bias <= 1 / 2**0.5  # PyTorch's default: run_finer.sh passes no first-bias scale
    assert 18 < sl2a_bias <= 20
    image = _image(64, 64)
    assert (_resolved("finer", image).lr, _resolved("finer_sl2a", image).lr) == (5e-4, 1e-4)


def test_neurbf_adam_settings_reach_the_optimiser(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    adam = torch.optim.Adam

    def spy(params, **kwargs):
        seen.update(kwargs)
        return adam(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", spy)
    image = load_signal(np.random.default_rng(0).random((16, 16, 3), dtype=np.float32))
    torch.manual_seed(0)
    fit(create_model("neurbf", signal=image, num_kernels=32), image,
        FitConfig(steps=2, device="cpu", progress=False))
    assert seen["betas"] == (0.9, 0.99) and seen["eps"] == 1e-15
    fit(create_model("siren", signal=image, hidden_features=8), image, FitConfig(steps=2, device="cpu", progress=False))
    assert seen["betas"] == (0.9, 0.999) and seen["eps"] == 1e-8  # PyTorch's defaults elsewhere


def test_ffn_occupancy_divides_features_by_their_norm() -> None:
    torch.manual_seed(0)
    model = create_model("ffn", 3, 1, kind="occupancy")
    coords = torch.rand(5, 3) * 2 - 1
    features = model.encoding(coords) / 16  # ||a|| = sqrt(256)
    torch.testing.assert_close(model(coords), model.mlp(features))


def test_models_table_shows_each_recipe() -> None:
    from inrkit.cli.tables import model_rows

    protocol = model_rows(["sl2a"])[0]["kinds"]["image"]["protocol"]
    assert (protocol["steps"], protocol["batch"], protocol["schedule"]) == ("501 epochs", "16,384", "exp → ×0.1")
    wire = get_entry("wire").recipe("image").summary()
    assert wire["lr"] == "0.005 × min(1, 65,536/N)"


@pytest.mark.data
@pytest.mark.skipif(not KODIM03.exists(), reason="needs ../shared/data/kodak/kodim03.png")
def test_fkan_builds_the_notebooks_model_for_kodim03() -> None:
    signal = load_signal(KODIM03)
    model = create_model("fkan", signal=signal)
    assert signal.shape == (512, 768)
    assert model.model_info.kwargs["harmonics"] == 270
    assert count_params(model) == 436_355  # the notebook's 436,367 less its 12 unused scalars
    cfg = resolve_config(FitConfig(), model, signal)
    assert (cfg.steps, cfg.batch_size, cfg.lr, cfg.lr_decay) == (48_000, 4096, 1e-4, 0.1)


@pytest.mark.parametrize("name", ["wire", "gauss", "relu_pe", "sl2a", "finer_sl2a", "fkan"])
def test_image_scripts_that_min_max_normalise_stretch_each_image_to_the_target_range(name: str) -> None:
    ramp = np.linspace(0.25, 0.75, 8, dtype=np.float32)  # a dim image: its values span [0.25, 0.75]
    dim = load_signal(np.broadcast_to(ramp[:, None, None], (8, 8, 3)).copy())
    model = create_model(name, signal=dim, hidden_features=8)
    out_map = OutputMap.of(model, dim.info)
    assert get_entry(name).recipe("image").targets == "minmax"
    assert out_map.to_model(torch.tensor([0.25, 0.75])).tolist() == pytest.approx(list(model.target_range))
    assert OutputMap.of(create_model("siren", signal=dim, hidden_features=8), dim.info).data_range == (0.0, 1.0)


def test_a_min_max_model_reads_its_output_back_the_same_way_after_save_and_load(tmp_path: Path) -> None:
    y, x = np.mgrid[0:16, 0:16] / 15.0
    dim = load_signal(np.stack([0.3 + 0.2 * x, 0.3 + 0.2 * y, 0.4 + 0.1 * x * y], -1).astype(np.float32))
    result = fit(create_model("wire", signal=dim, hidden_features=32), dim, FitConfig(steps=150, progress=False))
    save(result.model, tmp_path / "w.safetensors")
    loaded = load(tmp_path / "w.safetensors")
    assert np.abs(render(result.model) - render(loaded)).max() < 1e-6
    # read back through the x/255 range instead, the outputs would be stretched by 1 / 0.2: far below this
    assert evaluate(loaded, dim)["psnr"] == pytest.approx(result.metrics["psnr"], abs=1e-3)
    assert result.metrics["psnr"] > 25


def test_targets_can_be_chosen_and_are_saved_with_the_model(tmp_path: Path) -> None:
    ramp = np.linspace(0.25, 0.75, 8, dtype=np.float32)
    dim = load_signal(np.broadcast_to(ramp[:, None, None], (8, 8, 3)).copy())
    siren = create_model("siren", signal=dim, hidden_features=8, targets="minmax")
    assert OutputMap.of(siren, dim.info).to_model(torch.tensor([0.25, 0.75])).tolist() == pytest.approx([-1.0, 1.0])
    save(siren, tmp_path / "s.safetensors")
    assert load(tmp_path / "s.safetensors").model_info.targets == "minmax"
    wire = create_model("wire", signal=dim, hidden_features=8, targets="range")  # the recipe's minmax, overridden
    assert OutputMap.of(wire, dim.info).data_range == (0.0, 1.0)
    with pytest.raises(ModelError, match="unknown targets"):
        create_model("siren", signal=dim, targets="percentile")


def test_sl2a_preset_fits_every_baseline_on_min_max_targets_as_train_py_does() -> None:
    from inrkit.bench.presets import get_preset

    rows = get_preset("sl2a-div2k").models
    assert all(r.get("fit", {}).get("targets") == "minmax" or get_entry(r["name"]).recipe("image").targets == "minmax"
               for r in rows)
