"""fit_many(): many same-shaped fits trained as one vectorised model.

Every member (a signal and a seed) gets its own network; their parameters are stacked on a leading
member axis and one forward pass computes all of them (`inrkit.members`: the backbone rebuilt with
batched-matmul layers where it allows, vmap over `functional_call` otherwise). One Adam steps the
stacked tensors; Adam is elementwise, so each member's slice of its state is exactly what a separate
Adam would hold. The step semantics are `fit`'s: the same recipe resolution, target mapping, sampler
(seeded per member), learning-rate schedule, PSNR bookkeeping, target-PSNR stop and divergence check;
a member that reaches its target or diverges leaves the stack alone and the others go on. A step
has no per-member Python: the losses come back as one (M,) tensor, read every `read_every` steps.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from . import progress as progress_display
from .engine import adam, engine_settings
from .errors import ConfigError
from .fit import (
    SECONDS_CAP,
    Clock,
    FitConfig,
    FitResult,
    lr_factor,
    model_info,
    probe_mse,
    progress_probe,
    resolve_config,
)
from .inference import OutputMap, evaluate
from .inits import apply_init, resolve_init
from .members import ENGINES, Chunked, Stack, build_members, group_size
from .models import create_model, get_entry
from .models.base import Backbone
from .samplers import make_sampler
from .signals import Signal
from .utils import resolve_device, seed_everything

ModelSpec = str | Callable[[Signal], Backbone]
PROBE_POINTS = 64  # coordinates on which the stacked engine must agree with each member's own module


@dataclass
class Member:
    """One fit of a fit_many run: its signal, seed, how it ended and (unless it diverged) its result.

    Attributes:
        signal: the signal fitted.
        seed: seeds its init and its sampler, as FitConfig.seed does for `fit`.
        status: "done" (all steps), "target" (reached target_psnr), "diverged" or "interrupted".
        result: a FitResult as `fit` returns it (None when the member diverged).
        error: why it diverged.
        engine: how the run computed its members: "stacked" (batched matmuls) or "vmap".
    """

    signal: Signal
    seed: int
    status: str = "running"
    result: FitResult | None = None
    error: str | None = None
    engine: str = ""


def members_of(signals: Sequence[Signal], seeds: Sequence[int] | None, base_seed: int) -> list[Member]:
    """Pair signals with seeds: one signal x k seeds, or N signals with N seeds (default base_seed + i)."""
    signals = list(signals)
    if not signals:
        raise ConfigError("fit_many needs at least one signal")
    if seeds is None:
        seeds = [base_seed + i for i in range(len(signals))]
    seeds = list(seeds)
    if len(signals) == 1:
        signals = signals * len(seeds)
    elif len(seeds) == 1:
        seeds = seeds * len(signals)
    if len(seeds) != len(signals) or not seeds:
        raise ConfigError(f"give one seed per signal or one signal with many seeds ({len(signals)} signals, "
                          f"{len(seeds)} seeds)")
    first = signals[0]
    for sig in signals[1:]:
        if (sig.kind, tuple(sig.values.shape)) != (first.kind, tuple(first.values.shape)):
            raise ConfigError(f"fit_many needs signals of one kind and shape: {first.name} is {first.kind} "
                              f"{_shape(first)}, {sig.name} is {sig.kind} {_shape(sig)}; group or resize them")
    return [Member(sig, int(seed)) for sig, seed in zip(signals, seeds)]


def _shape(sig: Signal) -> str:
    return "x".join(map(str, sig.values.shape))


def _build(member: Member, model: ModelSpec, init: Any, device: torch.device, shared: dict | None) -> Backbone:
    seed_everything(member.seed)
    net = create_model(model, signal=member.signal) if isinstance(model, str) else model(member.signal)
    model_info(net)  # a clear error for something that is not an inrkit backbone
    apply_init(net, shared if shared is not None else init)
    seed_everything(member.seed)  # as `fit` seeds before the data-dependent init and the sampler
    net.to(device).train()
    net.init_from_signal(member.signal)
    return net


def fit_many(signals: Sequence[Signal], model: ModelSpec, config: FitConfig | None = None, *,
             seeds: Sequence[int] | None = None, init: Any = "random", engine: str = "auto",
             callback: Callable[[int, dict[str, float]], None] | None = None) -> list[Member]:
    """Fit many members (signals and/or seeds) at once as one vectorised model.

    Each member equals `fit(create_model(model, signal=sig), sig, replace(config, seed=s))` run with
    `torch.manual_seed(s)` before the model is built, up to floating-point summation order.

    Args:
        signals: signals of ONE kind and shape (anything else raises ConfigError: group them by
            shape, or load them with a common `size=`/`crop=`); one signal with several seeds fits it
            once per seed.
        model: a registry name ("siren") or a function signal -> backbone (e.g. to set the width).
        config: as for `fit`; `seed` is the first member's seed when `seeds` is None (then member i
            has seed config.seed + i). Loss terms (eikonal), checkpoints, the "int" sampler and mixed
            precision are not supported; `compile` compiles the stacked engine (vmap members run eager).
        seeds: one per signal, or several for one signal.
        init: "random" (each member its own seeded init), "shared" (the first member's init for all),
            a weights file / module / state dict (e.g. a meta-learned init) of the same backbone and size.
        engine: "auto" (stacked layers where the backbone allows, else vmap), "stacked" or "vmap".
        callback: called with (member index, history row) for each row.

    Returns:
        One Member per member, in order, with its status and FitResult (None if it diverged).

    Example:
        >>> sigs = [load_signal(p, size=32) for p in sorted(Path("crops").glob("*.png"))]  # doctest: +SKIP
        >>> members = fit_many(sigs, "siren", FitConfig(steps=300))  # doctest: +SKIP
        >>> [m.result.metrics["psnr"] for m in members]  # doctest: +SKIP
    """
    members = members_of(signals, seeds, (config or FitConfig()).seed)
    config = config or FitConfig()
    check_supported(config)
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    device = resolve_device(config.device)
    init = resolve_init(init)
    shared = None
    if init == "shared":
        seed_everything(members[0].seed)
        first = create_model(model, signal=members[0].signal) if isinstance(model, str) else model(members[0].signal)
        shared = ({k: v.detach().clone() for k, v in first.state_dict().items()}, None)
    nets = [_build(m, model, init, device, shared) for m in members]
    if type(nets[0]).extra_loss is not Backbone.extra_loss:
        raise ConfigError(f"{model_info(nets[0]).name} adds its own loss term, which fit_many does not run yet; "
                          "use fit")
    cfg = resolve_config(config, nets[0], members[0].signal)
    maps = [OutputMap.of(net, m.signal.info) for net, m in zip(nets, members)]  # each member's own (min-max)
    with engine_settings(cfg.precision, cfg.threads):
        stack = _stack(nets, members, maps, cfg, device, engine)
        for m in members:
            m.engine = stack.engine.kind
        _train(stack, members, maps, cfg, device, callback)
    return members


def check_supported(config: FitConfig) -> None:
    """The FitConfig options fit_many does not run (yet): one clear error rather than a silent difference."""
    unsupported = [name for name, off in (("loss_terms", {}), ("checkpoint_path", None), ("sampler", "uniform"),
                                          ("precision", "fp32"), ("target_iou", None))
                   if getattr(config, name, off) != off]
    if unsupported:
        raise ConfigError(f"fit_many does not support {', '.join(unsupported)} yet; use fit for those")


def _stack(nets: list[Backbone], members: list[Member], maps: list[OutputMap], cfg: FitConfig, device: torch.device,
           engine: str) -> Stack:
    first = members[0].signal
    probe = first.coords(torch.arange(min(PROBE_POINTS, first.num_samples))).to(device)
    try:
        group = group_size(nets, min(cfg.batch_size or first.num_samples, first.num_samples), device)
        members_engine = build_members(nets, probe, engine, group, fuse=not cfg.compile)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if cfg.compile:
        _compile(members_engine)
    samplers, full = [], False
    for out_map, m in zip(maps, members):
        sampler, full = make_sampler(m.signal, cfg.batch_size, out_map.to_model, device,
                                     torch.Generator().manual_seed(m.seed))
        samplers.append(sampler)
    stack = Stack(members_engine, list(range(len(members))), samplers, list(nets),
                   params=dict(members_engine.params))
    recipe = get_entry(model_info(nets[0]).name).recipe(first.kind, cfg.recipe)  # Adam's betas and eps, as fit
    stack.optimizer = adam(stack.params.values(), lr=cfg.lr, betas=recipe.betas, eps=recipe.eps)
    if full:
        batches = [next(s) for s in samplers]
        same = all(b[0] is batches[0][0] or torch.equal(b[0], batches[0][0]) for b in batches)
        stack.fixed_coords = batches[0][0] if same else torch.stack([b[0] for b in batches])
        stack.targets = torch.stack([b[1] for b in batches])
        stack.samplers, stack.full = [None] * len(members), True
    return stack


def _compile(members: Chunked) -> None:
    """torch.compile each stacked group (they share one graph); vmap members stay eager."""
    if members.kind != "stacked":
        warnings.warn("compile applies to the stacked engine; these members run under vmap, uncompiled",
                      stacklevel=3)
        return
    for part in members.parts:
        part.compile()


def psnr_of(mse: np.ndarray, data_range: float) -> np.ndarray:
    """`psnr_from_mse` for an array of errors (inf where the error is 0, NaN where it is NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10 * np.log10(data_range**2 / np.asarray(mse, dtype=np.float64))


def _probe_mses(stack: Stack, members: list[Member], probes: list | None, cfg: FitConfig,
                maps: list[OutputMap]) -> np.ndarray:
    """fit's probe_mse for every active member: clamped squared error in signal units (float64, (M,))."""
    sigs = [members[i].signal for i in stack.active]
    if probes is not None and any(probes[i] is not None for i in stack.active):  # large signals: one by one
        return np.array([probe_mse(stack.unstack(r), sig, probes[stack.active[r]], cfg.chunk_size)
                         for r, sig in enumerate(sigs)], dtype=np.float64)
    device, m = next(iter(stack.params.values())).device, len(sigs)
    coords, parts = sigs[0].coords(), []  # one shape, so one grid for all
    with torch.no_grad():
        for piece in coords.split(max(1, cfg.chunk_size // m)):
            output = stack.forward(piece.to(device)).float().cpu()
            parts.append(torch.stack([maps[i].to_signal(o) for i, o in zip(stack.active, output)]))
    pred = torch.cat(parts, dim=1).clamp(*sigs[0].data_range)
    target = torch.stack([s.targets().float() for s in sigs])
    return ((pred - target).double() ** 2).flatten(1).mean(1).numpy()


def _train(stack: Stack, members: list[Member], maps: list[OutputMap], cfg: FitConfig, device: torch.device,
           callback: Callable[[int, dict[str, float]], None] | None) -> None:
    """fit's loop over the stack; members that reach the target or diverge leave it as they do."""
    signal, info = members[0].signal, model_info(stack.modules[0])
    gains, span = np.array([m.gain for m in maps], dtype=np.float64), signal.data_range[1] - signal.data_range[0]
    horizon = cfg.steps if cfg.steps < SECONDS_CAP else 2000  # a time budget: log as for a 2000-step fit
    log_every, eval_every = cfg.log_every or max(1, horizon // 200), cfg.eval_every or max(1, horizon // 20)
    read_every = cfg.read_every or (1 if device.type == "cpu" else 25)
    probes = None if stack.full else [progress_probe(m.signal, m.seed) for m in members]
    book = _Book(members, cfg, callback)
    clock, step, seen, interrupted = Clock(device), 0, 0, False
    factor = lr_factor(cfg, lambda: clock.total)
    bar = progress_display.task(f"{info.name} x{len(members)}", cfg.steps if cfg.steps < SECONDS_CAP else None,
                                progress=cfg.progress)
    try:
        while step < cfg.steps and stack.active:
            clock.start()
            coords, targets = stack.batch()
            losses = stack.step(coords, targets, info.loss)
            for group in stack.optimizer.param_groups:  # fit's LambdaLR: base lr times the factor
                group["lr"] = cfg.lr * factor(step + 1)
            step, seen = step + 1, seen + targets.shape[1]
            read = step == cfg.steps or any(step % every == 0 for every in (read_every, log_every, eval_every))
            clock.stop(sync=read)  # as fit: the only host syncs are where losses are read or members evaluated
            bar.advance(active=len(stack.active))
            if not read:
                continue
            last = step == cfg.steps or (cfg.seconds is not None and clock.total >= cfg.seconds)
            logging = step % log_every == 0 or last
            evaluating = info.loss == "mse" and not stack.full and (step % eval_every == 0 or last)
            # the one host read of the step, for every member; the bookkeeping on it runs in numpy, where an
            # operation on 64 numbers costs a microsecond rather than torch's ten
            values = losses.double().cpu().numpy()
            active = np.array(stack.active)
            if info.loss == "mse" and stack.full:
                book.psnr[active] = psnr_of(values / gains[active] ** 2, span)
            elif evaluating:
                book.psnr[active] = psnr_of(_probe_mses(stack, members, probes, cfg, maps), span)
            leaving = book.update(stack.active, values, step, seen, clock.total, logging)
            if leaving:
                for row, (status, error) in leaving.items():
                    _finish(stack, row, members, status, error, step, clock.total, book, cfg)
                stack.keep([r for r in range(len(stack.active)) if r not in leaving])
            if last:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    status = "interrupted" if interrupted else "done"
    for row in range(len(stack.active)):
        _finish(stack, row, members, status, None, step, clock.total, book, cfg)


class _Book:
    """Per-member history rows, last PSNR and time to target; decides who leaves the stack."""

    def __init__(self, members: list[Member], cfg: FitConfig,
                 callback: Callable[[int, dict[str, float]], None] | None) -> None:
        self.histories: list[list[dict]] = [[] for _ in members]
        self.psnr = np.full(len(members), math.nan)
        self.reached_at: list[float | None] = [None] * len(members)
        self.target, self.callback = cfg.target_psnr, callback

    def update(self, active: list[int], values: np.ndarray, step: int, seen: int, seconds: float,
               logging: bool) -> dict[int, tuple[str, str | None]]:
        """Record rows; returns {stack row: (status, error)} for members that diverged or reached the target."""
        psnr = self.psnr[active]
        bad = ~np.isfinite(values)
        reached = (psnr >= self.target) & ~bad if self.target is not None else np.zeros_like(bad)
        leaving = {int(r): ("diverged", f"loss became {float(values[r])} at step {step}; try a lower --lr")
                   for r in np.flatnonzero(bad)}
        rows = range(len(active)) if logging else np.flatnonzero(reached).tolist()
        for r, loss, p in zip(rows, values[list(rows)].tolist(), psnr[list(rows)].tolist()):
            if r in leaving:
                continue
            i = active[r]
            self.histories[i].append({"step": step, "loss": loss, "psnr": p, "seconds": seconds, "samples": seen})
            if self.callback:
                self.callback(i, self.histories[i][-1])
        for r in np.flatnonzero(reached).tolist():
            self.reached_at[active[r]], leaving[r] = seconds, ("target", None)
        return leaving


def _finish(stack: Stack, row: int, members: list[Member], status: str, error: str | None, step: int,
            seconds: float, book: _Book, cfg: FitConfig) -> None:
    i = stack.active[row]
    member = members[i]
    member.status, member.error = status, error
    if status == "diverged":
        return
    module = stack.unstack(row)
    metrics = evaluate(module, member.signal, chunk_size=cfg.chunk_size)
    member.result = FitResult(module, metrics, book.histories[i], step, seconds, status == "interrupted",
                              book.reached_at[i], asdict(replace(cfg, seed=member.seed)), member.signal.info)
