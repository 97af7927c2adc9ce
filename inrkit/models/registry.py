"""The backbone registry: names -> classes, with each backbone's recipes per signal kind.

Like timm's registry, a model file registers its class with a decorator; `create_model` applies the
recipe for the signal kind, drops unset (None) overrides and can solve the width for a parameter
budget.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ..errors import ModelError
from ..limits import MAX_LAYERS, check_params, max_params
from ..signals import KINDS, SignalInfo
from ..utils import count_params
from .base import Backbone, ModelInfo

TARGET_MAPS = ("range", "minmax")


@dataclass(frozen=True)
class Recipe:
    """How to fit one backbone to one signal kind: the authors' whole protocol, or a tuned one.

    Steps, batch and learning rate may follow the signal's size N (samples): `resolve(N)` turns the
    rules into numbers, and `fit` resolves the recipe for the signal it is given. An explicit
    `FitConfig` value (``--steps``, ``--batch-size``, ``--lr``) replaces the resolved one as it is; it
    does not re-derive the others.

    Attributes:
        model: constructor defaults, or a function of the signal's SignalInfo returning them
            (for sizes that depend on the signal, such as a Nyquist-limited encoding).
        lr: Adam learning rate (before `lr_batch_scaling`).
        lr_decay: factor the learning rate has fallen to by the last step (exponential; 1 = constant).
        loss: "mse" or "bce" (logits); None takes the signal kind's default.
        batch_size: points per step; None means the signal kind's default (the whole signal up to
            2^18 samples for images).
        warmup: steps of linear learning-rate warm-up from lr/100 before the decay (0 = none).
        steps: optimisation steps of the protocol (None: `epochs`, else FitConfig's default 2000).
        source: where the setting comes from (the authors' script, or the tuning command).
        epochs: passes over the signal; steps = epochs · ceil(N / batch), as the authors' loops over a
            random permutation in batches run (needs `batch_size` or `batch_fraction`).
        batch_fraction: batch as a fraction of N (1.0: full batch, every step sees the whole signal).
        lr_batch_scaling: multiply lr by min(1, batch / N), as WIRE's scripts do.
        betas: Adam's betas.
        eps: Adam's eps.
        targets: what maps onto the backbone's `target_range`: "range", the signal's nominal data range
            (x/255 for 8-bit images), or "minmax", each signal's own minimum and maximum, as WIRE's,
            SL²A's and FKAN's image scripts normalise (the map is stored with the weights).

    Example:
        >>> r = Recipe(lr=1e-3, epochs=501, batch_size=16384).resolve(512 * 512)
        >>> r.steps, r.batch_size
        (8016, 16384)
    """

    model: dict[str, Any] | Callable[[Any], dict[str, Any]] = field(default_factory=dict)
    lr: float = 1e-4
    lr_decay: float = 1.0
    loss: str | None = None
    batch_size: int | None = None
    warmup: int = 0
    steps: int | None = None
    source: str = ""
    epochs: int | None = None
    batch_fraction: float | None = None
    lr_batch_scaling: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    targets: str = "range"

    def __post_init__(self) -> None:
        if self.targets not in TARGET_MAPS:
            raise ValueError(f"targets must be one of {', '.join(TARGET_MAPS)}, got {self.targets!r}")
        if (self.epochs is not None or self.lr_batch_scaling) and not (self.batch_size or self.batch_fraction):
            raise ValueError("a recipe in epochs or with lr_batch_scaling needs batch_size or batch_fraction")
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give a recipe's length as steps or as epochs, not both")

    def model_kwargs(self, info: Any = None) -> dict[str, Any]:
        return dict(self.model(info) if callable(self.model) else self.model)

    def resolve(self, samples: int | None) -> Recipe:
        """This recipe with batch, steps and lr as numbers for a signal of `samples` samples.

        Unchanged when `samples` is None (the size is unknown).

        Example:
            >>> wire = Recipe(lr=5e-3, epochs=2000, batch_size=65536, lr_batch_scaling=True)
            >>> r = wire.resolve(512 * 768)
            >>> r.steps, round(r.lr, 7)
            (12000, 0.0008333)
        """
        if samples is None or samples <= 0:
            return self
        batch = self.batch_size
        if self.batch_fraction is not None:
            batch = max(1, math.ceil(self.batch_fraction * samples))
        steps, lr = self.steps, self.lr
        if self.epochs is not None:
            steps = self.epochs * math.ceil(samples / min(batch, samples))
        if self.lr_batch_scaling:
            lr = lr * min(1.0, batch / samples)
        return replace(self, batch_size=batch, steps=steps, lr=lr, epochs=None, batch_fraction=None,
                       lr_batch_scaling=False)

    def quickened(self, lr_factor: float, source: str, batch: str = "quarter") -> Recipe:
        """This recipe at `lr_factor` times its learning rate, constant, for 2,000 steps, on random quarter
        batches, full batches or its own: the form of the tuned `fast` recipes (benchmarks/tune_fast.py)."""
        lr = float(f"{self.lr * lr_factor:.12g}")  # 3 x 1e-4 is 3e-4, not 0.00030000000000000003
        fractions = {"quarter": 0.25, "full": 1.0, "own": None}
        batches = {} if batch == "own" else {"batch_size": None, "batch_fraction": fractions[batch],
                                             "lr_batch_scaling": False}
        return replace(self, lr=lr, lr_decay=1.0, epochs=None, steps=2000, warmup=0, source=source, **batches)

    def summary(self) -> dict[str, str]:
        """The protocol in words (steps, batch, lr, schedule, optimiser), as `inrkit models` shows it."""
        if self.epochs is not None:
            steps = f"{self.epochs:,} epochs"
        else:
            steps = f"{self.steps:,}" if self.steps else "2,000 (inrkit)"
        if self.batch_fraction == 1:
            batch = "full"
        elif self.batch_fraction is not None:
            batch = f"{self.batch_fraction:.2%} of N"
        else:
            batch = f"{self.batch_size:,}" if self.batch_size else "kind default"
        lr = f"{self.lr:g}" + (f" × min(1, {self.batch_size:,}/N)" if self.lr_batch_scaling else "")
        schedule = "constant" if self.lr_decay == 1 else f"exp → ×{self.lr_decay:g}"
        if self.warmup:
            schedule += f", warm-up {self.warmup}"
        adam = "" if (self.betas, self.eps) == ((0.9, 0.999), 1e-8) else f"β {self.betas}, ε {self.eps:g}"
        targets = "min-max targets" if self.targets == "minmax" else ""
        return {"steps": steps, "batch": batch, "lr": lr, "schedule": schedule, "adam": adam,
                "targets": targets, "source": self.source}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type[nn.Module]
    summary: str
    paper: str
    recipes: dict[str, Recipe]
    width_arg: str = "hidden_features"
    fast: dict[str, Recipe] = field(default_factory=dict)

    def recipe(self, kind: str, name: str = "authors", samples: int | None = None) -> Recipe:
        """The named recipe for `kind`: "authors" (their protocol) or "fast" (inrkit's tuned one).

        Kinds without a recipe of their own use the image recipe; a kind with no fast recipe uses the
        authors' (the tables say which were tuned). Given the signal's size (`samples`), the recipe's
        size rules are resolved (`Recipe.resolve`).
        """
        if name not in RECIPE_NAMES:
            raise ModelError(f"unknown recipe {name!r}; choose from {', '.join(RECIPE_NAMES)}")
        authors = authors_recipe(self.recipes, kind)
        chosen = (self.fast.get(kind) or authors) if name == "fast" else authors
        return chosen.resolve(samples)


def authors_recipe(recipes: dict[str, Recipe], kind: str) -> Recipe:
    """The authors' recipe for `kind`; kinds without one of their own use the image recipe."""
    return recipes.get(kind) or recipes.get("image") or Recipe()


MODELS: dict[str, ModelEntry] = {}
LOSS_NAMES = ("mse", "bce")  # bce: the output is a logit
RECIPE_NAMES = ("authors", "fast")


def register_model(name: str, *, summary: str, paper: str, recipes: dict[str, Recipe],
                   width_arg: str = "hidden_features",
                   fast: dict[str, Recipe | float | str | tuple[float, str]] | None = None,
                   ) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a backbone to the registry under a lowercase `name`.

    `recipes` are the authors' protocols per signal kind; `fast` the tuned ones (`--recipe fast`) per kind:
    a Recipe; as benchmarks/tune_fast.py found them, a learning-rate factor on the authors' recipe with
    quarter batches (the kind's own batch for shapes), a (factor, "full" | "quarter" | "own") pair
    (`Recipe.quickened`), or "authors" where the authors' recipe itself was the quickest.
    """
    tuned = {kind: _tuned(authors_recipe(recipes, kind), how, kind)
             for kind, how in (fast or {}).items()}

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if not (isinstance(cls, type) and issubclass(cls, Backbone)):
            raise TypeError(f"model {name!r}: {cls!r} must subclass inrkit.models.base.Backbone")
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = ModelEntry(name, cls, summary, paper, recipes, width_arg, tuned)
        return cls

    return wrap


def _tuned(authors: Recipe, how: Recipe | float | str | tuple[float, str], kind: str) -> Recipe:
    if isinstance(how, Recipe):
        return how
    source = f"python benchmarks/tune_fast.py --kind {kind} (least time to target on tuning data)"
    if how == "authors":
        return replace(authors, source=f"{source}: the authors' recipe itself")
    factor, batch = how if isinstance(how, tuple) else (how, default_batch(kind))
    return authors.quickened(float(factor), source, batch)


FAST_BATCH = {"audio": "full", "occupancy": "own", "sdf": "own"}
"""Batch policy of the fast recipes where it is not quarter batches: audio clips are short and quarter batches
never reached 50 dB on them (benchmarks/results/tune_fast-audio); shapes keep their fixed batch of points,
since a quarter of a 250k-point set would be a slow step."""


def default_batch(kind: str) -> str:
    """The batch policy a fast recipe for `kind` is tuned with (and a bare factor in `fast=` means)."""
    return FAST_BATCH.get(kind, "quarter")


def get_entry(name: str) -> ModelEntry:
    """The registry entry for `name`; unknown names fail with the valid names and the nearest one."""
    if name not in MODELS:
        near = difflib.get_close_matches(name.lower(), MODELS, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ModelError(f"unknown model {name!r}{hint}; valid models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted, optionally filtered by a glob pattern ("s*").

    Example:
        >>> "siren" in list_models()
        True
    """
    names = sorted(MODELS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def _build(entry: ModelEntry, kwargs: dict[str, Any], device: torch.device | str | None = None) -> nn.Module:
    try:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            return entry.cls(**kwargs)
    except TypeError as exc:  # torch's messages may carry a C++ stack: keep the first line
        raise ModelError(f"{entry.name}: {(str(exc).strip().splitlines() or ['bad arguments'])[0]}") from exc


def solve_width(entry: ModelEntry, kwargs: dict[str, Any], params: int, tolerance: float = 0.05) -> int:
    """The width (`entry.width_arg`) whose real-number parameter count is nearest to `params`.

    Counts on the meta device, so even large candidates cost no memory.
    """

    def count(width: int) -> int:
        return _meta_count(entry, {**kwargs, entry.width_arg: width})

    lo, hi = 1, 2
    while count(hi) < params:
        lo, hi = hi, hi * 2
        if hi > 1 << 22:
            raise ModelError(f"{entry.name}: no width reaches {params:,} parameters")
    while hi - lo > 1:  # smallest width whose count reaches the budget
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < params else (lo, mid)
    width = min((lo, hi), key=lambda w: abs(count(w) - params))
    got = count(width)
    if abs(got - params) > tolerance * params:
        raise ModelError(f"{entry.name}: cannot match {params:,} parameters within {tolerance:.0%} "
                         f"(nearest is {got:,} at {entry.width_arg}={width})")
    return width


def create_model(name: str, in_features: int | None = None, out_features: int | None = None, *,
                 kind: str | None = None, params: int | None = None, signal: Any = None, loss: str | None = None,
                 recipe: str = "authors", targets: str | None = None, **overrides: Any) -> Backbone:
    """Build a registered backbone with its recipe for `kind`.

    Args:
        name: registry name, e.g. "siren".
        in_features: coordinate dimension (2 for images); taken from `signal` when given.
        out_features: channels (3 for RGB); taken from `signal` when given.
        kind: signal kind whose recipe supplies the defaults ("image" when unknown).
        params: a parameter budget; the width is solved so the real-number count is within 5%.
        signal: a Signal or SignalInfo to take in/out features, kind and size-dependent defaults from;
            its layout is recorded on the model (`signal_info`) so it can be rendered and saved.
        loss: "mse" or "bce" (logits); the recipe's, else the signal kind's, when None.
        recipe: "authors" (default) or "fast"; supplies the defaults and is recorded on the model, so
            `fit` trains it with the same recipe.
        targets: "range" or "minmax" (see `Recipe.targets`); the recipe's when None.
        **overrides: constructor arguments; None values are dropped so the recipe's stand.

    Example:
        >>> model = create_model("siren", 2, 3, params=50_000)
        >>> abs(sum(p.numel() for p in model.parameters()) - 50_000) < 2_500
        True
    """
    entry = get_entry(name)
    info = getattr(signal, "info", signal)
    if info is not None:
        in_features = in_features or info.in_features
        out_features = out_features or info.channels
        kind = kind or info.kind
    kind = kind or "image"
    if in_features is None or out_features is None:
        raise ModelError("create_model needs in_features and out_features, or a signal")
    recipe_name, recipe = recipe, entry.recipe(kind, recipe)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    _check_sizes(name, {**overrides, "in_features": in_features, "out_features": out_features})
    kwargs = {**recipe.model_kwargs(info), **overrides, "in_features": int(in_features),
              "out_features": int(out_features)}
    if params is not None:
        if isinstance(params, bool) or not isinstance(params, numbers.Real) or not 0 < params < math.inf:
            raise ModelError(f"parameter budget must be a positive number, got {params!r}")
        check_params(int(params), "the parameter budget", error=ModelError)
        kwargs[entry.width_arg] = solve_width(entry, kwargs, int(params))
    _check_count(entry, kwargs)
    loss = loss or recipe.loss or (KINDS[kind].loss if kind in KINDS else "mse")
    if loss not in LOSS_NAMES:
        raise ModelError(f"unknown loss {loss!r}; choose from {', '.join(LOSS_NAMES)}")
    targets = check_targets(targets or recipe.targets)
    return rebuild(ModelInfo(name, kind, kwargs, loss, recipe_name, targets),
                   info if isinstance(info, SignalInfo) else None)


def check_targets(targets: Any) -> str:
    """`targets` if it names a target mapping, else the one-line ModelError."""
    if targets not in TARGET_MAPS:
        raise ModelError(f"unknown targets {targets!r}; choose from {', '.join(TARGET_MAPS)}")
    return targets


# The shared constructor vocabulary and the least each may be.
SIZE_ARGS = {"in_features": 1, "out_features": 1, "hidden_features": 1, "hidden_layers": 0}


def _check_sizes(name: str, kwargs: dict[str, Any]) -> None:
    """Refuse a width, depth or feature count that is not a whole number in range, before building."""
    for key, low in SIZE_ARGS.items():
        value = kwargs.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ModelError(f"{name}: {key} must be a whole number of {low} or more, got {value!r}")
    if kwargs.get("hidden_layers", 0) > MAX_LAYERS:
        raise ModelError(f"{name}: hidden_layers must be at most {MAX_LAYERS}, got {kwargs['hidden_layers']}")
    if kwargs.get("hidden_features", 0) > max_params():  # one row of the first layer alone is over the limit
        check_params(kwargs["hidden_features"], f"{name} with hidden_features={kwargs['hidden_features']}",
                     error=ModelError)


def _check_count(entry: ModelEntry, kwargs: dict[str, Any]) -> None:
    """Refuse a model over the parameter limit, counted on the meta device (no memory) before it is built."""
    try:  # every registered backbone builds on meta (solve_width relies on it too)
        count = _meta_count(entry, kwargs)
    except (RuntimeError, ValueError, OverflowError) as exc:  # e.g. a width whose tensor size overflows
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ModelError(f"{entry.name}: cannot be built with these arguments ({reason})") from exc
    check_params(count, f"{entry.name} with these arguments", error=ModelError)


_COUNTS: dict[tuple, int] = {}  # (class, arguments) -> count: fit_many builds one model per member


def _meta_count(entry: ModelEntry, kwargs: dict[str, Any]) -> int:
    try:
        key = (entry.cls, tuple(sorted(kwargs.items())))
        hash(key)
    except TypeError:  # an argument that is not hashable (a list, a tensor): count without remembering
        return count_params(_build(entry, kwargs, device="meta"))
    if key not in _COUNTS:
        if len(_COUNTS) > 1024:
            _COUNTS.clear()
        _COUNTS[key] = count_params(_build(entry, kwargs, device="meta"))
    return _COUNTS[key]


def rebuild(info: ModelInfo, signal_info: SignalInfo | None = None) -> Backbone:
    """A backbone from its record (as stored in a weights file); the weights are not loaded."""
    model = _build(get_entry(info.name), dict(info.kwargs))
    model.model_info, model.signal_info = info, signal_info
    return model
