"""The members of a fit_many run as one engine: stacked layers where the backbone allows, else vmap.

`build_members` picks `StackedMembers` (see `inrkit.stacked`) when the backbone can be stacked and
the stacked forward agrees with each member's own, and `VmapMembers` (vmap over `functional_call`:
grids, hash encodings) otherwise. Both hold the stacked parameters with the member axis first, so
one Adam steps them and its state is exactly M separate Adams' states. `Chunked` runs the members
in cache-sized groups on CPUs; `Stack` is fit_many's training state over it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from .engine import adam
from .models.base import Backbone
from .stacked import StackedMembers

ENGINES = ("auto", "stacked", "vmap")


class VmapMembers:
    """Each member's own module, vectorised with `torch.func.vmap` over `functional_call`."""

    kind = "vmap"

    def __init__(self, nets: Sequence[nn.Module]) -> None:
        self.template = copy.deepcopy(nets[0])
        names = [k for k, p in self.template.named_parameters() if p.requires_grad]
        self.params = {k: nn.Parameter(torch.stack([dict(n.named_parameters())[k].detach() for n in nets]))
                       for k in names}
        self.buffers = {k: torch.stack([dict(n.named_buffers())[k] for n in nets])
                        for k, _ in self.template.named_buffers()}

    def forward(self, coords: torch.Tensor, members: int) -> torch.Tensor:
        def one(p: dict, b: dict, c: torch.Tensor) -> torch.Tensor:
            return functional_call(self.template, (p, b), (c,))

        # view_as: a fresh tensor object per call, so no backbone cache keyed on identity outlives a vmap
        shared = coords.dim() == 2
        return vmap(one, in_dims=(0, 0, None if shared else 0))(self.params, self.buffers, coords.view_as(coords))

    def mse_step(self, coords: torch.Tensor, targets: torch.Tensor, members: int) -> None:
        return None  # always through autograd

    def keep(self, index: torch.Tensor) -> dict[str, nn.Parameter]:
        self.params = {k: nn.Parameter(p.detach()[index]) for k, p in self.params.items()}
        self.buffers = {k: b[index] for k, b in self.buffers.items()}
        return self.params

    def state(self, row: int) -> dict[str, torch.Tensor]:
        return {**{k: p[row] for k, p in self.params.items()}, **{k: b[row] for k, b in self.buffers.items()}}


Members = StackedMembers | VmapMembers
CACHE_BYTES = 2 << 20  # a CPU group's widest activation (members x samples x width floats): one core's L2


class Chunked:
    """The members in groups, each group one engine; a step runs forward and backward group by group.

    On a CPU one (M, N, D) activation of many members falls out of the caches, and the elementwise
    passes (sin, cos, their gradients) then run at memory speed. Measured on the 2-core Xeon (2 MiB L2
    per core), 64 SIREN 3x32 members on 32² crops: groups of 16 (a 2 MiB activation) take 4.6-4.7 s of
    training, groups of 8 5.4 s, of 32 4.9-5.1 s; 16 SIREN 3x64 on 64² crops, groups of 2: 12.0-12.5 s,
    groups of 1 15.4 s. On a GPU one group holds all.
    Parameter names are "<group id>.<name>"; ids stay fixed when members leave and groups empty.
    """

    def __init__(self, parts: list[Members], sizes: list[int]) -> None:
        self.parts, self.sizes, self.ids = parts, sizes, list(range(len(parts)))

    @property
    def kind(self) -> str:
        return self.parts[0].kind

    @property
    def params(self) -> dict[str, nn.Parameter]:
        return {f"{i}.{k}": p for i, part in zip(self.ids, self.parts) for k, p in part.params.items()}

    def spans(self) -> list[tuple[int, int, Members]]:
        """(first row, end row, engine) of each group."""
        out, start = [], 0
        for part, size in zip(self.parts, self.sizes):
            out.append((start, start + size, part))
            start += size
        return out

    def forward(self, coords: torch.Tensor, members: int) -> torch.Tensor:
        return torch.cat([part.forward(coords if coords.dim() == 2 else coords[a:b], b - a)
                          for a, b, part in self.spans()])

    def keep(self, index: torch.Tensor) -> dict[str, tuple[nn.Parameter, torch.Tensor]]:
        """Keep the members at sorted stack rows `index`; returns {name: (new parameter, kept rows of the old)}."""
        kept, parts, sizes, ids = {}, [], [], []
        for i, (a, b, part) in zip(self.ids, self.spans()):
            local = index[(index >= a) & (index < b)] - a
            if len(local) == 0:
                continue
            for name, param in part.keep(local).items():
                kept[f"{i}.{name}"] = (param, local)
            parts.append(part), sizes.append(len(local)), ids.append(i)
        self.parts, self.sizes, self.ids = parts, sizes, ids
        return kept

    def state(self, row: int) -> dict[str, torch.Tensor]:
        for a, b, part in self.spans():
            if a <= row < b:
                return part.state(row - a)
        raise IndexError(row)


