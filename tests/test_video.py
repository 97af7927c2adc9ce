"""Video: files and frame folders into (T, H, W, C), options, bad input, rendering, bounded fits."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from inrkit import create_model, list_models
from inrkit.cli import app
from inrkit.errors import SignalError
from inrkit.fit import FitConfig, fit
from inrkit.inference import render
from inrkit.models import get_entry
from inrkit.signals import base, load_signal

runner = CliRunner()


def clip(t: int = 6, h: int = 8, w: int = 8) -> np.ndarray:
    """A moving colour gradient, (T, H, W, 3) uint8."""
    k, y, x = np.meshgrid(np.arange(t), np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    rgb = np.stack([(x + 0.1 * k) % 1, y, 0.5 + 0.4 * np.sin(3 * x + k)], axis=-1)
    return np.round(rgb * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    iio.imwrite(path, clip(), plugin="pyav", codec="libx264", fps=10)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("frames")
    for i, frame in enumerate(clip(4)):
        iio.imwrite(path / f"f{i:03d}.png", frame)
    return path


def test_frame_folder_loads_exactly(folder: Path) -> None:
    sig = load_signal(folder)
    assert sig.kind == "video" and sig.values.shape == (4, 8, 8, 3) and sig.data_range == (0.0, 1.0)
    np.testing.assert_allclose(sig.values.numpy(), clip(4) / 255, atol=1e-6)
    assert sig.meta["fps"] == 25.0 and sig.in_features == 3


def test_mp4_and_gif_with_options(mp4: Path, tmp_path: Path) -> None:
    sig = load_signal(mp4)
    assert sig.values.shape == (6, 8, 8, 3) and sig.meta["fps"] == 10
    assert float(np.abs(sig.values.numpy() - clip() / 255).mean()) < 0.12  # lossy (4:2:0 on 8x8), but the clip
    part = load_signal(mp4, frames=2, stride=2, start=1, size="4x6")
    assert part.values.shape == (2, 4, 6, 3) and part.meta["fps"] == 5 and part.meta["start"] == 1
    assert load_signal(mp4, size=(6, 4)).values.shape == (6, 6, 4, 3)
    gif = tmp_path / "clip.gif"
    iio.imwrite(gif, clip(3), duration=100, loop=0)
    assert load_signal(gif).values.shape == (3, 8, 8, 3)


@pytest.mark.parametrize("case", ["empty_folder", "mixed_sizes", "past_end", "too_many", "corrupt", "bad_size"])
def test_bad_video_is_one_line_and_exit_2(case: str, mp4: Path, tmp_path: Path) -> None:
    path, extra = mp4, []
    if case == "empty_folder":
        path = tmp_path / "empty"
        path.mkdir()
    elif case == "mixed_sizes":
        path = tmp_path / "mixed"
        path.mkdir()
        iio.imwrite(path / "a.png", clip(1)[0])
        iio.imwrite(path / "b.png", clip(1, 10, 8)[0])
    elif case == "corrupt":
        path = tmp_path / "broken.mp4"
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video stream")
    extra = {"past_end": ["--start", "10"], "too_many": ["--frames", "50"], "bad_size": ["--size", "4x"]}.get(case, [])
    options = {"past_end": {"start": 10}, "too_many": {"frames": 50}, "bad_size": {"size": "4x"}}.get(case, {})
    with pytest.raises(SignalError):
        load_signal(path, kind="video", **options)
    res = runner.invoke(app, ["fit", str(path), "--kind", "video", "--steps", "1", "--quiet",
                              "--out", str(tmp_path / "r"), *extra])
    assert res.exit_code == 2 and res.output.strip().count("\n") == 0 and "error" in res.output, res.output


def tiny_model(name: str, signal: object) -> torch.nn.Module:
    """The backbone with its video recipe, shrunk where its constructor allows."""
    accepted = inspect.signature(get_entry(name).cls).parameters
    small = {k: v for k, v in (("hidden_features", 32), ("hidden_layers", 2)) if k in accepted}
    torch.manual_seed(0)
    return create_model(name, signal=signal, **small)


@pytest.mark.parametrize("name", list_models())
def test_every_backbone_fits_a_tiny_video(folder: Path, name: str) -> None:
    """Each backbone learns a 4x8x8 clip through its video recipe; per-frame metrics are reported."""
    sig = load_signal(folder)
    result = fit(tiny_model(name, sig), sig, FitConfig(steps=20, progress=False, device="cpu", log_every=1))
    metrics = result.metrics
    assert len(metrics["psnr_frames"]) == 4 and math.isfinite(metrics["psnr"]) and "ssim" in metrics
    assert metrics["psnr"] == pytest.approx(np.mean(metrics["psnr_frames"]), abs=1e-3)
    assert result.history[-1]["loss"] < 0.99 * result.history[0]["loss"], (result.history[0], result.history[-1])


def test_cli_fit_and_render_fps_frames_size(mp4: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = runner.invoke(app, ["fit", str(mp4), "--frames", "4", "--start", "1", "--size", "8x8", "--width", "16",
                              "--steps", "10", "--device", "cpu", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    for name in ("reconstruction.mp4", "comparison.png", "model.safetensors"):
        assert (out / name).exists(), name
    assert len(json.loads((out / "metrics.json").read_text())["psnr_frames"]) == 4
    assert iio.imread(out / "reconstruction.mp4", plugin="pyav").shape == (4, 8, 8, 3)
    res = runner.invoke(app, ["render", str(out), "--fps", "20", "--out", str(tmp_path / "slow.mp4")])
    assert res.exit_code == 0, res.output
    assert iio.imread(tmp_path / "slow.mp4", plugin="pyav").shape[0] == 8  # twice the frames, same duration
    assert iio.immeta(tmp_path / "slow.mp4", plugin="pyav")["fps"] == 20
    res = runner.invoke(app, ["render", str(out), "--frames", "3", "--size", "10x12", "--out", str(tmp_path / "s.mp4")])
    assert res.exit_code == 0, res.output
    assert iio.imread(tmp_path / "s.mp4", plugin="pyav").shape == (3, 10, 12, 3)


def test_fit_never_builds_coordinates_for_the_whole_video(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches, progress checks and the final evaluation each ask for a bounded number of coordinates."""
    sig = load_signal(np.random.default_rng(0).random((20, 64, 64, 3), dtype=np.float32), kind="video")
    sizes: list[int] = []
    real = base.grid_coords

    def spy(shape: tuple[int, ...], index: torch.Tensor | None = None) -> torch.Tensor:
        sizes.append(int(np.prod(shape)) if index is None else len(index))
        return real(shape, index)

    monkeypatch.setattr(base, "grid_coords", spy)
    model = create_model("siren", signal=sig, hidden_features=8, hidden_layers=1)
    result = fit(model, sig, FitConfig(steps=3, batch_size=512, eval_every=1, progress=False, device="cpu"))
    assert sizes and max(sizes) <= 1 << 16 < sig.num_samples and result.steps == 3
    assert render(result.model, sig.info, frames=2).shape == (2, 64, 64, 3)
