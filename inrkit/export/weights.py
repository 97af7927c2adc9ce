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
from ..publish import replace_file
from ..signals import SignalInfo
from . import schema

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
    """The inrkit metadata of a weights file, without loading the tensors; checked against the schema.

    Example:
        >>> read_metadata("no-such-file.safetensors")
        Traceback (most recent call last):
        ...
        inrkit.errors.ExportError: no-such-file.safetensors: no such weights file
    """
    path = _resolve(path)
    meta, _ = _read_header(path)
    schema.check_record(meta, str(path))
    return meta


def _read_header(path: Path) -> tuple[dict[str, Any], dict[str, tuple[str, list[int]]]]:
    """The checked inrkit metadata and the tensor table (name -> dtype, shape), before any tensor is read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("inrkit")
            table = {name: (str(f.get_slice(name).get_dtype()), list(f.get_slice(name).get_shape()))
                     for name in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ExportError(f"{path}: not a readable weights file ({_first_line(exc)})") from exc
    if raw is None:
        raise ExportError(f"{path}: a safetensors file without inrkit metadata")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ExportError(f"{path}: metadata: not JSON ({_first_line(exc)})") from exc
    meta = schema.mapping(meta, str(path), "metadata")
    if meta.get("format") != FORMAT:
        raise ExportError(f"{path}: unknown weights format {schema.short(meta.get('format'))}")
    schema.mapping(meta.get("extra", {}), str(path), "extra")  # metrics and provenance that runs print
    return meta, table


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
    source = str(path)
    meta, table = _read_header(path)
    model_info, signal_info = schema.check_record(meta, source)
    model = schema.build(model_info, signal_info, source)
    complex_names = _complex_names(meta.get("complex", []), model, source)
    _check_table(table, model, complex_names, source)
    try:
        tensors = load_file(source)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ExportError(f"{path}: not a readable weights file ({_first_line(exc)})") from exc
    for name in complex_names:
        tensors[name] = torch.view_as_complex(tensors[name])
    for name, t in tensors.items():
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(torch.view_as_real(t) if
                                                                               t.is_complex() else t).all()):
            raise ExportError(f"{path}: tensor {name}: holds NaN or infinite values (did the fit diverge?)")
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ExportError(f"{path}: weights do not match model {model_info.name!r}: {_first_line(exc)}") from exc
    return model.to(device).eval()


def _complex_names(value: Any, model: nn.Module, source: str) -> list[str]:
    """The `complex` list: names of complex state-dict entries, exactly those the model has."""
    expected = sorted(n for n, t in model.state_dict().items() if t.is_complex())
    if not isinstance(value, list) or sorted(v for v in value if isinstance(v, str)) != expected or \
            len(value) != len(expected):
        raise schema.fail(source, "complex", f"must list the model's complex tensors {expected}, got "
                                             f"{schema.short(value)}")
    return expected


def _check_table(table: dict[str, tuple[str, list[int]]], model: nn.Module, complex_names: list[str],
                 source: str) -> None:
    """Every stored tensor is one the model has, with its shape and dtype (complex ones as (..., 2) reals)."""
    state = model.state_dict()
    if sorted(table) != sorted(state):
        missing, extra = sorted(set(state) - set(table)), sorted(set(table) - set(state))
        raise schema.fail(source, "tensors", f"do not match model {model.model_info.name!r} "
                                             f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for name, (dtype, shape) in table.items():
        like = state[name]
        real = torch.view_as_real(like) if name in complex_names else like
        want_dtype = str(real.dtype).removeprefix("torch.")
        names = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
                 "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
        if list(real.shape) != shape or names.get(want_dtype, want_dtype) != dtype.upper():
            raise schema.fail(source, f"tensor {name}", f"is {dtype} {shape}, model {model.model_info.name!r} "
                                                        f"needs {names.get(want_dtype, want_dtype)} {list(real.shape)}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:160] if lines else type(exc).__name__


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.exists():
        raise ExportError(f"{path}: no such weights file")
    return path
