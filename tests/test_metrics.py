"""Metrics against their textbook definitions and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inrkit.metrics import psnr, snr, ssim


def test_psnr_known_value_and_skimage() -> None:
    a = np.full((8, 8), 0.5)
    assert psnr(a, a + 0.1, data_range=1.0) == pytest.approx(20.0)
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 32, 3)), rng.random((32, 32, 3))
    assert psnr(x, y, 1.0) == pytest.approx(peak_signal_noise_ratio(y, x, data_range=1.0))
    assert psnr(x, x, 1.0) == math.inf


def test_psnr_depends_on_data_range() -> None:
    x = np.zeros(10)
    assert psnr(x, x + 0.1, data_range=2.0) == pytest.approx(psnr(x, x + 0.1, data_range=1.0) + 20 * math.log10(2))


@pytest.mark.parametrize("shape", [(16, 16), (24, 20, 3), (9, 40, 4)])
def test_ssim_matches_skimage(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    x = rng.random(shape)
    y = np.clip(x + 0.1 * rng.standard_normal(shape), 0, 1)
    ref = structural_similarity(x, y, data_range=1.0, channel_axis=-1 if len(shape) == 3 else None)
    assert ssim(y, x, data_range=1.0) == pytest.approx(ref, abs=1e-9)


def test_ssim_on_real_crop(crop64: np.ndarray) -> None:
    x = crop64.astype(np.float64) / 255
    y = np.clip(x + 0.05 * np.random.default_rng(2).standard_normal(x.shape), 0, 1)
    assert ssim(y, x, 1.0) == pytest.approx(structural_similarity(x, y, data_range=1.0, channel_axis=-1), abs=1e-9)
    assert ssim(x, x, 1.0) == pytest.approx(1.0)


def test_ssim_rejects_tiny_images() -> None:
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(np.zeros((5, 5)), np.zeros((5, 5)), 1.0)


def test_snr() -> None:
    t = np.ones(100)
    assert snr(t * 1.1, t) == pytest.approx(20.0)
