"""One benchmark case: run its runner (by default: load, build, fit, judge, keep a thumbnail); any
failure becomes an error row.

Runs wherever the executor puts it (this process, a subprocess, a Ray worker) and returns a plain
dict, so the parent alone writes the store. What a case does is a named runner: "fit" here, "rd" in
`rd.py`, or one a script registers with `register_runner` (e.g. `benchmarks/authors_cpu.py`).
"""

from __future__ import annotations

import importlib
import math
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..provenance import gpu_model, provenance
from .spec import Case

THUMB_SIZE = 96


@dataclass
class CaseContext:
    """What a runner gets besides its case: the results folder and the executor's hooks.

    Attributes:
        out: the benchmark folder (thumbnails, reconstructions and other files go under it).
        keep_reconstruction: write the reconstruction file too.
        on_step: called with the step number while fitting (drives the progress bar).
        cache: survives from case to case in one process (the last loaded signal).
        prefit: (signal, FitResult or the exception it ended with) when the case was already trained
            with others by `fit_many` (bench/grouped.py); `fit_case` then returns it instead of fitting.
    """

    out: Path
    keep_reconstruction: bool = False
    on_step: Callable[[int], None] | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    prefit: tuple[Any, Any] | None = None


Runner = Callable[[Case, CaseContext], dict[str, Any]]
"""A case runner returns the row's fields (metrics, params, steps, seconds, extra, ...); raising gives an error row."""

RUNNERS: dict[str, Runner] = {}


def register_runner(name: str, fn: Runner | None = None) -> Any:
    """Make `fn(case, context) -> row fields` the runner of cases whose spec says `runner = name`.

    A runner registered in a module other than `__main__` also works in isolated and Ray workers:
    they import that module first. Usable as a decorator.

    Example:
        >>> @register_runner("params_only")
        ... def params_only(case, context):
        ...     return {"metrics": {}, "params": case.params}
        >>> get_runner("params_only") is params_only
        True
    """
    def add(f: Runner) -> Runner:
        RUNNERS[name] = f
        return f

    return add(fn) if fn is not None else add


def get_runner(name: str) -> Runner:
    """The runner registered as `name` (ConfigError listing the known ones otherwise)."""
    if name not in RUNNERS:
        from ..errors import ConfigError

        raise ConfigError(f"unknown case runner {name!r}; known: {', '.join(sorted(RUNNERS))}")
    return RUNNERS[name]


def import_runner(module: str | None) -> None:
    """In a worker process: import the module that registers a case's runner (see `runner_module`)."""
    if module:
        importlib.import_module(module)


def runner_module(name: str) -> str | None:
    """The module a worker process must import to have runner `name` registered (None: built in or __main__)."""
    module = getattr(get_runner(name), "__module__", None)
    return module if module != "__main__" else None


def generic_thumbnail(array: np.ndarray) -> np.ndarray | None:
    """(H, W, C) -> its centre crop; (T, H, W, C) (video, volume) -> the middle frame's; else None."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 4:
        array = array[array.shape[0] // 2]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        return None
    h, w = array.shape[:2]
    top, left = max(0, (h - THUMB_SIZE) // 2), max(0, (w - THUMB_SIZE) // 2)
    crop = array[top:top + THUMB_SIZE, left:left + THUMB_SIZE, :3]
    lo, hi = float(crop.min()), float(crop.max())
    if lo < 0 or hi > 1:  # e.g. an SDF slice: show it stretched rather than clipped
        crop = (crop - lo) / (hi - lo or 1.0)
    return crop


def save_thumbnail(kind: str, array: np.ndarray, path: Path) -> str | None:
    """Write the kind's thumbnail of `array` as PNG; never fails the case (returns None instead)."""
    import imageio.v3 as iio

    from ..signals import KINDS

    try:
        own = KINDS[kind].thumbnail if kind in KINDS else None
        picture = (own or generic_thumbnail)(array)
        if picture is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        ints = np.round(np.clip(picture, 0, 1) * 255).astype(np.uint8)
        iio.imwrite(path, ints[..., 0] if ints.shape[-1] == 1 else ints)
        return str(path)
    except Exception:  # noqa: BLE001  a gallery picture is a nicety; the metrics are what matter
        return None


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80]


def original_thumbnail(out: Path, signal: str, load: dict[str, Any]) -> Path:
    """Where the thumbnail of a signal as loaded (with these loader options) lives."""
    from .spec import config_hash

    digest = config_hash({"s": signal, "l": load})[:8]
    return Path(out) / "thumbs" / f"{slug(Path(signal).stem)}__original__{digest}.png"


def base_row(case: Case) -> dict[str, Any]:
    """The row's identity and its provenance (in `versions`: versions, git state, command, CPU, signal sha256)."""
    import torch

    return {"signal": case.signal, "signal_name": case.signal_name, "kind": case.kind, "model": case.model.label,
            "model_name": case.model.name, "seed": case.seed, "config_hash": case.config_hash,
            "config": case.to_dict(), "versions": {"inrkit": __version__, "torch": torch.__version__,
                                                    "python": platform.python_version(),
                                                    **provenance(case.signal, case.device)}}


