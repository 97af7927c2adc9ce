"""FitConfig, FitResult and fit(): the one training loop for every backbone and signal kind.

The pieces a batched variant would swap (building the loss, one optimisation step) are separate
functions; the loop only wires them to a sampler, logging, checkpoints and stopping rules.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import progress as progress_display
from .errors import ConfigError, InrkitError, ModelError
from .metrics import psnr_from_mse
from .models import get_entry
from .models.base import Backbone
from .inference import OutputMap, evaluate, predictor
from .samplers import Batch, make_sampler
from .signals import KINDS, Signal, get_kind
from .utils import resolve_device, seed_everything

LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": F.mse_loss,
    "bce": F.binary_cross_entropy_with_logits,
}


class FitDiverged(InrkitError):
    """The loss became NaN or infinite."""


@dataclass
class FitConfig:
    """How to fit. Fields left as None take the backbone's recipe for the signal kind.

    Attributes:
        steps: optimisation steps.
        lr: Adam learning rate (recipe when None).
        lr_decay: factor the learning rate has fallen to at the last step (recipe when None; 1 = constant).
        batch_size: samples per step (None: the whole signal up to 2^18 samples, else random 2^18).
        seed: seeds torch and the sampler; recorded in every result.
        device: "auto" (cuda > mps > cpu), "cpu", "cuda", ...
        log_every: steps between history rows (None: about 200 rows per run).
        eval_every: steps between progress evaluations when batches are random (None: about 20 per run);
            on signals over 2^16 samples they use a fixed random subset, the full evaluation runs at the end.
        target_psnr: stop as soon as the PSNR reaches this (dB) and record the time it took.
        chunk_size: points per forward pass when evaluating, so memory stays bounded.
        checkpoint_path: where to save a resumable checkpoint (None: no checkpoints).
        checkpoint_every: seconds between checkpoints.
        progress: show a progress bar.
        loss_terms: weights of the signal kind's extra loss terms by name, e.g. {"eikonal": 0.1} for
            SIREN's | |grad f| - 1 | on signed distances; a term the kind does not offer is an error.
    """

    steps: int = 2000
    lr: float | None = None
    lr_decay: float | None = None
    batch_size: int | None = None
    seed: int = 0
    device: str = "auto"
    log_every: int | None = None
    eval_every: int | None = None
    target_psnr: float | None = None
    chunk_size: int = 1 << 16
    checkpoint_path: str | None = None
    checkpoint_every: float = 60.0
    progress: bool = True
    loss_terms: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, weight in self.loss_terms.items():
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
                raise ConfigError(f"{name} weight must be a finite number >= 0, got {weight!r}")
        for name in ("steps", "batch_size", "log_every", "eval_every", "chunk_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.lr_decay is not None and not 0 < self.lr_decay <= 1:
            raise ConfigError(f"lr-decay must lie in (0, 1], got {self.lr_decay}")


@dataclass
class FitResult:
    """What a fit produced. `metrics` come from a clean evaluation after training."""

    model: nn.Module
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    steps: int
    seconds: float
    interrupted: bool = False
    time_to_target: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    signal_info: Any = None


def resolve_config(config: FitConfig, model: nn.Module, signal: Signal) -> FitConfig:
    """Fill the unset fields from the backbone's recipe for this signal kind (then the kind's defaults)."""
    recipe = get_entry(model_info(model).name).recipe(signal.kind)
    return FitConfig(**{**asdict(config),
                        "lr": config.lr or recipe.lr,
                        "lr_decay": config.lr_decay or recipe.lr_decay,
                        "batch_size": config.batch_size or recipe.batch_size or get_kind(signal.kind).batch_size})


def model_info(model: nn.Module) -> Any:
    """The model's record; fit needs one to find its recipe and read its output."""
    info = getattr(model, "model_info", None)
    if not isinstance(model, Backbone) or info is None:
        raise ModelError("fit needs a backbone built by inrkit.create_model (or loaded with inrkit.load)")
    return info


PROBE_SIZE = 1 << 16  # samples in the fixed subset that tracks progress between random batches


def progress_probe(signal: Signal, seed: int) -> torch.Tensor | None:
    """A fixed random subset of sample indices (None: the whole signal is small enough to use as is).

    Progress PSNR on a subset keeps the per-step evaluation's memory and time independent of the
    signal's size; the full evaluation runs once, after training.
    """
    n = signal.num_samples
    if n <= PROBE_SIZE:
        return None
    # randint, not randperm: a permutation of a long video would cost 8 bytes for every sample
    return torch.randint(n, (PROBE_SIZE,), generator=torch.Generator().manual_seed(seed)).unique()


def probe_mse(model: nn.Module, signal: Signal, index: torch.Tensor | None, chunk_size: int) -> float:
    """Mean squared error in signal units on the samples at `index` (all when None), clamped like evaluate."""
    pred = predictor(model, signal.info, chunk_size=chunk_size)(signal.coords(index))
    target = signal.targets(index).float()
    return float(((pred.clamp(*signal.data_range) - target).double() ** 2).mean())


