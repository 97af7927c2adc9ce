"""Gallery thumbnails for the non-image kinds: a waveform strip for audio, a depth render for shapes.

Images and videos use `case.generic_thumbnail` (centre crop, middle frame). Each function takes the
kind's rendered array and returns an (H, W, C) picture in [0, 1], or None.
"""

from __future__ import annotations

import numpy as np

from .case import register_thumbnail


def waveform(array: np.ndarray, height: int = 64, width: int = 256) -> np.ndarray | None:
    """(N, C) samples in [-1, 1] -> a min/max envelope strip, as audio editors draw it."""
    wave = np.asarray(array, dtype=np.float32).reshape(len(array), -1).mean(-1)
    if wave.size < 2:
        return None
    edges = np.linspace(0, wave.size, width + 1).astype(int)
    picture = np.zeros((height, width, 1), np.float32)
    for col, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        piece = wave[a:max(b, a + 1)]
        top, bottom = (np.clip(1 - (np.array([piece.max(), piece.min()]) + 1) / 2, 0, 1) * (height - 1)).astype(int)
        picture[top:bottom + 1, col] = 1.0
    return picture


def depth_render(inside: np.ndarray) -> np.ndarray | None:
    """A (D, H, W) boolean volume seen along its first axis: nearer surfaces brighter, empty rays black."""
    if inside.ndim != 3 or not inside.any():
        return None
    hit = inside.any(axis=0)
    first = inside.argmax(axis=0).astype(np.float32)
    depth = np.where(hit, 1.0 - 0.7 * first / max(inside.shape[0] - 1, 1), 0.0)
    return depth[..., None].astype(np.float32)


def _volume(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    return array[..., 0] if array.ndim == 4 else array


register_thumbnail("audio", waveform)
register_thumbnail("occupancy", lambda a: depth_render(_volume(a) > 0.5))
register_thumbnail("sdf", lambda a: depth_render(_volume(a) < 0))
