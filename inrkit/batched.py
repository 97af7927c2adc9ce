"""fit_many(): many same-shaped fits trained as one vectorised model.

Every member (a signal and a seed) gets its own network; their parameters are stacked on a leading
member axis and the forward pass runs once for all of them with `torch.func.vmap` over
`functional_call`, so a small MLP's layers become batched matrix products. One Adam steps the
stacked tensors; Adam is elementwise, so each member's slice of its state is exactly what a separate
Adam would hold. The step semantics are `fit`'s: the same recipe resolution, target mapping, sampler
(seeded per member), learning-rate schedule, PSNR bookkeeping, target-PSNR stop and divergence check;
a member that reaches its target or diverges leaves the stack alone and the others go on.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from . import progress as progress_display
from .errors import ConfigError
from .fit import FitConfig, FitResult, _Clock, model_info, progress_probe, resolve_config
from .inference import OutputMap, evaluate
from .inits import apply_init, resolve_init
from .metrics import psnr_from_mse
from .models import create_model
from .models.base import Backbone
from .samplers import make_sampler
from .signals import Signal
from .utils import resolve_device, seed_everything

try:
    from .fit import lr_factor
except ImportError:  # fit.py before warm-up: exponential decay only

    def lr_factor(cfg: FitConfig) -> Callable[[int], float]:
        return lambda step: cfg.lr_decay ** min(step / cfg.steps, 1.0)

ModelSpec = str | Callable[[Signal], Backbone]
PER_MEMBER_LOSS = {
    "mse": lambda out, target: F.mse_loss(out, target, reduction="none"),
    "bce": lambda out, target: F.binary_cross_entropy_with_logits(out, target, reduction="none"),
}


@dataclass
class Member:
    """One fit of a fit_many run: its signal, seed, how it ended and (unless it diverged) its result.

    Attributes:
        signal: the signal fitted.
        seed: seeds its init and its sampler, as FitConfig.seed does for `fit`.
        status: "done" (all steps), "target" (reached target_psnr), "diverged" or "interrupted".
        result: a FitResult as `fit` returns it (None when the member diverged).
        error: why it diverged.
    """

    signal: Signal
    seed: int
    status: str = "running"
    result: FitResult | None = None
    error: str | None = None


@dataclass
class _Stack:
    """The members still training: stacked parameters and buffers, their Adam and their batches."""

    template: nn.Module
    params: dict[str, nn.Parameter]
    buffers: dict[str, torch.Tensor]
    active: list[int]
    samplers: list[Any]
    fixed_coords: torch.Tensor | None = None  # full batches: (N, D) shared by all members, or (M, N, D)
    targets: torch.Tensor | None = None
    full: bool = False
    optimizer: torch.optim.Optimizer | None = None
    modules: list[Backbone] = field(default_factory=list)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        # view_as: a fresh tensor object each call, so no backbone cache keyed on identity outlives a vmap
        def one(p: dict, b: dict, c: torch.Tensor) -> torch.Tensor:
            return functional_call(self.template, (p, b), (c,))

        shared = coords.dim() == 2
        return vmap(one, in_dims=(0, 0, None if shared else 0))(self.params, self.buffers, coords.view_as(coords))

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.full:
            return self.fixed_coords, self.targets
        pairs = [next(s) for s in self.samplers]
        return torch.stack([c for c, _ in pairs]), torch.stack([t for _, t in pairs])

    def keep(self, rows: list[int]) -> None:
        """Drop every member but `rows` (positions in the stack), with their Adam state."""
        index = torch.tensor(rows, dtype=torch.long, device=next(iter(self.params.values())).device)
        old = self.optimizer
        self.params = {k: nn.Parameter(p.detach()[index]) for k, p in self.params.items()}
        self.buffers = {k: b[index] for k, b in self.buffers.items()}
        self.optimizer = torch.optim.Adam(list(self.params.values()), **_adam_settings(old))
        for p_old, p_new in zip(old.param_groups[0]["params"], self.params.values()):
            st = old.state.get(p_old)
            if st:
                self.optimizer.state[p_new] = {k: (v[index] if torch.is_tensor(v) and v.dim() else v)
                                               for k, v in st.items()}
        self.active = [self.active[r] for r in rows]
        self.samplers = [self.samplers[r] for r in rows]
        self.modules = [self.modules[r] for r in rows]
        if self.full:
            self.targets = self.targets[index]
            if self.fixed_coords.dim() == 3:
                self.fixed_coords = self.fixed_coords[index]

    def unstack(self, row: int) -> Backbone:
        """The member at stack position `row` as its own module (the one built for it, weights loaded)."""
        module = self.modules[row]
        with torch.no_grad():
            module.load_state_dict({**{k: p[row] for k, p in self.params.items()},
                                    **{k: b[row] for k, b in self.buffers.items()}}, strict=False)
        return module


def _adam_settings(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    group = optimizer.param_groups[0]
    return {k: group[k] for k in ("lr", "betas", "eps", "weight_decay", "amsgrad")}


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
             seeds: Sequence[int] | None = None, init: Any = "random",
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
            has seed config.seed + i). Loss terms (eikonal) and checkpoint_path are not supported.
        seeds: one per signal, or several for one signal.
        init: "random" (each member its own seeded init), "shared" (the first member's init for all),
            a weights file / module / state dict (e.g. a meta-learned init) of the same backbone and size.
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
    _check_supported(config)
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
    stack = _stack(nets, members, cfg, device)
    _train(stack, members, cfg, device, callback)
    return members


def _check_supported(config: FitConfig) -> None:
    """The FitConfig options fit_many does not run (yet): one clear error rather than a silent difference."""
    unsupported = [name for name, off in (("loss_terms", {}), ("checkpoint_path", None), ("sampler", "uniform"),
                                          ("precision", "fp32"), ("compile", False))
                   if getattr(config, name, off) != off]
    if unsupported:
        raise ConfigError(f"fit_many does not support {', '.join(unsupported)} yet; use fit for those")


def _stack(nets: list[Backbone], members: list[Member], cfg: FitConfig, device: torch.device) -> _Stack:
    template = copy.deepcopy(nets[0])  # its own copy: finished members' weights are loaded into nets[i]
    params = {k: nn.Parameter(torch.stack([dict(n.named_parameters())[k].detach() for n in nets]))
              for k, p in template.named_parameters() if p.requires_grad}
    buffers = {k: torch.stack([dict(n.named_buffers())[k] for n in nets]) for k, _ in template.named_buffers()}
    out_map = OutputMap.of(template, members[0].signal.info)
    samplers, full = [], False
    for m in members:
        sampler, full = make_sampler(m.signal, cfg.batch_size, out_map.to_model, device,
                                     torch.Generator().manual_seed(m.seed))
        samplers.append(sampler)
    stack = _Stack(template, params, buffers, list(range(len(members))), samplers, modules=list(nets))
    stack.optimizer = torch.optim.Adam(list(params.values()), lr=cfg.lr)
    if full:
        batches = [next(s) for s in samplers]
        same = all(b[0] is batches[0][0] or torch.equal(b[0], batches[0][0]) for b in batches)
        stack.fixed_coords = batches[0][0] if same else torch.stack([b[0] for b in batches])
        stack.targets = torch.stack([b[1] for b in batches])
        stack.samplers, stack.full = [None] * len(members), True
    return stack


def _set_lr(optimizer: torch.optim.Optimizer, cfg: FitConfig, done: int) -> None:
    # what fit's LambdaLR computes (base lr times the factor), so each member's rate equals a single fit's
    factor = lr_factor(cfg)(done)
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr * factor


def _probe_mse(stack: _Stack, row: int, signal: Signal, index: torch.Tensor | None, cfg: FitConfig,
               out_map: OutputMap) -> float:
    """fit's probe_mse for one stacked member: clamped squared error in signal units on the probe subset."""
    state = ({k: p[row] for k, p in stack.params.items()}, {k: b[row] for k, b in stack.buffers.items()})
    device = next(iter(stack.params.values())).device
    coords, parts = signal.coords(index), []
    with torch.no_grad():
        for piece in coords.split(cfg.chunk_size):
            parts.append(out_map.to_signal(functional_call(stack.template, state, (piece.to(device),)).float()).cpu())
    pred = torch.cat(parts).clamp(*signal.data_range)
    return float(((pred - signal.targets(index).float()).double() ** 2).mean())