def run_case(case: Case, out: str | Path, *, keep_reconstruction: bool = False,
             on_step: Callable[[int], None] | None = None, cache: dict[str, Any] | None = None,
             prefit: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """Run one case with its runner and return its store row; exceptions (NaN, out of memory, bad file)
    give an error row. `prefit`: see CaseContext.

    Example:
        >>> row = run_case(resolve(spec)[0], "bench-out")  # doctest: +SKIP
        >>> row["status"], row["metrics"]["psnr"]  # doctest: +SKIP
        ('ok', 31.2)
    """
    row = base_row(case)
    context = CaseContext(Path(out), keep_reconstruction, on_step, cache if cache is not None else {}, prefit)
    try:
        row.update(get_runner(case.runner)(case, context))
        row["versions"]["gpu"] = gpu_model(row.get("device"))  # the device the case ran on, known only now
        if any(isinstance(v, float) and math.isnan(v) for v in row.get("metrics", {}).values()):
            raise FloatingPointError(f"metrics are NaN: {row['metrics']}")
        row["status"] = "ok"
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001  every failure is recorded, and the benchmark goes on
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        row.update(status="error", error=f"{type(exc).__name__}: {message}"[:1000])
        _free_gpu_memory()
    return row


def load_case_signal(case: Case, cache: dict[str, Any]) -> Any:
    """Load the case's signal, reusing the last one (cases come signal-major)."""
    from ..signals import load_signal

    key = (case.signal, case.kind, repr(sorted(case.load.items())))
    if cache.get("key") != key:
        cache.clear()
        kind = None if case.kind == "unknown" else case.kind
        cache.update(key=key, signal=load_signal(case.signal, kind, **case.load))
    return cache["signal"]


def fit_case(case: Case, context: CaseContext) -> tuple[Any, Any]:
    """Load the case's signal, build its model at its seed and fit it: (signal, FitResult).

    The shared first half of every built-in runner. Ctrl-C inside the fit raises KeyboardInterrupt,
    so a truncated case is never recorded.
    """
    import torch

    from ..fit import fit
    from ..utils import seed_everything

    if context.prefit is not None:
        signal, outcome = context.prefit
        if isinstance(outcome, BaseException):
            raise outcome
        return signal, outcome
    signal = load_case_signal(case, context.cache)
    seed_everything(case.seed)  # the same seed gives the same init for every run of the case
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()  # peak memory per case
    model, on_step = case_model(case, signal), context.on_step
    result = fit(model, signal, case_config(case), callback=(lambda r: on_step(int(r["step"]))) if on_step else None)
    if result.interrupted:
        raise KeyboardInterrupt
    return signal, result


def case_model(case: Case, signal: Any) -> Any:
    """The case's backbone for `signal` (seed torch first for its init)."""
    from ..models import create_model

    # what the output means (loss, targets) belongs to the model, not to the fit
    return create_model(case.model.name, signal=signal, params=case.params, loss=case.fit.get("loss"),
                        targets=case.fit.get("targets"), recipe=case.fit.get("recipe") or "authors",
                        **case.model.overrides)


def case_config(case: Case) -> Any:
    """The case's FitConfig: its fit settings but the model's own (loss, targets), its seed and device."""
    from ..fit import FitConfig

    settings = {k: v for k, v in case.fit.items() if k not in ("loss", "targets")}
    return FitConfig(**settings, seed=case.seed, device=case.device, progress=False)


def fit_row(result: Any) -> dict[str, Any]:
    """The store fields every fit fills: numeric metrics, size, steps, timings, device, history."""
    from ..utils import count_params

    return {"metrics": {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))},
            "params": count_params(result.model), "steps": result.steps, "seconds": result.seconds,
            "time_to_target": result.time_to_target, "device": str(next(result.model.parameters()).device),
            "history": [[h["step"], h["loss"], h["psnr"], h["seconds"], h.get("samples"),
                         *([h["iou"]] if "iou" in h else [])] for h in result.history],
            "extra": {"peak_mib": peak_memory_mib(next(result.model.parameters()).device)}}


def peak_memory_mib(device: Any) -> float:
    """CUDA's allocator peak on a GPU; else the process's peak RSS (per case when cases are isolated)."""
    import resource

    import torch

    if getattr(device, "type", "cpu") == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def case_stem(case: Case) -> str:
    """A file-name stem unique to the case (thumbnails, reconstructions, compressed files)."""
    return f"{slug(case.signal_name)}__{slug(case.model.label)}__s{case.seed}__{case.config_hash}"


@register_runner("fit")
def fit_and_judge(case: Case, context: CaseContext) -> dict[str, Any]:
    """The default runner: fit, evaluate, keep a thumbnail (and the reconstruction if asked)."""
    from ..inference import render, write_reconstruction
    from ..signals import get_kind

    signal, result = fit_case(case, context)
    out, stem = context.out, case_stem(case)
    array = render(result.model, signal.info, predict=result.predict)  # the final evaluation's grid, not a new pass
    row = {**fit_row(result), "thumbnail": save_thumbnail(case.kind, array, out / "thumbs" / f"{stem}.png")}
    original = original_thumbnail(out, case.signal, case.load)
    if signal.points is None and not original.exists():
        save_thumbnail(case.kind, signal.values.numpy(), original)
    if context.keep_reconstruction:
        target = out / "reconstructions" / f"{stem}{get_kind(signal.kind).extension}"
        target.parent.mkdir(parents=True, exist_ok=True)
        row["reconstruction"] = str(write_reconstruction(array, signal.info, target))
    return row


def _free_gpu_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001, S110  freeing memory is best effort; the error row is already made
        pass
