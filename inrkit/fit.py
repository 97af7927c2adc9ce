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

from . import checkpoints
from . import progress as progress_display
from .engine import adam, build_engine, check_precision, engine_settings, train_step
from .errors import ConfigError, InrkitError, ModelError
from .inference import OutputMap, evaluate, predictor
from .metrics import psnr_from_mse
from .models import get_entry
from .models.base import Backbone
from .models.registry import RECIPE_NAMES
from .samplers import Batch, make_sampler, samples_per_step, teaching_batches
from .signals import KINDS, Signal, get_kind
from .utils import check_seed, resolve_device, seed_everything

DEFAULT_STEPS = 2000
SECONDS_CAP = 10**9  # steps of a fit whose only budget is time
SAMPLERS = ("uniform", "int")
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
        steps: optimisation steps (None: the recipe's, else 2000).
        epochs: a budget in passes over the signal instead of steps (steps = epochs · samples / batch).
        samples: a budget in samples seen instead of steps (steps = samples / batch).
        seconds: a budget in seconds of training: the fit stops when it is spent, and the learning-rate
            and sampling schedules run on the fraction of it used (`steps` is then only a cap).
        lr: Adam learning rate (recipe when None).
        lr_decay: factor the learning rate has fallen to at the last step (recipe when None; 1 = constant).
        batch_size: samples per step (None: the whole signal up to 2^18 samples, else random 2^18).
        seed: seeds torch and the sampler; recorded in every result.
        device: "auto" (cuda > mps > cpu), "cpu", "cuda", ...
        log_every: steps between history rows (None: about 200 rows per run).
        eval_every: steps between progress evaluations when batches are random (None: about 20 per run);
            on signals over 2^16 samples they use a fixed random subset, the full evaluation runs at the end.
        target_psnr: stop as soon as the PSNR reaches this (dB) and record the time it took.
        target_iou: the same for shapes' IoU (estimated every `eval_every` steps on a random 2^15 of the
            evaluation grid's cells; the final IoU is on the whole grid).
        chunk_size: points per forward pass when evaluating, so memory stays bounded.
        checkpoint_path: where to save a resumable checkpoint (None: no checkpoints); `fit(resume=...)` reads one.
        checkpoint_every: steps (500 or "500") or seconds ("30s") between checkpoints (None: every tenth of
            the fit or 30 s, whichever comes first, so a kill loses at most that).
        progress: show a progress bar.
        loss_terms: weights of the signal kind's extra loss terms by name, e.g. {"eikonal": 0.1} for
            SIREN's | |grad f| - 1 | on signed distances; a term the kind does not offer is an error.
        recipe: "authors" or "fast" (None: the one the model was built with).
        warmup: steps of linear learning-rate warm-up (None: the recipe's).
        sampler: "uniform" (full batch or random batches) or "int" (Implicit Neural Teaching: train on
            the samples the model gets most wrong; see `samplers.teaching_batches`).
        precision: "fp32", "tf32" (TF32 matmuls on GPUs), "bf16" or "fp16" (autocast; fp16 with loss
            scaling), or "bf16-fp32" (bf16 for the first 80% of the fit, fp32 after: nearly bf16's speed
            at fp32's final quality). Metrics are always computed in float32 or better.
        compile: train through `torch.compile` (falls back to eager with a warning where unavailable).
        threads: CPU threads for this fit (None: torch's default).
        read_every: steps between reading the loss back to the host (None: 1 on CPUs, where it is
            free, 25 on GPUs, where each read waits for the device); divergence and a target PSNR are
            noticed at those steps.
    """

    steps: int | None = None
    epochs: float | None = None
    samples: int | None = None
    seconds: float | None = None
    lr: float | None = None
    lr_decay: float | None = None
    batch_size: int | None = None
    seed: int = 0
    device: str = "auto"
    log_every: int | None = None
    eval_every: int | None = None
    target_psnr: float | None = None
    target_iou: float | None = None
    chunk_size: int = 1 << 16
    checkpoint_path: str | None = None
    checkpoint_every: int | str | None = None
    progress: bool = True
    loss_terms: dict[str, float] = field(default_factory=dict)
    recipe: str | None = None
    warmup: int | None = None
    sampler: str = "uniform"
    precision: str = "fp32"
    compile: bool = False
    threads: int | None = None
    read_every: int | None = None

    def __post_init__(self) -> None:
        check_precision(self.precision)
        checkpoints.parse_every(self.checkpoint_every)
        if self.recipe is not None and self.recipe not in RECIPE_NAMES:
            raise ConfigError(f"unknown recipe {self.recipe!r}; choose from {', '.join(RECIPE_NAMES)}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        if self.warmup is not None and (not isinstance(self.warmup, int) or self.warmup < 0):
            raise ConfigError(f"warmup must be an integer >= 0, got {self.warmup!r}")
        for name, weight in self.loss_terms.items():
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
                raise ConfigError(f"{name} weight must be a finite number >= 0, got {weight!r}")
        for name in ("steps", "batch_size", "log_every", "eval_every", "chunk_size", "threads", "read_every"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        for name in ("epochs", "samples", "seconds"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if sum(v is not None for v in (self.steps, self.epochs, self.samples)) > 1:
            raise ConfigError("give one budget: steps, epochs or samples (seconds may cap any of them)")
        check_seed(self.seed)
        for name in ("lr", "target_psnr"):  # NaN and inf pass a plain `> 0`
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise ConfigError(f"{name.replace('_', '-')} must be a finite number above 0, got {value!r}")
        if self.target_iou is not None and not (isinstance(self.target_iou, (int, float)) and 0 < self.target_iou <= 1):
            raise ConfigError(f"target-iou must lie in (0, 1], got {self.target_iou!r}")
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
    predict: Any = None  # the final evaluation's predictor; it keeps that grid, so rendering it again is free


def resolve_config(config: FitConfig, model: nn.Module, signal: Signal) -> FitConfig:
    """Fill the unset fields from the backbone's recipe for this signal kind (then the kind's defaults)."""
    if config.target_iou is not None and get_kind(signal.kind).metric("iou") is None:
        shapes = " and ".join(k.name for k in KINDS.values() if k.metric("iou"))
        raise ConfigError(f"a target IoU applies to {shapes} fits, not {signal.kind}; use a target PSNR")
    name = config.recipe or model_info(model).recipe
    recipe = get_entry(model_info(model).name).recipe(signal.kind, name, signal.num_samples)
    batch = config.batch_size or recipe.batch_size or get_kind(signal.kind).batch_size
    return FitConfig(**{**asdict(config),
                        "recipe": name,
                        "steps": budget_steps(config, recipe.steps, signal.num_samples, batch),
                        "epochs": None, "samples": None,
                        "warmup": recipe.warmup if config.warmup is None else config.warmup,
                        "lr": config.lr or recipe.lr,
                        "lr_decay": config.lr_decay or recipe.lr_decay,
                        "batch_size": batch})


def budget_steps(config: FitConfig, recipe_steps: int | None, samples: int, batch: int | None) -> int:
    """Steps for the budget given in steps, epochs or samples; a seconds budget alone runs until time is up."""
    per_step = samples_per_step(samples, batch)
    if config.epochs is not None:
        return max(1, math.ceil(config.epochs * samples / per_step))
    if config.samples is not None:
        return max(1, math.ceil(config.samples / per_step))
    if config.steps is None and config.seconds is not None:
        return SECONDS_CAP
    return config.steps or recipe_steps or DEFAULT_STEPS


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


class Clock:
    """Training time only (evaluation excluded).

    On a GPU, time is real only after a synchronisation, so `stop(sync=False)` ends a segment without
    one: the queued work is then counted by the next synchronised segment, and the fit loop
    synchronises at every step where it reads results, before any evaluation runs.
    """

    def __init__(self, device: torch.device, start: float = 0.0) -> None:
        self.device, self.total, self._t0 = device, start, 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def stop(self, sync: bool = True) -> None:
        if sync and self.device.type == "cuda":
            torch.cuda.synchronize()
        self.total += time.perf_counter() - self._t0

    def __enter__(self) -> Clock:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fit(model: nn.Module, signal: Signal, config: FitConfig | None = None,
        sampler: Iterator[Batch] | None = None,
        callback: Callable[[dict[str, float]], None] | None = None,
        resume: str | Path | None = None) -> FitResult:
    """Fit `model` to `signal`; Ctrl-C stops early and still returns (and checkpoints) what was learnt.

    Args:
        model: a backbone from `create_model` (seed torch before creating it for a reproducible init).
        signal: the signal to fit.
        config: steps, learning rate, batch size, seed, device... (recipe defaults when None).
        sampler: an iterator of (coords, targets) batches in model units; the default covers the signal.
        callback: called with each history row (step, loss, psnr, seconds).
        resume: a checkpoint of this same fit (model, signal and settings) to continue from; one of
            another fit is a ConfigError naming what differs. Checkpoints are never read otherwise.

    Example:
        >>> from inrkit import create_model, load_signal
        >>> sig = load_signal("data/astronaut.png")
        >>> model = create_model("siren", signal=sig)
        >>> result = fit(model, sig, FitConfig(steps=300))  # doctest: +SKIP
        >>> result.metrics["psnr"] > 25  # doctest: +SKIP
        True
    """
    cfg = resolve_config(config or FitConfig(), model, signal)
    with engine_settings(cfg.precision, cfg.threads):
        return _fit(model, signal, cfg, sampler, callback, resume)


def lr_factor(cfg: FitConfig, elapsed: Callable[[], float] | None = None) -> Callable[[int], float]:
    """Linear warm-up from 1% of the learning rate, times exponential decay to `lr_decay` at the end.

    The end is the last step, or with a seconds budget whichever comes first of the last step and the
    last second (`elapsed()` gives the training seconds so far).
    """

    def factor(step: int) -> float:
        warm = min(1.0, 0.01 + 0.99 * step / cfg.warmup) if cfg.warmup else 1.0
        return warm * cfg.lr_decay ** fraction_done(cfg, step, elapsed() if elapsed else None)

    return factor


def target_met(cfg: FitConfig, psnr: float, estimated: dict[str, float]) -> bool:
    """Whether the fit has reached its target PSNR or IoU (never, without a target)."""
    if cfg.target_psnr is not None and psnr >= cfg.target_psnr:
        return True
    return cfg.target_iou is not None and estimated.get("iou", -math.inf) >= cfg.target_iou


def fraction_done(cfg: FitConfig, step: int, seconds: float | None = None) -> float:
    """How far a fit is, 0 to 1: by steps, or by seconds where a time budget runs out first."""
    done = step / cfg.steps
    if cfg.seconds and seconds is not None:
        done = max(done, seconds / cfg.seconds)
    return min(done, 1.0)


def default_sampler(signal: Signal, cfg: FitConfig, model: nn.Module, out_map: OutputMap, device: torch.device,
                    generator: torch.Generator, start: int) -> tuple[Iterator[Batch], bool]:
    """The sampler `cfg.sampler` names; returns it and whether each step sees the whole signal."""
    if cfg.sampler == "int":
        batch = samples_per_step(signal.num_samples, cfg.batch_size)
        return teaching_batches(signal, batch, out_map.to_model, device, generator, sample_error(model, out_map),
                                cfg.steps, start), False
    return make_sampler(signal, cfg.batch_size, out_map.to_model, device, generator)


def sample_error(model: nn.Module, out_map: OutputMap) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-sample L1 error summed over channels, in model units (logits through the sigmoid for BCE)."""

    def error(coords: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        output = model(coords)
        output = torch.sigmoid(output) if out_map.loss == "bce" else output
        return (output.float() - targets).abs().sum(-1)

    return error


def _fit(model: nn.Module, signal: Signal, cfg: FitConfig, sampler: Iterator[Batch] | None,
         callback: Callable[[dict[str, float]], None] | None, resume: str | Path | None) -> FitResult:
    loss_name, device = model_info(model).loss, resolve_device(cfg.device)
    generator = seed_everything(cfg.seed)
    model.to(device).train()
    out_map = OutputMap.of(model, signal.info)
    extra = regulariser(model, signal, cfg.loss_terms, out_map.gain)
    model.init_from_signal(signal)
    engine = build_engine(model, device, cfg.precision, cfg.compile and extra is None)  # no double backward
    recipe = get_entry(model_info(model).name).recipe(signal.kind, cfg.recipe)  # Adam's betas and eps
    optimizer = adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, betas=recipe.betas, eps=recipe.eps)
    clock = Clock(device)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, lambda: clock.total))
    fit_identity = checkpoints.identity(model, signal, asdict(cfg)) if cfg.checkpoint_path or resume else {}
    state = checkpoints.read_checkpoint(resume, fit_identity) if resume else {}
    if state:
        checkpoints.restore(state, resume, model, optimizer, schedule, generator)
    start, history, clock.total = state.get("step", 0), state.get("history", []), state.get("seconds", 0.0)
    engine.advance(fraction_done(cfg, start, clock.total))  # a resumed fit may already be past bf16-fp32's switch
    seen = history[-1].get("samples", 0) if history else 0  # samples seen so far, for equal-budget comparisons
    full = False
    if sampler is None:
        sampler, full = default_sampler(signal, cfg, model, out_map, device, generator, start)
    horizon = cfg.steps if cfg.steps < SECONDS_CAP else 2000  # a time budget: log as for a 2000-step fit
    log_every = cfg.log_every or max(1, horizon // 200)
    eval_every = cfg.eval_every or max(1, horizon // 20)
    read_every = cfg.read_every or (1 if device.type == "cpu" else 25)
    span = signal.data_range[1] - signal.data_range[0]
    loss_fn, step, interrupted, time_to_target = LOSSES[loss_name], start, False, state.get("time_to_target")
    value, last_psnr = math.nan, math.nan
    saves = checkpoints.Schedule(cfg.checkpoint_every, cfg.steps if cfg.steps < SECONDS_CAP else None, cfg.seconds,
                                 start)

    def save() -> None:
        checkpoints.save_checkpoint(cfg.checkpoint_path, fit_identity, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "generator": generator.get_state(), "step": step, "history": history, "seconds": clock.total,
            "time_to_target": time_to_target})
        saves.done(step)

    def reads(n: int) -> bool:  # steps whose loss is read back (or the model evaluated)
        return n == cfg.steps or any(n % every == 0 for every in (read_every, log_every, eval_every))

    probe = None if full else progress_probe(signal, cfg.seed)
    watch_loss = full and loss_name == "mse" and cfg.target_psnr is not None  # the PSNR read is the loss's
    estimate = get_kind(signal.kind).progress
    estimate = estimate(signal, cfg.seed) if estimate else None  # shapes: IoU on a sample of the grid
    # measured once before training, so every history row (and a live CSV's header) carries its columns
    estimated = estimate(predictor(model, signal.info, chunk_size=cfg.chunk_size)) if estimate else {}
    bar = progress_display.task(f"{model_info(model).name} {signal.name}",
                                cfg.steps if cfg.steps < SECONDS_CAP else None, completed=start,
                                progress=cfg.progress)
    try:
        while step < cfg.steps:
            clock.start()
            batch = next(sampler)
            # A full batch's loss is that of the weights before the step: keep them where a target may be read
            before = [p.detach().clone() for p in model.parameters()] if watch_loss and reads(step + 1) else None
            loss = train_step(engine, optimizer, batch, loss_fn, extra)
            schedule.step()
            step, seen = step + 1, seen + len(batch[0])
            engine.advance(fraction_done(cfg, step, clock.total))
            read = reads(step)
            clock.stop(sync=read)  # the only host syncs: where the loss is read or the model evaluated
            last = step == cfg.steps or (read and cfg.seconds is not None and clock.total >= cfg.seconds)
            if read:
                value = float(loss)
                if not math.isfinite(value):
                    raise FitDiverged(f"loss became {value} by step {step}; try a lower --lr")
                if loss_name == "mse" and full:
                    last_psnr = psnr_from_mse(value / out_map.gain**2, span)
            if loss_name == "mse" and not full and (step % eval_every == 0 or last):
                last_psnr = psnr_from_mse(probe_mse(model, signal, probe, cfg.chunk_size), span)
            if estimate is not None and (step % eval_every == 0 or last):
                estimated = estimate(predictor(model, signal.info, chunk_size=cfg.chunk_size))
            reached = time_to_target is None and target_met(cfg, last_psnr, estimated)
            if step % log_every == 0 or last or reached:
                row = {"step": step, "loss": value, "psnr": last_psnr, "seconds": clock.total, "samples": seen,
                       **estimated}
                history.append(row)
                shown = {"psnr": f"{last_psnr:.2f}"} if math.isfinite(last_psnr) else {}
                bar.update(loss=f"{value:.3g}", **shown, **{k: f"{v:.3f}" for k, v in estimated.items()})
                if callback:
                    callback(row)
            bar.advance()
            if reached:
                time_to_target = clock.total
                if before is not None:  # return the weights that reached the target, not the step after them
                    with torch.no_grad():
                        for p, kept in zip(model.parameters(), before):
                            p.copy_(kept)
            if reached or last:
                break
            if cfg.checkpoint_path and saves.due(step):
                save()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    if cfg.checkpoint_path:
        save()
    predict = predictor(model, signal.info, chunk_size=cfg.chunk_size, cache=True)
    metrics = evaluate(model, signal, predict=predict)
    return FitResult(model, metrics, history, step, clock.total, interrupted, time_to_target, asdict(cfg),
                     signal.info, predict)
