"""The backbone registry: names -> classes, with each backbone's recipes per signal kind.

Like timm's registry, a model file registers its class with a decorator; `create_model` applies the
recipe for the signal kind, drops unset (None) overrides and can solve the width for a parameter
budget.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ModelError
from ..signals import KINDS, SignalInfo
from ..utils import count_params
from .base import Backbone, ModelInfo


@dataclass(frozen=True)
class Recipe:
    """How to fit one backbone to one signal kind: the authors' protocol, or a tuned one.

    Attributes:
        model: constructor defaults, or a function of the signal's SignalInfo returning them
            (for sizes that depend on the signal, such as a Nyquist-limited encoding).
        lr: Adam learning rate.
        lr_decay: factor the learning rate has fallen to by the last step (exponential; 1 = constant).
        loss: "mse" or "bce" (logits); None takes the signal kind's default.
        batch_size: points per step; None means the whole signal when it is small enough.
        warmup: steps of linear learning-rate warm-up from lr/100 before the decay (0 = none).
        steps: optimisation steps of the protocol (None: FitConfig's default).
        source: where the setting comes from (the authors' script, or the tuning command).
    """

    model: dict[str, Any] | Callable[[Any], dict[str, Any]] = field(default_factory=dict)
    lr: float = 1e-4
    lr_decay: float = 1.0
    loss: str | None = None
    batch_size: int | None = None
    warmup: int = 0
    steps: int | None = None
    source: str = ""

    def model_kwargs(self, info: Any = None) -> dict[str, Any]:
        return dict(self.model(info) if callable(self.model) else self.model)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type[nn.Module]
    summary: str
    paper: str
    recipes: dict[str, Recipe]
    width_arg: str = "hidden_features"
    fast: dict[str, Recipe] = field(default_factory=dict)

    def recipe(self, kind: str, name: str = "authors") -> Recipe:
        """The named recipe for `kind`: "authors" (their protocol) or "fast" (inrkit's tuned one).

        Kinds without a recipe of their own use the image recipe; a kind with no fast recipe uses the
        authors' (the tables say which were tuned).
        """
        if name not in RECIPE_NAMES:
            raise ModelError(f"unknown recipe {name!r}; choose from {', '.join(RECIPE_NAMES)}")
        authors = self.recipes.get(kind) or self.recipes.get("image") or Recipe()
        return (self.fast.get(kind) or authors) if name == "fast" else authors


MODELS: dict[str, ModelEntry] = {}
LOSS_NAMES = ("mse", "bce")  # bce: the output is a logit
RECIPE_NAMES = ("authors", "fast")


def register_model(name: str, *, summary: str, paper: str, recipes: dict[str, Recipe],
                   width_arg: str = "hidden_features",
                   fast: dict[str, Recipe] | None = None) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a backbone to the registry under a lowercase `name`.

    `recipes` are the authors' protocols per signal kind; `fast` the tuned ones (`--recipe fast`).
    """

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if not (isinstance(cls, type) and issubclass(cls, Backbone)):
            raise TypeError(f"model {name!r}: {cls!r} must subclass inrkit.models.base.Backbone")
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = ModelEntry(name, cls, summary, paper, recipes, width_arg, fast or {})
        return cls

    return wrap


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
    except TypeError as exc:
        raise ModelError(f"{entry.name}: {exc}") from exc


def solve_width(entry: ModelEntry, kwargs: dict[str, Any], params: int, tolerance: float = 0.05) -> int:
    """The width (`entry.width_arg`) whose real-number parameter count is nearest to `params`.

    Counts on the meta device, so even large candidates cost no memory.
    """

    def count(width: int) -> int:
        return count_params(_build(entry, {**kwargs, entry.width_arg: width}, device="meta"))

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
                 recipe: str = "authors", **overrides: Any) -> Backbone:
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
    kwargs = {**recipe.model_kwargs(info), **{k: v for k, v in overrides.items() if v is not None},
              "in_features": int(in_features), "out_features": int(out_features)}
    if params is not None:
        if params <= 0:
            raise ModelError(f"parameter budget must be positive, got {params}")
        kwargs[entry.width_arg] = solve_width(entry, kwargs, int(params))
    loss = loss or recipe.loss or (KINDS[kind].loss if kind in KINDS else "mse")
    if loss not in LOSS_NAMES:
        raise ModelError(f"unknown loss {loss!r}; choose from {', '.join(LOSS_NAMES)}")
    return rebuild(ModelInfo(name, kind, kwargs, loss, recipe_name), info if isinstance(info, SignalInfo) else None)


def rebuild(info: ModelInfo, signal_info: SignalInfo | None = None) -> Backbone:
    """A backbone from its record (as stored in a weights file); the weights are not loaded."""
    model = _build(get_entry(info.name), dict(info.kwargs))
    model.model_info, model.signal_info = info, signal_info
    return model
