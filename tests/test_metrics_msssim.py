"""MS-SSIM: inrkit's own implementation against pytorch-msssim's numbers, and where it is reported."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inrkit import metrics


def _pair(h: int, w: int, c: int = 3, noise: float = 0.08, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from skimage import data
    from skimage.transform import resize

    target = resize(data.astronaut() / 255.0, (h, w), anti_aliasing=True)[..., :c]
    rng = np.random.default_rng(seed)
    return np.clip(target + rng.normal(0, noise, target.shape), 0, 1), target


def _reference(pred: np.ndarray, target: np.ndarray, **kw: object) -> float:
    pytorch_msssim = pytest.importorskip("pytorch_msssim")

    def nchw(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=torch.float64).permute(2, 0, 1)[None]

    return float(pytorch_msssim.ms_ssim(nchw(pred), nchw(target), data_range=1.0, **kw))


@pytest.mark.parametrize("shape", [(192, 192, 3), (200, 171, 1), (161, 240, 3)])
def test_five_scales_match_pytorch_msssim(shape: tuple[int, int, int]) -> None:
    pred, target = _pair(*shape)
    assert metrics.ms_ssim_scales(*shape[:2]) == 5
    assert metrics.ms_ssim(pred, target, data_range=1.0) == pytest.approx(_reference(pred, target), abs=1e-5)


def test_fewer_scales_match_pytorch_msssim_with_renormalised_weights() -> None:
    pred, target = _pair(170, 170, noise=0.15)
    w = np.array(metrics.MS_SSIM_WEIGHTS[:3])
    ref = _reference(pred, target, weights=list(w / w.sum()))
    assert metrics.ms_ssim(pred, target, 1.0, scales=3) == pytest.approx(ref, abs=1e-5)


def test_more_noise_scores_lower_and_identity_scores_one() -> None:
    target = _pair(64, 64)[1]
    scores = [metrics.ms_ssim(_pair(64, 64, noise=n)[0], target, 1.0) for n in (0.02, 0.1, 0.3)]
    assert scores[0] > scores[1] > scores[2] > 0
    assert metrics.ms_ssim(target, target, 1.0) == pytest.approx(1.0)


def test_small_images_use_fewer_scales_and_tiny_ones_raise() -> None:
    assert [metrics.ms_ssim_scales(n, n) for n in (10, 11, 21, 41, 81, 160, 161)] == [0, 1, 2, 3, 4, 4, 5]
    with pytest.raises(ValueError, match="scale"):
        metrics.ms_ssim(np.zeros((8, 8)), np.zeros((8, 8)), 1.0)
    with pytest.raises(ValueError, match="5 scale"):
        metrics.ms_ssim(np.zeros((64, 64)), np.zeros((64, 64)), 1.0, scales=5)


def test_image_and_video_report_ms_ssim(tmp_path) -> None:
    from inrkit.signals import KINDS, Signal

    for kind in ("image", "video"):
        assert KINDS[kind].metric("ms_ssim") is not None  # drives bench tables and run summaries
    pred, target = _pair(48, 48)
    img = Signal("image", torch.tensor(target, dtype=torch.float32), (0.0, 1.0))
    flat = torch.tensor(pred, dtype=torch.float32).reshape(-1, 3)

    def predict(coords: torch.Tensor) -> torch.Tensor:
        return flat[: len(coords)] if len(coords) == len(flat) else flat  # the whole grid in one chunk

    out = KINDS["image"].evaluate(predict, img)
    assert out["ms_ssim"] == pytest.approx(metrics.ms_ssim(pred, target, 1.0), abs=1e-6)
    assert out["ms_ssim_scales"] == 3
    clip = Signal("video", torch.tensor(np.stack([target, target]), dtype=torch.float32), (0.0, 1.0))
    frames = KINDS["video"].evaluate(lambda c: torch.cat([flat] * (len(c) // len(flat))), clip)
    assert frames["ms_ssim"] == pytest.approx(out["ms_ssim"], abs=1e-6)