def build_members(nets: Sequence[nn.Module], probe: torch.Tensor, engine: str = "auto",
                  group: int | None = None, fuse: bool = True) -> Chunked:
    """The fastest engine that computes exactly what each member's module computes on `probe` coordinates.

    "auto" takes the stacked engine unless the backbone opts out (class attribute
    `batched_engine = "vmap"`), cannot be stacked, or its stacked output differs from the members' own.
    Stacked members run in groups of `group` (None: all in one); vmap runs all at once. `fuse`: as
    `StackedMembers.build`.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "auto" and getattr(type(nets[0]), "batched_engine", "auto") == "vmap":
        engine = "vmap"
    if engine != "vmap":
        stacked = StackedMembers.build(nets, fuse)
        if stacked is not None and _agrees(stacked, nets, probe):
            size = group or len(nets)
            cuts = range(0, len(nets), size)
            parts = [stacked] if size >= len(nets) else [StackedMembers.build(nets[a:a + size], fuse) for a in cuts]
            sizes = [len(nets[a:a + size]) for a in cuts]
            for part, n in zip(parts, sizes):
                part.find_body(probe, n)
            return Chunked(parts, sizes)
        if engine == "stacked":
            raise ValueError(f"{type(nets[0]).__name__} cannot run stacked; use engine='vmap'")
    return Chunked([VmapMembers(nets)], [len(nets)])


def group_size(nets: Sequence[nn.Module], samples: int, device: torch.device) -> int | None:
    """Members per group on a CPU: as many as keep the widest layer's activation within CACHE_BYTES."""
    if device.type != "cpu":
        return None
    width = max((max(p.shape) for p in nets[0].parameters() if p.dim() >= 2), default=1)
    return max(1, CACHE_BYTES // (4 * samples * width))


def _agrees(stacked: StackedMembers, nets: Sequence[nn.Module], probe: torch.Tensor) -> bool:
    try:
        with torch.no_grad():
            got = stacked.forward(probe, len(nets))
            want = torch.stack([n(probe) for n in nets])
    except (RuntimeError, ValueError, TypeError, IndexError):  # a forward that assumes (N, D) inputs
        return False
    if got.shape != want.shape:
        return False
    ok = torch.isfinite(want)  # a member that starts at NaN (it will diverge) must come out NaN there too
    if not torch.equal(ok, torch.isfinite(got)):
        return False
    if not ok.any():
        return True
    scale = want[ok].abs().max().clamp_min(1e-6)
    return bool(((got[ok] - want[ok]).abs().max() / scale) < 1e-4)


def member_losses(output: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """Each member's mean loss over its samples and channels: (M, N, C) -> (M,) in one reduction.

    Example:
        >>> member_losses(torch.ones(2, 3, 1), torch.zeros(2, 3, 1), "mse")
        tensor([1., 1.])
    """
    dims = tuple(range(1, output.dim()))
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(output, targets, reduction="none").mean(dims)
    return (output - targets).square().mean(dims)


@dataclass
class Stack:
    """fit_many's members still training: their engine (stacked parameters), Adam, batches and own modules."""

    engine: Chunked
    active: list[int]
    samplers: list[Any]
    modules: list[Backbone]
    fixed_coords: torch.Tensor | None = None  # full batches: (N, D) shared by all members, or (M, N, D)
    targets: torch.Tensor | None = None
    full: bool = False
    optimizer: torch.optim.Optimizer | None = None
    params: dict[str, nn.Parameter] = field(default_factory=dict)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.engine.forward(coords, len(self.active))

    def step(self, coords: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
        """One Adam step of every member; returns the (M,) losses before it, detached (no host sync)."""
        self.optimizer.zero_grad(set_to_none=True)
        out = []
        for a, b, part in self.engine.spans():  # groups, not members: a handful per step
            group_coords = coords if coords.dim() == 2 else coords[a:b]
            losses = part.mse_step(group_coords, targets[a:b], b - a) if loss == "mse" else None
            if losses is None:
                losses = member_losses(part.forward(group_coords, b - a), targets[a:b], loss)
                losses.sum().backward()  # members are independent: each gets the gradient of its own loss
            out.append(losses.detach())
        self.optimizer.step()
        return torch.cat(out)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.full:
            return self.fixed_coords, self.targets
        pairs = [next(s) for s in self.samplers]
        return torch.stack([c for c, _ in pairs]), torch.stack([t for _, t in pairs])

    def keep(self, rows: list[int]) -> None:
        """Drop every member but `rows` (positions in the stack), with their Adam state."""
        if not rows:  # everyone left: nothing to step any more
            self.active, self.samplers, self.modules = [], [], []
            return
        index = torch.tensor(rows, dtype=torch.long, device=next(iter(self.params.values())).device)
        old, old_params = self.optimizer, self.params
        kept = self.engine.keep(index)
        self.params = {name: param for name, (param, _) in kept.items()}
        self.optimizer = adam(self.params.values(), **_adam_settings(old))
        for name, (p_new, local) in kept.items():
            st = old.state.get(old_params[name])
            if st:
                self.optimizer.state[p_new] = {k: (v[local] if torch.is_tensor(v) and v.dim() else v)
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
            module.load_state_dict(self.engine.state(row), strict=False)
        return module


def _adam_settings(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    group = optimizer.param_groups[0]
    return {k: group[k] for k in ("lr", "betas", "eps", "weight_decay", "amsgrad")}
