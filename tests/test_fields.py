"""fit-many into a neural-field dataset: reading it back, exporting members, resuming, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import inrkit
from inrkit.cli import app
from inrkit.fields import INDEX, FieldStore, NeuralFieldDataset

runner = CliRunner()
SMALL = ["--model", "siren", "--width", "8", "--layers", "1", "--steps", "15", "--device", "cpu", "--quiet"]


@pytest.fixture
def folder(tmp_path: Path, crop64: np.ndarray) -> Path:
    """Three 16x16 crops and one file that is not an image."""
    crops = tmp_path / "crops"
    crops.mkdir()
    for i in range(3):
        iio.imwrite(crops / f"c{i}.png", crop64[16 * i:16 * i + 16, 8:24])
    (crops / "broken.png").write_bytes(b"not a png")
    return crops


def fit_many_cli(*args: str) -> object:
    return runner.invoke(app, ["fit-many", *args])


def test_a_folder_becomes_a_dataset_and_a_rerun_fits_nothing_twice(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "fields"
    res = fit_many_cli(str(folder), *SMALL, "--out", str(out), "--chunk", "2")
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and "broken.png" in res.output and "fitted 3 now" in res.output
    index = json.loads((out / INDEX).read_text())
    statuses = sorted(m["status"] for m in index["members"])
    assert statuses == ["done", "done", "done", "unreadable"]
    assert len({m["seed"] for m in index["members"] if m["status"] == "done"}) == 3  # a random init each
    res = fit_many_cli(str(folder), *SMALL, "--out", str(out))
    assert res.exit_code == 0 and "fitted 0 now; 3 already there" in res.output
    data = NeuralFieldDataset(out)
    assert len(data) == 3 and len(data.skipped) == 1
    assert data[0].shape == (sum(p.numel() for p in data.module(0).parameters()),)


def test_members_read_back_as_the_fitted_networks(folder: Path, tmp_path: Path) -> None:
    signals = [inrkit.load_signal(p) for p in sorted(folder.glob("c*.png"))]
    members = inrkit.fit_many(signals, lambda s: inrkit.create_model("wire", signal=s, hidden_features=8,
                                                                      hidden_layers=1),
                              inrkit.FitConfig(steps=10, device="cpu", progress=False))
    inrkit.save_fields(tmp_path / "ds", members, sorted(folder.glob("c*.png")))
    data = NeuralFieldDataset(tmp_path / "ds", as_module=True)
    coords = signals[1].coords()
    assert torch.equal(data[1](coords), members[1].result.model(coords))  # complex weights survive
    run = data.export(1, tmp_path / "run")
    assert torch.equal(inrkit.load(run)(coords), members[1].result.model(coords))
    stats = data.compress(1, tmp_path / "m.inrz")
    assert Path(stats.path).stat().st_size > 0 and inrkit.decompress(tmp_path / "m.inrz") is not None
    assert data.records[1]["metrics"]["psnr"] == pytest.approx(members[1].result.metrics["psnr"])


def test_rows_written_before_a_crash_are_dropped_not_duplicated(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "fields"
    assert fit_many_cli(str(folder / "c0.png"), *SMALL, "--out", str(out)).exit_code == 0
    index = (out / INDEX).read_bytes()
    assert fit_many_cli(str(folder / "c1.png"), *SMALL, "--out", str(out)).exit_code == 0
    (out / INDEX).write_bytes(index)  # as if the run died between writing the weights and the index
    res = fit_many_cli(str(folder / "c*.png"), *SMALL, "--out", str(out))
    assert res.exit_code == 0 and "fitted 2 now" in res.output and "1 already there" in res.output
    store = FieldStore(out)
    assert store.rows == 3 and next(iter(store.tensors().values())).shape[0] == 3
    assert sorted(Path(r["path"]).name for r in store.members) == ["c0.png", "c1.png", "c2.png"]


@pytest.mark.parametrize("case, message", [
    ("empty", "no files to fit"),
    ("mixed", "one kind and shape"),
    ("other-model", "holds siren fits"),
    ("bad-init", "init"),
])
def test_bad_input_is_one_line_and_exit_2(folder: Path, tmp_path: Path, case: str, message: str) -> None:
    args = [str(folder), *SMALL, "--out", str(tmp_path / "fields")]
    if case == "empty":
        (tmp_path / "empty").mkdir()
        args[0] = str(tmp_path / "empty")
    elif case == "mixed":
        iio.imwrite(folder / "big.png", np.zeros((20, 20, 3), np.uint8))
    elif case == "other-model":
        assert fit_many_cli(*args).exit_code == 0
        args += ["--width", "12"]
    else:
        other = inrkit.create_model("siren", 2, 3, hidden_features=4, hidden_layers=1)
        inrkit.save(other, tmp_path / "init.safetensors")
        args += ["--init", str(tmp_path / "init.safetensors")]
    res = fit_many_cli(*args)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert res.output.strip().splitlines()[-1].startswith("error:")


def test_meta_learn_writes_an_init_that_fit_many_starts_from(folder: Path, tmp_path: Path) -> None:
    init = tmp_path / "init.safetensors"
    res = runner.invoke(app, ["meta-learn", str(folder), "--model", "siren", "--width", "8", "--layers", "1",
                              "--outer-steps", "3", "--inner-steps", "2", "--meta-batch", "2", "--device", "cpu",
                              "--quiet", "--out", str(init)])
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and init.exists()
    learned = inrkit.load(init)
    signal = inrkit.load_signal(folder / "c0.png")
    start = inrkit.fit_many([signal], lambda s: inrkit.create_model("siren", signal=s, hidden_features=8,
                                                                     hidden_layers=1),
                            inrkit.FitConfig(steps=1, lr=1e-12, device="cpu", progress=False), init=init)[0]
    for a, b in zip(start.result.model.parameters(), learned.parameters()):
        assert torch.allclose(a, b, atol=1e-9)


def test_a_learned_init_reaches_the_target_in_far_fewer_steps_on_tiles_it_never_saw(sample_image: Path) -> None:
    from inrkit.meta import MetaConfig, meta_learn

    image = iio.imread(sample_image)[..., :3] / 255.0
    tiles = [inrkit.load_signal(image[y:y + 16, x:x + 16]) for y in range(0, 128, 16) for x in range(0, 128, 16)]
    learn, held_back = tiles[0::2], tiles[1::2][:16]  # alternate columns of 16x16 tiles: learn on the even ones

    def siren(sig: inrkit.Signal) -> inrkit.models.base.Backbone:
        return inrkit.create_model("siren", signal=sig, hidden_features=16, hidden_layers=2)

    init = meta_learn(learn, siren, MetaConfig(outer_steps=40, inner_steps=100, device="cpu", progress=False))
    config = inrkit.FitConfig(steps=1000, lr=1e-4, target_psnr=28.0, device="cpu", progress=False)
    steps = {name: np.mean([m.result.steps for m in inrkit.fit_many(held_back, siren, config, init=start)])
             for name, start in (("random", "random"), ("learned", init))}
    assert steps["learned"] < steps["random"] / 2, steps  # measured: 572 -> 156 steps


def test_fit_starts_from_an_init_file_and_refuses_one_of_another_size(folder: Path, tmp_path: Path) -> None:
    signal = inrkit.load_signal(folder / "c0.png")
    torch.manual_seed(5)
    start = inrkit.create_model("siren", signal=signal, hidden_features=8, hidden_layers=1)
    inrkit.save(start, tmp_path / "init.safetensors")
    args = ["fit", str(folder / "c0.png"), "--model", "siren", "--width", "8", "--layers", "1", "--steps", "1",
            "--lr", "1e-12", "--device", "cpu", "--quiet", "--no-plots", "--no-checkpoint"]
    res = runner.invoke(app, [*args, "--init", str(tmp_path / "init.safetensors"), "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    fitted = inrkit.load(tmp_path / "run" / "model.safetensors")
    for a, b in zip(fitted.parameters(), start.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    res = runner.invoke(app, [*args, "--width", "12", "--init", str(tmp_path / "init.safetensors"),
                              "--out", str(tmp_path / "run2")])
    assert res.exit_code == 2 and "init is for siren" in res.output and "Traceback" not in res.output


def test_a_dataset_written_before_the_targets_field_still_takes_new_members(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "fields"
    assert fit_many_cli(str(folder / "c0.png"), *SMALL, "--out", str(out)).exit_code == 0
    index = json.loads((out / INDEX).read_text())
    del index["model"]["targets"]  # as an older inrkit wrote it
    (out / INDEX).write_text(json.dumps(index))
    res = fit_many_cli(str(folder / "c1.png"), *SMALL, "--out", str(out))
    assert res.exit_code == 0, res.output
    assert len(NeuralFieldDataset(out)) == 2


def test_fit_many_takes_the_target_mapping_and_records_it(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "fields"
    res = fit_many_cli(str(folder / "c0.png"), *SMALL, "--targets", "minmax", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert json.loads((out / INDEX).read_text())["model"]["targets"] == "minmax"
    bad = fit_many_cli(str(folder / "c1.png"), *SMALL, "--targets", "percentile", "--out", str(tmp_path / "f2"))
    assert bad.exit_code == 2 and "unknown targets 'percentile'" in bad.output
