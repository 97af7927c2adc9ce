"""Loading images into Signals: shapes, ranges, formats, coordinates and bad input."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from inrkit import SignalError, load_signal
from inrkit.signals import grid_coords


@pytest.mark.parametrize("array, channels", [
    (np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8), 3),
    (np.random.default_rng(1).integers(0, 256, (20, 30), dtype=np.uint8), 1),
    (np.random.default_rng(2).integers(0, 256, (20, 30, 4), dtype=np.uint8), 4),
    (np.random.default_rng(3).integers(0, 65536, (20, 30), dtype=np.uint16), 1),
])
def test_png_loads_as_unit_range_hwc(tmp_path: Path, array: np.ndarray, channels: int) -> None:
    path = tmp_path / "img.png"
    iio.imwrite(path, array)
    sig = load_signal(path)
    assert sig.kind == "image" and sig.shape == (20, 30) and sig.channels == channels
    assert sig.values.dtype == torch.float32
    assert 0.0 <= float(sig.values.min()) and float(sig.values.max()) <= 1.0
    peak = 65535 if array.dtype == np.uint16 else 255
    expected = array.reshape(20, 30, -1).astype(np.float64) / peak
    np.testing.assert_allclose(sig.values.numpy(), expected, atol=1e-6)


def test_jpeg_and_float_tiff(tmp_path: Path, tiny_rgb: np.ndarray) -> None:
    iio.imwrite(tmp_path / "a.jpg", (tiny_rgb * 255).astype(np.uint8))
    iio.imwrite(tmp_path / "b.tiff", tiny_rgb * 4 - 1)  # float outside [0, 1]
    assert load_signal(tmp_path / "a.jpg").shape == (16, 16)
    tiff = load_signal(tmp_path / "b.tiff")
    assert float(tiff.values.min()) == 0.0 and float(tiff.values.max()) == 1.0
    assert tiff.meta["value_scale"] == pytest.approx(4.0, rel=1e-5)


def test_exr_round_trip(tmp_path: Path, tiny_rgb: np.ndarray) -> None:
    import OpenEXR

    with OpenEXR.File({"type": OpenEXR.scanlineimage}, {"RGB": tiny_rgb}) as f:
        f.write(str(tmp_path / "x.exr"))
    sig = load_signal(tmp_path / "x.exr")
    np.testing.assert_allclose(sig.values.numpy(), tiny_rgb, atol=1e-6)


def test_grid_coords_are_cell_centres_in_ij_order() -> None:
    c = grid_coords((2, 4))
    assert c.shape == (8, 2)
    assert torch.allclose(c[0], torch.tensor([-0.5, -0.75]))
    assert torch.allclose(c[1], torch.tensor([-0.5, -0.25]))  # x (second axis) varies fastest
    assert torch.allclose(c[-1], torch.tensor([0.5, 0.75]))
    sub = grid_coords((2, 4), torch.tensor([5]))
    assert torch.equal(sub, c[5:6])


def test_signal_coords_and_targets_line_up(tiny_rgb: np.ndarray) -> None:
    sig = load_signal(tiny_rgb)
    index = torch.tensor([0, 17, 255])
    assert torch.equal(sig.targets(index)[1], sig.values[1, 1])
    assert torch.allclose(sig.coords(index)[1], torch.tensor([-1 + 3 / 16, -1 + 3 / 16]))


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.png", "no such file"),
    (lambda d: d, "holds no image frames"),  # a folder is read as a video of frames
    (lambda d: _write(d / "bad.png", b"not a png at all"), "cannot read as an image"),
    (lambda d: _truncated_png(d), "cannot read as an image"),
    (lambda d: _write(d / "notes.txt", b"hello"), "unsupported file type"),
])
def test_bad_files_raise_one_clear_error(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(SignalError, match=message) as info:
        load_signal(make(tmp_path))
    assert "\n" not in str(info.value)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated_png(directory: Path) -> Path:
    full = directory / "full.png"
    iio.imwrite(full, np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    return _write(directory / "cut.png", full.read_bytes()[:300])
