"""Size limits: how large an input may be decoded, or an output rendered, before inrkit refuses.

A 140 KB PNG can declare 12000×12000 pixels, a weights file can declare a 16000² signal and a typo
(`--scale 1000`) can ask for a terabyte. Every such size is checked here *before* anything is
allocated, from a file header or from the requested shape, so the refusal is instant and names the
way out: users who mean it raise the limit with the environment variable `INRKIT_MAX_SAMPLES`.

A "sample" is one coordinate of the signal: a pixel, an audio sample, a voxel, a pixel of one
video frame. Channels do not count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from .errors import ConfigError, InrkitError

DEFAULT_MAX_SAMPLES = 2**26  # 67 M: an 8192² image, 25 min of 44.1 kHz audio, a 406³ volume
ENV_VAR = "INRKIT_MAX_SAMPLES"


def max_samples() -> int:
    """The largest number of samples inrkit decodes or renders (`INRKIT_MAX_SAMPLES` overrides).

    Example:
        >>> max_samples() >= 2**20
        True
    """
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return DEFAULT_MAX_SAMPLES
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_VAR} must be a whole number of samples, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{ENV_VAR} must be at least 1, got {value}")
    return value


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
        inrkit.errors.ConfigError: the image is 12000×12000 = 144,000,000 samples, over the limit of 67,108,864 (set INRKIT_MAX_SAMPLES to allow more)
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
