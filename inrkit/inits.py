"""Where a fit starts: a random init per member (default), one shared init, or a learned one from a file.

A learned init (`inrkit meta-learn`) is an ordinary weights file, so `--init FILE` accepts any
weights file written by `inrkit.save` for the same backbone and size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ConfigError, ExportError
from .models.base import ModelInfo

INIT_MODES = ("random", "shared")


def resolve_init(init: Any) -> Any:
    """None/"random"/"shared" stay as they are; a path, module or state dict becomes (state, ModelInfo | None).

    Example:
        >>> resolve_init("shared")
        'shared'
    """
    if init is None or (isinstance(init, str) and init in INIT_MODES):
        return init or "random"
    if isinstance(init, tuple):
        return init
    if isinstance(init, nn.Module):
        return {k: v.detach().clone() for k, v in init.state_dict().items()}, getattr(init, "model_info", None)
    if isinstance(init, dict):
        return dict(init), None
    from .export import load  # deferred: export imports the model registry, which is heavy at start-up

    path = Path(init)
    if not path.exists():
        raise ConfigError(f"init {init!r}: no such file (use random, shared or a weights file)")
    try:
        model = load(path)
    except ExportError as exc:
        raise ConfigError(f"init {path}: {exc}") from exc
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, model.model_info


def _same_architecture(a: ModelInfo, b: ModelInfo) -> bool:
    def norm(info: ModelInfo) -> str:
        return json.dumps([info.name, info.kwargs], sort_keys=True, default=str)

    return norm(a) == norm(b)


def apply_init(net: nn.Module, init: Any) -> None:
    """Load a resolved init into `net` (nothing for "random"); refuses one for another backbone or size."""
    if init is None or init == "random":
        return
    if init == "shared":
        raise ConfigError("a shared init is made by fit_many itself; pass init='shared' there")
    state, info = init
    mine = getattr(net, "model_info", None)
    if info is not None and mine is not None and not _same_architecture(info, mine):
        raise ConfigError(f"the init is for {info.name} {_describe(info)}, this fit builds {mine.name} "
                          f"{_describe(mine)}")
    own = net.state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if bad or not state:
        raise ConfigError(f"the init does not fit this {getattr(mine, 'name', 'model')}: "
                          f"{', '.join(bad[:3]) or 'no tensors'} differ")
    with torch.no_grad():
        net.load_state_dict(state, strict=False)


def _describe(info: ModelInfo) -> str:
    keys = ("hidden_features", "hidden_layers", "in_features", "out_features")
    return "(" + ", ".join(f"{k}={info.kwargs[k]}" for k in keys if k in info.kwargs) + ")"
