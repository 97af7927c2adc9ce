"""GPU behaviour users rely on: placement, dtypes, mixed precision, and no host sync between reads.

Marked `gpu` (deselected by default, skipped without CUDA); `benchmarks/gpu_check.sh` runs them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inrkit import FitConfig, create_model, fit, load_signal
from inrkit.engine import build_engine, train_step

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(scope="module")
def image():
    y, x = np.mgrid[0:64, 0:64] / 64
    return load_signal((np.stack([np.sin(6 * x), np.cos(5 * y), x * y], -1) * 0.4 + 0.5).astype(np.float32))


def test_a_fit_runs_on_the_gpu_and_reports_float_metrics(image) -> None:
    model = create_model("siren", signal=image, hidden_features=64, hidden_layers=2)
    result = fit(model, image, FitConfig(steps=50, lr=1e-3, device="cuda", progress=False))
    assert next(result.model.parameters()).device.type == "cuda"
    assert isinstance(result.metrics["psnr"], float) and result.metrics["psnr"] > 25


@pytest.mark.parametrize("precision", ["tf32", "bf16", "fp16", "bf16-fp32"])
def test_mixed_precision_keeps_float32_weights(image, precision: str) -> None:
    model = create_model("siren", signal=image, hidden_features=64, hidden_layers=2)
    result = fit(model, image, FitConfig(steps=50, lr=1e-3, device="cuda", precision=precision, progress=False))
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
    assert result.metrics["psnr"] > 22


def test_training_steps_never_wait_for_the_device() -> None:
    model = create_model("siren", 2, 3, hidden_features=64, hidden_layers=2).cuda()
    engine = build_engine(model, torch.device("cuda"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batch = (torch.rand(4096, 2, device="cuda") * 2 - 1, torch.rand(4096, 3, device="cuda"))
    train_step(engine, optimizer, batch, F.mse_loss)  # first step: allocations, lazy init
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(10):
            loss = train_step(engine, optimizer, batch, F.mse_loss)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss).item()


def test_compiled_model_saves_and_loads_like_any_other(image, tmp_path) -> None:
    from inrkit import load, save

    model = create_model("siren", signal=image, hidden_features=64, hidden_layers=2)
    result = fit(model, image, FitConfig(steps=20, lr=1e-3, device="cuda", compile=True, progress=False))
    save(result.model, tmp_path / "m.safetensors")
    again = load(tmp_path / "m.safetensors", device="cuda")
    coords = torch.rand(100, 2, device="cuda") * 2 - 1
    assert torch.allclose(again(coords), result.model(coords), atol=1e-6)
