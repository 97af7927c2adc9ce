"""Backbones: one file each, registered by name. `create_model("siren", signal=sig, params=200_000)`."""

# Importing a backbone's module registers it.
from . import ffn, finer, fkan, gauss, neurbf, ngp, relu_pe, siren, sl2a, spder, wire  # noqa: F401
from .registry import MODELS, ModelEntry, Recipe, create_model, get_entry, list_models, rebuild, register_model

__all__ = ["MODELS", "ModelEntry", "Recipe", "create_model", "get_entry", "list_models", "rebuild", "register_model"]
