"""Rich tables the CLI prints (kept apart so the commands stay one call each)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from ..models import MODELS
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


def _params_at_default(name: str, kind: str) -> int | str:
    entry = MODELS[name]
    n_in, n_out = KINDS[kind].coord_dims, KINDS[kind].channels
    kwargs = {**entry.recipe(kind).model_kwargs(None), "in_features": n_in, "out_features": n_out}
    try:
        return count_params(_build(entry, kwargs, device=torch.device("meta")))
    except Exception as exc:  # a backbone that cannot run on this kind says why
        return f"n/a ({exc})"


def model_rows(names: list[str]) -> list[dict[str, Any]]:
    """Each backbone's paper and, per registered kind, its recipe defaults, lr and parameter count."""
    rows = []
    for name in names:
        entry = MODELS[name]
        kinds = {}
        for kind in KINDS:
            recipe = entry.recipe(kind)
            fast = entry.fast.get(kind)  # tuned (benchmarks/tune_fast.py); else --recipe fast is the authors'
            kinds[kind] = {"defaults": recipe.model_kwargs(None), "lr": recipe.lr, "lr_decay": recipe.lr_decay,
                           "params": _params_at_default(name, kind), "protocol": recipe.summary(),
                           "fast": fast.summary() if fast else None}
        rows.append({"name": name, "paper": entry.paper, "kinds": kinds})
    return rows


def models_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="inrkit backbones (recipes per signal kind)")
    for col in ("model", "kind", "defaults", "steps", "batch", "lr", "--recipe fast", "params"):
        table.add_column(col, justify="right" if col == "params" else "left", no_wrap=col == "params")
    for row in rows:
        for i, (kind, facts) in enumerate(row["kinds"].items()):
            defaults = " ".join(f"{ABBREV.get(k, k)}={_fmt(v)}" for k, v in facts["defaults"].items()) or "-"
            protocol = facts["protocol"]  # N: the signal's samples
            lr = " ".join(filter(None, (protocol["lr"], protocol["schedule"], protocol["adam"], protocol["targets"])))
            label = f"[bold]{row['name']}[/]\n[dim]{row['paper']}[/]" if i == 0 else ""
            params = facts["params"]
            fast = facts["fast"]
            fast = "-" if fast is None else f"{fast['lr']} {fast['schedule']}, batch {fast['batch']}"
            table.add_row(label, kind, defaults, protocol["steps"], protocol["batch"], lr, fast,
                          f"{params:,}" if isinstance(params, int) else params, end_section=i == len(row["kinds"]) - 1)
    return table
