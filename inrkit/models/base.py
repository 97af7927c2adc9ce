"""The backbone contract: what every registered backbone is and may offer, and the record it carries.

A backbone is a `Backbone` (an `nn.Module`) that maps coordinates (N, in_features) in [-1, 1] to
outputs (N, out_features) in its `target_range`. `fit` and `fit_many` know no backbone by name: they
call the optional hooks below, whose defaults do nothing.

    class MyNet(Backbone):
        target_range = (-1.0, 1.0)          # the range the authors fit targets in
        def __init__(self, in_features, out_features, hidden_features=256, hidden_layers=3): ...
        def forward(self, coords): ...
        # optional:
        def init_from_signal(self, signal): ...        # data-dependent init (NeuRBF's centres)
        def extra_loss(self, coords, output): ...      # a term added to the loss (None: nothing)

`create_model` attaches a `ModelInfo` (name, kind, constructor arguments, loss: everything needed to
rebuild the network and read its output) and, when built for a signal, that signal's `SignalInfo`.
Both are frozen records; nothing changes them after creation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class ModelInfo:
    """Everything needed to rebuild a backbone (its weights aside) and to read its output.

    Attributes:
        name: registry name ("siren").
        kind: the signal kind whose recipe gave the defaults ("image").
        kwargs: the constructor arguments, in_features and out_features included.
        loss: "mse" (output in `target_range`) or "bce" (output is a logit).
        recipe: the recipe that gave the defaults and that `fit` follows ("authors" or "fast").
        targets: what maps onto `target_range`: "range" (the signal's data range) or "minmax" (each
            signal's own minimum and maximum, kept in its SignalInfo as `value_range`).
    """

    name: str
    kind: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    loss: str = "mse"
    recipe: str = "authors"
    targets: str = "range"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", dict(self.kwargs))  # a private copy: callers cannot alias it

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "kwargs": dict(self.kwargs), "loss": self.loss,
                "recipe": self.recipe, "targets": self.targets}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelInfo:
        return cls(str(d["name"]), str(d.get("kind") or "image"), dict(d.get("kwargs") or {}),
                   str(d.get("loss") or "mse"), str(d.get("recipe") or "authors"), str(d.get("targets") or "range"))


class Backbone(nn.Module):
    """Base class of every registered backbone.

    Attributes:
        target_range: (low, high) the model's output is fitted in (mse loss); a class attribute that
            each backbone states, because the authors differ ([-1, 1] for SIREN, [0, 1] for WIRE).
        model_info: set by `create_model` / `load`; None on a bare instance.
        signal_info: the layout of the signal the model was built for (None when built without one).
    """

    target_range: ClassVar[tuple[float, float]]
    model_info: ModelInfo | None = None
    signal_info: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A property (FFN: the range follows its output activation) counts as stating it.
        if "target_range" not in dir(cls):
            raise TypeError(f"backbone {cls.__name__} must state its target_range")

    def init_from_signal(self, signal: Any) -> None:
        """Data-dependent initialisation, called by `fit` once before training (default: nothing)."""

    def extra_loss(self, coords: torch.Tensor, output: torch.Tensor) -> torch.Tensor | None:
        """A term added to the training loss for this batch (default: None, nothing added)."""
        return None
