"""Backbones: one file each, registered by name. `create_model("siren", signal=sig, params=200_000)`."""

from . import ffn, siren  # noqa: F401  (each import registers its backbone)
from . import finer, gauss, relu_pe, spder, wire  # noqa: F401
from . import fkan, neurbf, ngp, sl2a  # noqa: F401
from .registry import MODELS, ModelEntry, Recipe, create_model, get_entry, list_models, rebuild, register_model

__all__ = ["MODELS", "ModelEntry", "Recipe", "create_model", "get_entry", "list_models", "rebuild", "register_model"]
