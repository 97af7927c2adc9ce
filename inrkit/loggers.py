"""Experiment loggers on `fit`'s callback: a live CSV and TensorBoard (scalars and reconstruction pictures).

`fit(..., callback=logger)` calls a logger with each history row; `close()` ends it after the fit.
`inrkit fit --log tensorboard --log csv` builds them through `make_logger`. TensorBoard is an
optional package (`pip install 'inrkit[tensorboard]'`); the CSV needs nothing.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import ConfigError
from .signals import Signal
from .utils import require

LOGGERS = ("csv", "tensorboard")
PICTURE_FRACTIONS = (0.0, 0.1, 0.25, 0.5)  # of the steps; the final picture comes at close()


class CSVLogger:
    """Appends each history row to a CSV as it arrives, so a long fit can be watched (`tail -f`).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "live.csv"
        >>> log = CSVLogger(path)
        >>> log({"step": 1, "loss": 0.5, "psnr": 12.0, "seconds": 0.1}); log.close()
        >>> path.read_text().splitlines()[1]
        '1,0.5,12.0,0.1'
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: Any = None
        self._writer: csv.DictWriter | None = None

    def __call__(self, row: dict[str, float]) -> None:
        if self._writer is None:
            self._file = open(self.path, "w", newline="")  # noqa: SIM115  closed in close()
            self._writer = csv.DictWriter(self._file, fieldnames=list(row), extrasaction="ignore")
            self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class TensorBoardLogger:
    """Scalars (loss, PSNR, seconds, ...) at every history row; reconstruction pictures at a few steps.

    Pictures are for images (the whole image) and video (the middle frame), at about 0, 10, 25 and
    50% of the steps and at the end, tagged "reconstruction", with the original once as "original".
    Other kinds log scalars only.

    Example:
        >>> import tempfile
        >>> from inrkit import create_model, load_signal
        >>> signal = load_signal("data/astronaut.png", crop=16)
        >>> log = TensorBoardLogger(tempfile.mkdtemp(), create_model("siren", signal=signal), signal, steps=10)
        >>> log({"step": 1, "loss": 0.5, "psnr": 12.0, "seconds": 0.1}); log.close()
    """

    def __init__(self, logdir: str | Path, model: nn.Module, signal: Signal, steps: int | None) -> None:
        require("tensorboard", extra="tensorboard", feature="--log tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(logdir))
        self.model, self.signal = model, signal
        self.picture_steps = sorted({max(1, round(f * (steps or 1))) for f in PICTURE_FRACTIONS})  # None: a budget
        self.step = 0
        original = self._picture(signal.values.numpy())
        if original is not None:
            self.writer.add_image("original", original, 0, dataformats="HWC")

    def __call__(self, row: dict[str, float]) -> None:
        self.step = int(row["step"])
        for name, value in row.items():
            if name != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"train/{name}", value, self.step)
        if self.picture_steps and self.step >= self.picture_steps[0]:
            self.picture_steps = [s for s in self.picture_steps if s > self.step]
            self._log_reconstruction()

    def close(self) -> None:
        self._log_reconstruction()
        self.writer.close()

    def _log_reconstruction(self) -> None:
        picture = self._picture(self._render())
        if picture is not None:
            self.writer.add_image("reconstruction", picture, self.step, dataformats="HWC")
        self.writer.flush()

    def _render(self) -> np.ndarray | None:
        from .inference import predictor
        from .signals.base import grid_coords

        shape = self.signal.shape
        if self.signal.kind not in ("image", "video") or not shape:
            return None
        index = None
        if self.signal.kind == "video":  # the middle frame only: a whole clip per picture would cost a fit step
            frame = int(np.prod(shape[1:]))
            index = torch.arange(frame) + frame * (shape[0] // 2)
        values = predictor(self.model, self.signal.info)(grid_coords(shape, index))
        return values.reshape(*shape[-2:], -1).numpy()

    def _picture(self, array: np.ndarray | None) -> np.ndarray | None:
        """(H, W, 1|3) in [0, 1] from an image or a clip (its middle frame); None for other kinds."""
        if array is None or self.signal.kind not in ("image", "video"):
            return None
        if array.ndim == 4:
            array = array[array.shape[0] // 2]
        array = np.clip(array[..., :3], 0, 1).astype(np.float32)
        return array if array.shape[-1] in (1, 3) else array[..., :1]


class Loggers:
    """Several loggers as one callback."""

    def __init__(self, loggers: Sequence[Any]) -> None:
        self.loggers = list(loggers)

    def __call__(self, row: dict[str, float]) -> None:
        for logger in self.loggers:
            logger(row)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def make_logger(names: Sequence[str], out: str | Path, model: nn.Module, signal: Signal,
                steps: int | None) -> Loggers:
    """The loggers named (any of "csv", "tensorboard") writing into the run folder `out`.

    "csv" writes `out/history.live.csv` row by row (the final `history.csv` is written either way);
    "tensorboard" writes event files under `out/tensorboard` (`tensorboard --logdir out`).

    Example:
        >>> make_logger(["nope"], "/tmp", None, None, 10)
        Traceback (most recent call last):
        inrkit.errors.ConfigError: unknown logger 'nope'; choose from csv, tensorboard
    """
    unknown = [n for n in names if n not in LOGGERS]
    if unknown:
        raise ConfigError(f"unknown logger {unknown[0]!r}; choose from {', '.join(LOGGERS)}")
    out = Path(out)
    made: list[Any] = []
    for name in dict.fromkeys(names):
        if name == "csv":
            made.append(CSVLogger(out / "history.live.csv"))
        else:
            made.append(TensorBoardLogger(out / "tensorboard", model, signal, steps))
    return Loggers(made)