Regulariser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def regulariser(model: nn.Module, signal: Signal, terms: dict[str, float], gain: float) -> Regulariser | None:
    """The sum of the kind's weighted loss terms and the backbone's own `extra_loss` (None: nothing to add)."""
    offered = get_kind(signal.kind).loss_terms
    for name in terms:
        if name not in offered:
            kinds = sorted(k.name for k in KINDS.values() if name in k.loss_terms)
            raise ConfigError(f"the {name} term applies to {' and '.join(kinds) or 'no'} fits, not {signal.kind}")
    parts = [offered[name](weight, gain) for name, weight in terms.items() if weight]
    own = type(model).extra_loss is not Backbone.extra_loss
    if not parts and not own:
        return None

    def total(coords: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        extra = model.extra_loss(coords, output) if own else None
        value = sum(part(coords, output) for part in parts)
        return value + extra if extra is not None else value

    return total


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch,
               loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               regulariser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> float:
    """One optimisation step; returns the loss before the update.

    `regulariser(coords, output)` adds a term that may differentiate the output by the coordinates.
    """
    coords, targets = batch
    if regulariser is not None:
        coords = coords.detach().requires_grad_(True)
    output = model(coords)
    loss = loss_fn(output, targets)
    if regulariser is not None:
        loss = loss + regulariser(coords, output)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


class _Clock:
    """Training time only (evaluation excluded), synchronised with CUDA so it is real."""

    def __init__(self, device: torch.device, start: float = 0.0) -> None:
        self.device, self.total, self._t0 = device, start, None

    def __enter__(self) -> _Clock:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.total += time.perf_counter() - self._t0


def fit(model: nn.Module, signal: Signal, config: FitConfig | None = None,
        sampler: Iterator[Batch] | None = None, callback: Callable[[dict[str, float]], None] | None = None) -> FitResult:
    """Fit `model` to `signal`; Ctrl-C stops early and still returns (and checkpoints) what was learnt.

    Args:
        model: a backbone from `create_model` (seed torch before creating it for a reproducible init).
        signal: the signal to fit.
        config: steps, learning rate, batch size, seed, device... (recipe defaults when None).
        sampler: an iterator of (coords, targets) batches in model units; the default covers the signal.
        callback: called with each history row (step, loss, psnr, seconds).

    Example:
        >>> from inrkit import create_model, load_signal
        >>> sig = load_signal("data/astronaut.png")
        >>> model = create_model("siren", signal=sig)
        >>> result = fit(model, sig, FitConfig(steps=300))  # doctest: +SKIP
        >>> result.metrics["psnr"] > 25  # doctest: +SKIP
        True
    """
    cfg = resolve_config(config or FitConfig(), model, signal)
    loss_name = model_info(model).loss
    device = resolve_device(cfg.device)
    generator = seed_everything(cfg.seed)
    model.to(device).train()
    out_map = OutputMap.of(model, signal.info)
    extra = regulariser(model, signal, cfg.loss_terms, out_map.gain)
    model.init_from_signal(signal)
    full = False
    if sampler is None:
        sampler, full = make_sampler(signal, cfg.batch_size, out_map.to_model, device, generator)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cfg.lr_decay ** min(s / cfg.steps, 1.0))
    state = _resume(cfg.checkpoint_path, model, optimizer, schedule, generator)
    start, history = state.get("step", 0), state.get("history", [])
    clock = _Clock(device, state.get("seconds", 0.0))
    log_every = cfg.log_every or max(1, cfg.steps // 200)
    eval_every = cfg.eval_every or max(1, cfg.steps // 20)
    span = signal.data_range[1] - signal.data_range[0]
    loss_fn, step, interrupted, time_to_target = LOSSES[loss_name], start, False, state.get("time_to_target")
    last_psnr, last_save = math.nan, time.monotonic()
    probe = None if full else progress_probe(signal, cfg.seed)
    bar = progress_display.task(f"{model_info(model).name} {signal.name}", cfg.steps, completed=start,
                                progress=cfg.progress)
    try:
        while step < cfg.steps:
            with clock:
                loss = train_step(model, optimizer, next(sampler), loss_fn, extra)
                schedule.step()
            if not math.isfinite(loss):
                raise FitDiverged(f"loss became {loss} at step {step + 1}; try a lower --lr")
            step += 1
            if loss_name == "mse" and (full or step % eval_every == 0 or step == cfg.steps):
                err = loss / out_map.gain**2 if full else probe_mse(model, signal, probe, cfg.chunk_size)
                last_psnr = psnr_from_mse(err, span)
            reached = cfg.target_psnr is not None and time_to_target is None and last_psnr >= cfg.target_psnr
            if step % log_every == 0 or step == cfg.steps or reached:
                row = {"step": step, "loss": loss, "psnr": last_psnr, "seconds": clock.total}
                history.append(row)
                bar.update(loss=f"{loss:.3g}", **({"psnr": f"{last_psnr:.2f}"} if math.isfinite(last_psnr) else {}))
                if callback:
                    callback(row)
            bar.advance()
            if reached:
                time_to_target = clock.total
                break
            if cfg.checkpoint_path and time.monotonic() - last_save > cfg.checkpoint_every:
                _save_checkpoint(cfg.checkpoint_path, model, optimizer, schedule, generator, step, history,
                                 clock.total, time_to_target)
                last_save = time.monotonic()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    if cfg.checkpoint_path:
        _save_checkpoint(cfg.checkpoint_path, model, optimizer, schedule, generator, step, history, clock.total,
                         time_to_target)
    metrics = evaluate(model, signal, chunk_size=cfg.chunk_size)
    return FitResult(model, metrics, history, step, clock.total, interrupted, time_to_target, asdict(cfg),
                     signal.info)


def _save_checkpoint(path: str, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any,
                     generator: torch.Generator, step: int, history: list, seconds: float,
                     time_to_target: float | None) -> None:
    """Write a resumable checkpoint atomically (a crash mid-write leaves the previous one)."""
    target = Path(path)
    tmp = target.with_suffix(target.suffix + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "generator": generator.get_state(), "step": step, "history": history, "seconds": seconds,
                "time_to_target": time_to_target}, tmp)
    tmp.replace(target)


def _resume(path: str | None, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any,
            generator: torch.Generator) -> dict[str, Any]:
    """Load a checkpoint written by an earlier run of the same fit, if there is one."""
    if not path or not Path(path).exists():
        return {}
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    generator.set_state(state["generator"])
    return state
