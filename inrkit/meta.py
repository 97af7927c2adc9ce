"""A learned initialisation (Reptile, Nichol et al. 2018) over a folder of same-shaped signals.

Each outer step fits `meta_batch` signals from the current init for `inner_steps` Adam steps, all at
once on the batched engine (the members share the init, each has its own Adam), then moves the init
towards the mean of the fitted weights: theta += outer_lr * (mean(phi) - theta), with outer_lr
falling linearly to 0. The result is an ordinary weights file: `fit_many(..., init=FILE)` and
`inrkit fit-many --init FILE` start from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from . import progress as progress_display
from .engine import engine_settings
from .errors import ConfigError
from .fit import model_info
from .inference import OutputMap
from .members import build_members, member_losses
from .models import create_model
from .models.base import Backbone
from .signals import Signal
from .utils import check_seed, resolve_device, seed_everything


@dataclass
class MetaConfig:
    """Reptile settings.

    Attributes:
        outer_steps: init updates.
        inner_steps: Adam steps per member between updates (the fit the init is tuned for; inner fits
            of hundreds of steps learned far better inits than short ones, see benchmarks/results/batched.md).
        inner_lr: Adam learning rate of the inner fits (None: the backbone's recipe).
        meta_batch: signals fitted together per outer step.
        outer_lr: step towards the fitted weights at the start (falls linearly to 0).
        seed: seeds the init and the choice of signals.
        device: "auto", "cpu", ...
        progress: show a progress bar.
    """

    outer_steps: int = 150
    inner_steps: int = 400
    inner_lr: float | None = None
    meta_batch: int = 8
    outer_lr: float = 1.0
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("outer_steps", "inner_steps", "meta_batch"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)!r}")
        if not 0 < self.outer_lr <= 1:
            raise ConfigError(f"outer-lr must lie in (0, 1], got {self.outer_lr}")
        if self.inner_lr is not None and not 0 < self.inner_lr < math.inf:
            raise ConfigError(f"inner-lr must be a finite number above 0, got {self.inner_lr}")
        check_seed(self.seed)


def meta_learn(signals: Sequence[Signal], model: str | Callable[[Signal], Backbone],
               config: MetaConfig | None = None) -> Backbone:
    """Learn an initialisation for fitting signals like these; returns it as a backbone (save it with `save`).

    Example:
        >>> crops = [load_signal(p, crop=32) for p in sorted(Path("train").glob("*.png"))]  # doctest: +SKIP
        >>> init = meta_learn(crops, "siren", MetaConfig(outer_steps=200))  # doctest: +SKIP
        >>> save(init, "siren-init.safetensors")  # doctest: +SKIP
    """
    cfg = config or MetaConfig()
    signals = list(signals)
    if not signals:
        raise ConfigError("meta-learning needs at least one signal")
    shapes = {(s.kind, tuple(s.values.shape)) for s in signals}
    if len(shapes) > 1:
        raise ConfigError(f"meta-learning needs signals of one kind and shape, found {len(shapes)} different ones")
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    net = create_model(model, signal=signals[0]) if isinstance(model, str) else model(signals[0])
    info = model_info(net)
    if type(net).init_from_signal is not Backbone.init_from_signal:
        raise ConfigError(f"{info.name} sets part of its init from each signal; a learned init does not apply")
    from .models import get_entry

    inner_lr = cfg.inner_lr or get_entry(info.name).recipe(signals[0].kind).lr
    net.to(device)
    coords = signals[0].coords().to(device)
    targets = torch.stack([OutputMap.of(net, s.info).to_model(s.targets()) for s in signals]).to(device)
    picker = torch.Generator().manual_seed(cfg.seed)
    bar = progress_display.task(f"meta-learn {info.name}", cfg.outer_steps, progress=cfg.progress)
    try:
        with engine_settings():
            for outer in range(cfg.outer_steps):
                pick = torch.randperm(len(signals), generator=picker)[: cfg.meta_batch].to(device)
                loss = _reptile_step(net, coords, targets[pick], inner_lr, cfg.inner_steps,
                                     cfg.outer_lr * (1 - outer / cfg.outer_steps), info.loss)
                bar.advance(loss=f"{loss:.3g}")
    finally:
        bar.close()
    return net.cpu()


def _reptile_step(net: nn.Module, coords: torch.Tensor, targets: torch.Tensor, lr: float, steps: int,
                  outer_lr: float, loss: str) -> float:
    """Fit every target from `net`'s weights for `steps` Adam steps (stacked), then move `net` toward the mean."""
    m = targets.shape[0]
    members = build_members([net] * m, coords[:64]).parts[0]  # one group: the stack copies the weights m times
    params = dict(members.params)
    optimizer = torch.optim.Adam(list(params.values()), lr=lr)
    for _ in range(steps):
        losses = member_losses(members.forward(coords, m), targets, loss)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name in params:  # stacked or vmapped alike: member axis first, the member's shape after it
                p.add_(params[name].mean(0).reshape(p.shape) - p, alpha=outer_lr)
    return float(losses.detach().mean())
