"""Small helpers shared across inrkit: device choice, seeding, chunked prediction."""

from __future__ import annotations

import importlib
import random
from types import ModuleType

import numpy as np
import torch

from .errors import ConfigError, MissingDependency
from .limits import MAX_INT


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn "auto" into cuda > mps > cpu; reject devices that are not available.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or mps") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available; use --device cpu or auto")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' requested but MPS is not available; use --device cpu or auto")
    return dev


def check_seed(seed: object, name: str = "seed") -> int:
    """A seed as a whole number from 0 to MAX_INT, or ConfigError naming `name`.

    Example:
        >>> check_seed(7)
        7
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_INT:
        raise ConfigError(f"{name} must be a whole number from 0 to {MAX_INT}, got {seed!r}")
    return seed


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a CPU generator for samplers seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)



def count_params(module: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of real numbers in the module's parameters (a complex entry counts as two)."""
    total = 0
    for p in module.parameters():
        if trainable_only and not p.requires_grad:
            continue
        total += p.numel() * (2 if p.is_complex() else 1)
    return total


def parse_count(text: str | int | float | None) -> int | None:
    """Parse '200k', '1.5M', '5000' or a number into an int (None stays None)."""
    if text is None or isinstance(text, int):
        return text
    if isinstance(text, float):
        return int(text)
    s = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1:], 1)
    try:
        return int(float(s[:-1] if mult > 1 else s) * mult)
    except ValueError as exc:
        raise ConfigError(f"cannot read {text!r} as a count (e.g. 200k, 1.5M, 5000)") from exc


PACKAGES = {"av": "PyAV", "trimesh": "trimesh", "scipy": "SciPy", "skimage": "scikit-image", "igl": "libigl",
            "constriction": "constriction", "OpenEXR": "OpenEXR", "tensorboard": "TensorBoard"}
"""Import name -> the name people know the package by, for the one-line hint."""


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import an optional package, or raise MissingDependency with one line naming the install to run.

    Args:
        module: the import name ("av", "trimesh", "skimage.measure").
        extra: the inrkit extra that installs it ("video", "shapes", "compress", "exr", "tensorboard").
        feature: what needs it, for the message (defaults to the extra's name).

    Example:
        >>> require("numpy", extra="core").__name__
        'numpy'
        >>> require("no_such_module_xyz", extra="video")
        Traceback (most recent call last):
        inrkit.errors.MissingDependency: video needs no_such_module_xyz: pip install 'inrkit[video]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        root = module.split(".")[0]
        raise MissingDependency(f"{feature or extra} needs {PACKAGES.get(root, root)}: "
                                f"pip install 'inrkit[{extra}]'") from exc
