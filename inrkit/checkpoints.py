"""Resumable checkpoints that know which fit they belong to, and when a fit writes them.

A checkpoint records its fit's identity: the model (name and constructor arguments), the signal
(a hash of its values) and the settings that shape training. It is loaded only when asked
(`resume=`) and only into the same fit; anything else is one clear error. Loading never unpickles
(`torch.load(weights_only=True)`).
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ConfigError, ExportError
from .publish import replace_file
from .signals import Signal

FORMAT = "inrkit.checkpoint/1"
# Settings that change what a step does; a fit resumed under others would be neither fit.
MATTERS = ("steps", "seconds", "lr", "lr_decay", "batch_size", "seed", "recipe", "warmup", "sampler", "precision",
           "loss_terms")
DEFAULT_SECONDS = 30.0  # a kill loses at most this much of a fit, or a tenth of it, whichever is less


def parse_every(value: int | str | None) -> tuple[int | None, float | None]:
    """`checkpoint_every` as (steps, seconds): 500 or "500" -> (500, None), "30s" -> (None, 30.0).

    None is the default: every tenth of the fit or 30 s, whichever comes first.

    Example:
        >>> parse_every("500"), parse_every("30s"), parse_every(None)
        ((500, None), (None, 30.0), (None, None))
    """
    if value is None:
        return None, None
    text = str(value).strip().lower()
    try:
        if text.endswith("s"):
            seconds = float(text[:-1])
            if math.isfinite(seconds) and seconds > 0:
                return None, seconds
        elif not isinstance(value, float) and int(text) > 0:
            return int(text), None
    except ValueError:
        pass
    raise ConfigError(f"checkpoint-every must be a number of steps (500) or seconds (30s), got {value!r}")


class Schedule:
    """When to write the next checkpoint: after `steps` steps or `seconds` seconds, whichever comes first."""

    def __init__(self, every: int | str | None, total_steps: int | None, budget_seconds: float | None,
                 start: int = 0) -> None:
        steps, seconds = parse_every(every)
        if steps is None and seconds is None:
            steps = max(1, math.ceil(total_steps / 10)) if total_steps else None
            seconds = min(DEFAULT_SECONDS, budget_seconds / 10) if budget_seconds else DEFAULT_SECONDS
        self.steps, self.seconds = steps, seconds
        self.last_step, self.last_time = start, time.monotonic()

    def due(self, step: int) -> bool:
        return bool((self.steps and step - self.last_step >= self.steps)
                    or (self.seconds and time.monotonic() - self.last_time >= self.seconds))

    def done(self, step: int) -> None:
        self.last_step, self.last_time = step, time.monotonic()


def signal_digest(signal: Signal) -> str:
    """A hash of what is fitted: kind, values and (for point signals) coordinates."""
    h = hashlib.blake2b(signal.kind.encode(), digest_size=16)
    for tensor in (signal.values, signal.points):
        if tensor is not None:
            h.update(str(tuple(tensor.shape)).encode())
            h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())  # no copy
    return h.hexdigest()


def identity(model: nn.Module, signal: Signal, config: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint must share with a fit to be resumed by it (JSON-plain, so it compares after loading)."""
    info = model.model_info
    plain = {"model": info.name, "model_args": info.kwargs, "signal": signal_digest(signal),
             "settings": {k: config.get(k) for k in MATTERS}}
    return json.loads(json.dumps(plain, default=str))


def differences(saved: dict[str, Any], wanted: dict[str, Any]) -> str:
    """What differs between a checkpoint's identity and this fit's, in a few words."""
    if saved.get("model") != wanted["model"]:
        return f"model {saved.get('model')} vs {wanted['model']}"
    parts = []
    for group in ("model_args", "settings"):
        old, new = saved.get(group) or {}, wanted[group]
        parts += [f"{k} {old.get(k)!r} vs {new.get(k)!r}" for k in sorted(set(old) | set(new))
                  if old.get(k) != new.get(k)]
    if saved.get("signal") != wanted["signal"]:
        parts.append("a different signal")
    return ", ".join(parts)


def save_checkpoint(path: str | Path, fit_identity: dict[str, Any], state: dict[str, Any]) -> None:
    """Write a checkpoint through a temporary file: a kill mid-write leaves the previous one."""
    record = {"format": FORMAT, "identity": json.dumps(fit_identity, sort_keys=True), **state}
    replace_file(path, lambda tmp: torch.save(record, tmp))


def read_checkpoint(path: str | Path, fit_identity: dict[str, Any], mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint that belongs to this fit; anything else is one ExportError/ConfigError line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError:
        raise ExportError(f"{path}: holds objects other than weights; refused (nothing in it was run)") from None
    except FileNotFoundError:
        raise ExportError(f"{path}: no checkpoint to resume from") from None
    except Exception as exc:  # torch raises many kinds for a truncated or foreign file
        raise ExportError(f"{path}: not a readable inrkit checkpoint (truncated or foreign: "
                          f"{type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ExportError(f"{path}: not an inrkit checkpoint (written by another tool or an older inrkit)")
    try:
        saved = json.loads(state["identity"])
    except (TypeError, ValueError, KeyError):
        raise ExportError(f"{path}: checkpoint without a readable identity") from None
    if saved != fit_identity:
        raise ConfigError(f"{path}: belongs to another fit ({differences(saved, fit_identity)}); "
                          "use the same options, or drop --resume to start afresh")
    return state


def restore(state: dict[str, Any], path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
            schedule: Any, generator: torch.Generator) -> None:
    """Put a checkpoint's state into the model, optimiser, schedule and generator."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise ExportError(f"{path}: checkpoint does not fit this model ({reason})") from None
