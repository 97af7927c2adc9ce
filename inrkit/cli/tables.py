"""Rich tables the CLI prints (kept apart so the commands stay one call each)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from ..models import MODELS, list_models
from ..models.registry import _build
from ..signals import KINDS
from ..utils import count_params

ABBREV = {"hidden_features": "width", "hidden_layers": "layers", "first_omega_0": "ω0 first",
          "hidden_omega_0": "ω0", "output_activation": "out", "num_frequencies": "freqs"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.4g}"
    if isinstance(value, list):
        return f"[{len(value)} values]"
    return str(value)


def metrics_table(metrics: dict[str, Any], title: str = "metrics") -> Table:
    table = Table(title=title, show_header=False)
    for key, value in metrics.items():
        if not isinstance(value, list):
            table.add_row(key, _fmt(value))
    return table


def fit_table(result: Any, run: Path) -> Table:
    table = metrics_table(result.metrics, title=f"{result.model.model_info.name} fit")
    table.add_row("params", f"{count_params(result.model):,}")
    table.add_row("steps", str(result.steps))
    table.add_row("seconds", f"{result.seconds:.1f}")
    if result.time_to_target is not None:
        table.add_row("time to target", f"{result.time_to_target:.1f} s")
    table.add_row("run folder", str(run))
    return table


def _params_at_default(name: str, kind: str) -> str:
    entry = MODELS[name]
    n_in, n_out = KINDS[kind].coord_dims, KINDS[kind].channels
    kwargs = {**entry.recipe(kind).model_kwargs(None), "in_features": n_in, "out_features": n_out}
    try:
        return f"{count_params(_build(entry, kwargs, device=torch.device('meta'))):,}"
    except Exception as exc:  # a backbone that cannot run on this kind says why
        return f"n/a ({exc})"


def models_table(pattern: str | None = None) -> Table:
    table = Table(title="inrkit backbones (recipes per signal kind)")
    for col in ("model", "kind", "defaults", "lr", "params"):
        table.add_column(col, justify="right" if col == "params" else "left")
    for name in list_models(pattern):
        entry = MODELS[name]
        for i, kind in enumerate(KINDS):
            recipe = entry.recipe(kind)
            defaults = " ".join(f"{ABBREV.get(k, k)}={_fmt(v)}" for k, v in recipe.model_kwargs(None).items()) or "-"
            lr = f"{recipe.lr:g}" + (f" → ×{recipe.lr_decay:g}" if recipe.lr_decay != 1 else "")
            label = f"[bold]{name}[/]\n[dim]{entry.paper}[/]" if i == 0 else ""
            table.add_row(label, kind, defaults, lr,
                          _params_at_default(name, kind), end_section=i == len(KINDS) - 1)
    return table
