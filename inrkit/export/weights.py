"""Self-describing weights files: safetensors tensors + JSON metadata (model, arguments, signal layout).

Loading never unpickles: safetensors holds only tensors, the metadata is JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_bytes
from torch import nn

from .._version import __version__
from ..errors import ExportError
from ..models import rebuild
from ..models.base import ModelInfo
from ..publish import replace_file
from ..signals import SignalInfo

FORMAT = "inrkit.weights/1"



def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict on the CPU, contiguous, complex tensors stored as (..., 2) real views."""
    out = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        out[name] = (torch.view_as_real(t) if t.is_complex() else t).contiguous()
    return out


def save(model: nn.Module, path: str | Path, extra: dict[str, Any] | None = None,
         signal_info: SignalInfo | None = None) -> Path:
    """Write `model` to a .safetensors file that `load` can rebuild with nothing else.

    Example:
        >>> import tempfile
        >>> from inrkit import create_model, load_signal
        >>> model = create_model("siren", signal=load_signal("data/astronaut.png"), hidden_features=16)
        >>> path = save(model, Path(tempfile.mkdtemp()) / "model.safetensors")
        >>> meta = read_metadata(path)
        >>> meta["model"]["name"], meta["model"]["kwargs"]["hidden_features"], meta["signal"]["shape"]
        ('siren', 16, [128, 128])
    """
    path = Path(path)
    info = signal_info or getattr(model, "signal_info", None)
    meta = {"format": FORMAT, "inrkit_version": __version__, "model": model.model_info.to_dict(),
            "signal": info.to_dict() if info is not None else None, "extra": extra or {}}
    complex_names = [n for n, t in model.state_dict().items() if t.is_complex()]
    meta["complex"] = complex_names
    data = save_bytes(_tensors(model), metadata={"inrkit": json.dumps(meta)})
    try:  # through a pid-named temporary, not safetensors' randomly named one, so a killed save's is cleared
        replace_file(path, lambda tmp: tmp.write_bytes(data))
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The inrkit metadata of a weights file, without loading the tensors."""
    from safetensors import safe_open

    path = _resolve(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("inrkit")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ExportError(f"{path}: not a readable weights file ({exc})") from exc
    if raw is None:
        raise ExportError(f"{path}: a safetensors file without inrkit metadata")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT:
        raise ExportError(f"{path}: unknown weights format {meta.get('format')!r}")
    return meta


def load(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a fitted model from a weights file (or a run directory holding model.safetensors).

    The model carries `model_info` (name, arguments, loss) and `signal_info` (kind, shape, range),
    so `render(model)` and `evaluate(model, signal)` need nothing else.

    Example:
        >>> import tempfile
        >>> from inrkit import create_model, load_signal, render
        >>> run = Path(tempfile.mkdtemp())  # a run folder, as `inrkit fit --out` writes it
        >>> _ = save(create_model("siren", signal=load_signal("data/astronaut.png")), run / "model.safetensors")
        >>> model = load(run)
        >>> model.model_info.name, render(model).shape
        ('siren', (128, 128, 3))
    """
    path = _resolve(path)
    meta = read_metadata(path)
    model = rebuild(ModelInfo.from_dict(meta["model"]),
                    SignalInfo.from_dict(meta["signal"]) if meta.get("signal") else None)
    tensors = load_file(str(path))
    for name in meta.get("complex", []):
        tensors[name] = torch.view_as_complex(tensors[name])
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ExportError(f"{path}: weights do not match model {meta['model']['name']!r}: {exc}") from exc
    return model.to(device).eval()


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.exists():
        raise ExportError(f"{path}: no such weights file")
    return path
