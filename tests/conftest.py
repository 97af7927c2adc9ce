"""Shared fixtures: tiny synthetic signals, the shared benchmark data, a fast CPU default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

torch.set_num_threads(2)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    skip_data = pytest.mark.skip(reason=f"needs {SHARED_DATA}")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "data" in item.keywords and not SHARED_DATA.exists():
            item.add_marker(skip_data)


@pytest.fixture
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture
def sample_image() -> Path:
    """The project's own sample: a 128x128 RGB crop of scikit-image's astronaut photograph."""
    return ROOT / "data" / "astronaut.png"


@pytest.fixture
def tiny_rgb() -> np.ndarray:
    """A smooth 16x16 RGB test pattern in [0, 1]."""
    y, x = np.mgrid[0:16, 0:16] / 15.0
    return np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x * y)], axis=-1).astype(np.float32)


@pytest.fixture
def crop64(sample_image: Path) -> np.ndarray:
    """A 64x64 RGB crop of a real photograph (from the shipped sample)."""
    import imageio.v3 as iio

    return iio.imread(sample_image)[32:96, 32:96]