def _train(stack: _Stack, members: list[Member], cfg: FitConfig, device: torch.device,
           callback: Callable[[int, dict[str, float]], None] | None) -> None:
    """fit's loop over the stack; members that reach the target or diverge leave it as they do."""
    signal = members[0].signal
    loss_name, out_map = model_info(stack.template).loss, OutputMap.of(stack.template, signal.info)
    per_member_loss, span = PER_MEMBER_LOSS[loss_name], signal.data_range[1] - signal.data_range[0]
    log_every, eval_every = cfg.log_every or max(1, cfg.steps // 200), cfg.eval_every or max(1, cfg.steps // 20)
    probes = None if stack.full else [progress_probe(m.signal, m.seed) for m in members]
    histories: list[list[dict]] = [[] for _ in members]
    last_psnr, reached_at = [math.nan] * len(members), [None] * len(members)
    clock, step, interrupted = _Clock(device), 0, False
    bar = progress_display.task(f"{model_info(stack.template).name} x{len(members)}", cfg.steps,
                                progress=cfg.progress)
    try:
        while step < cfg.steps and stack.active:
            with clock:
                coords, targets = stack.batch()
                losses = per_member_loss(stack.forward(coords), targets).flatten(1).mean(1)
                stack.optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()  # members are independent: each gets the gradient of its own loss
                stack.optimizer.step()
                _set_lr(stack.optimizer, cfg, step + 1)
            step += 1
            leaving: dict[int, tuple[str, str | None]] = {}
            for row, (i, loss) in enumerate(zip(stack.active, losses.detach().cpu().tolist())):
                if not math.isfinite(loss):
                    leaving[row] = ("diverged", f"loss became {loss} at step {step}; try a lower --lr")
                    continue
                if loss_name == "mse" and (stack.full or step % eval_every == 0 or step == cfg.steps):
                    err = loss / out_map.gain**2 if stack.full else _probe_mse(stack, row, members[i].signal,
                                                                                probes[i], cfg, out_map)
                    last_psnr[i] = psnr_from_mse(err, span)
                reached = cfg.target_psnr is not None and last_psnr[i] >= cfg.target_psnr
                if step % log_every == 0 or step == cfg.steps or reached:
                    histories[i].append({"step": step, "loss": loss, "psnr": last_psnr[i], "seconds": clock.total})
                    if callback:
                        callback(i, histories[i][-1])
                if reached:
                    reached_at[i], leaving[row] = clock.total, ("target", None)
            bar.advance(active=len(stack.active) - len(leaving))
            if leaving:
                for row, (status, error) in leaving.items():
                    _finish(stack, row, members, status, error, step, clock.total, histories, reached_at, cfg)
                stack.keep([r for r in range(len(stack.active)) if r not in leaving])
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    status = "interrupted" if interrupted else "done"
    for row in range(len(stack.active)):
        _finish(stack, row, members, status, None, step, clock.total, histories, reached_at, cfg)


def _finish(stack: _Stack, row: int, members: list[Member], status: str, error: str | None, step: int,
            seconds: float, histories: list, reached_at: list, cfg: FitConfig) -> None:
    i = stack.active[row]
    member = members[i]
    member.status, member.error = status, error
    if status == "diverged":
        return
    module = stack.unstack(row)
    metrics = evaluate(module, member.signal, chunk_size=cfg.chunk_size)
    member.result = FitResult(module, metrics, histories[i], step, seconds, status == "interrupted", reached_at[i],
                              asdict(replace(cfg, seed=member.seed)), member.signal.info)
