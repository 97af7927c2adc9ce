"""Size limits: how large an input may be decoded, or an output rendered, before inrkit refuses.

A 140 KB PNG can declare 12000×12000 pixels, a weights file can declare a 16000² signal and a typo
(`--scale 1000`) can ask for a terabyte. Every such size is checked here *before* anything is
allocated, from a file header or from the requested shape, so the refusal is instant and names the
way out: users who mean it raise the limit with the environment variable `INRKIT_MAX_SAMPLES`.

A "sample" is one coordinate of the signal: a pixel, an audio sample, a voxel, a pixel of one
video frame. Channels do not count.

Models are bounded the same way: `--params 1e12` or `--width 1000000` would ask for terabytes, so a
model's real-number count is checked (on torch's meta device, no memory) against `max_params()`;
`INRKIT_MAX_PARAMS` raises it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from .errors import ConfigError, InrkitError

DEFAULT_MAX_SAMPLES = 2**27  # 134 M: 512³ (the finest shape grid), an 11585² image, 50 min of 44.1 kHz audio
ENV_VAR = "INRKIT_MAX_SAMPLES"
# 67 M real numbers: 256 MB of float32 weights, about 1 GB with gradients and Adam's two moments;
# 4x the largest hash grid a recipe builds, far above any MLP an INR paper fits.
DEFAULT_MAX_PARAMS = 2**26
PARAMS_ENV_VAR = "INRKIT_MAX_PARAMS"
# The largest whole number an option, seed or count may hold: torch seeds are 64-bit and SQLite (the
# bench store) integers signed 64-bit, so a 23-digit seed or step count has no meaning anywhere.
MAX_INT = 2**63 - 1
# A depth past this is a typo: every layer is a module, so even counting a billion on the meta device hangs.
MAX_LAYERS = 1024
MIN_CODE_SIDE = 8  # image codecs: below this the header is most of the file, and MS-SSIM/SSIM windows do not fit


def _env_limit(name: str, default: int, unit: str) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of {unit}, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


def max_samples() -> int:
    """The largest number of samples inrkit decodes or renders (`INRKIT_MAX_SAMPLES` overrides).

    Example:
        >>> max_samples() >= 2**20
        True
    """
    return _env_limit(ENV_VAR, DEFAULT_MAX_SAMPLES, "samples")


def max_params() -> int:
    """The most real numbers a model may hold (`INRKIT_MAX_PARAMS` overrides).

    Example:
        >>> max_params() >= 2**20
        True
    """
    return _env_limit(PARAMS_ENV_VAR, DEFAULT_MAX_PARAMS, "parameters")


def check_params(count: int, what: str, error: type[InrkitError] = ConfigError) -> int:
    """Refuse a parameter count over `max_params()`; `what` names the model or option in the message.

    Example:
        >>> check_params(200_000, "--params")
        200000
        >>> check_params(10**12, "--params")
        Traceback (most recent call last):
        ...
        inrkit.errors.ConfigError: --params asks for 1,000,000,000,000 parameters, over the limit of 67,108,864 (...)
    """
    limit = max_params()
    if count > limit:
        raise error(f"{what} asks for {count:,} parameters, over the limit of {limit:,} "
                    f"(set {PARAMS_ENV_VAR} to allow more)")
    return count


def check_shape(shape: Sequence[int], what: str, error: type[InrkitError] = ConfigError) -> tuple[int, ...]:
    """Refuse a shape with a non-positive or non-integer side, or more samples than `max_samples()`.

    `what` names the thing in the message ("the image", "the rendered video"); `error` is the
    exception class the caller's user should see (SignalError for inputs, ExportError for files).

    Example:
        >>> check_shape((512, 768), "the image")
        (512, 768)
        >>> check_shape((12000, 12000), "the image")
        Traceback (most recent call last):
        ...
        inrkit.errors.ConfigError: the image is 12000×12000 = 144,000,000 samples, over the limit of 134,217,728 (...)
    """
    sides = tuple(shape)
    if not sides or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sides):
        raise error(f"{what} has an invalid shape {list(sides)}: every side must be a positive integer")
    total = math.prod(sides)
    limit = max_samples()
    if total > limit:
        size = "×".join(str(s) for s in sides)
        raise error(f"{what} is {size} = {total:,} samples, over the limit of {limit:,} "
                    f"(set {ENV_VAR} to allow more)")
    return sides


def check_codable(image: object, height: int, width: int) -> None:
    """Refuse an image too small for an image codec (`inrkit compress`) to code.

    Example:
        >>> check_codable("tiny.png", 4, 64)
        Traceback (most recent call last):
        ...
        inrkit.errors.ConfigError: tiny.png: 4x64 is too small to code (each side needs 8 pixels)
    """
    if min(height, width) < MIN_CODE_SIDE:
        raise ConfigError(f"{image}: {height}x{width} is too small to code (each side needs {MIN_CODE_SIDE} pixels)")
