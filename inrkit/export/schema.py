"""One schema for what a weights file's metadata and an .inrz header declare, checked before anything is built.

Both formats carry the same record: the model (registered name, constructor arguments, kind, loss,
recipe), the signal's layout (kind, shape, channels, data range, loader facts) and the inrkit
version. A file is input like any other, so every field is checked for its type and range, every
size is capped, and the model's size (real numbers of its state dict, buffers included) is counted
on torch's meta device (no memory) before the real model is allocated. Any problem ends in one
`ExportError` naming the file and the field ("photo.inrz: model.kwargs.hidden_features: must be from
0 to 16,777,216, got -3").
"""

from __future__ import annotations

import inspect
import math
import types
import typing
import warnings
from typing import Any

from torch import nn

from ..errors import ExportError
from ..limits import MAX_LAYERS, check_params, check_shape
from ..models import MODELS, rebuild
from ..models.base import ModelInfo
from ..models.registry import LOSS_NAMES, RECIPE_NAMES, TARGET_MAPS, _build
from ..signals import KINDS, SignalInfo

MAX_INT_ARG = 2**24  # widths, frequencies, table sizes; limits.max_params() decides what is really too big
MAX_TEXT = 4096  # a string field (names, paths) longer than this is not inrkit's
MAX_FEATURES = 4  # coordinate dimensions: 1 (audio) to 3 (video, shapes); 4 leaves room
MAX_CHANNELS = 64


def fail(source: str, field: str, problem: str) -> ExportError:
    """The one-line error for a bad field: `source: field: problem`."""
    return ExportError(f"{source}: {field}: {problem}")


def mapping(value: Any, source: str, field: str) -> dict[str, Any]:
    """`value` if it is a JSON object, else the error naming `field`."""
    if not isinstance(value, dict):
        raise fail(source, field, f"must be an object, got {type(value).__name__}")
    return value


def text(value: Any, source: str, field: str, choices: typing.Iterable[str] | None = None) -> str:
    """A string field (of `choices`, when given)."""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise fail(source, field, f"must be a string, got {short(value)}")
    if choices is not None and value not in choices:
        raise fail(source, field, f"{value!r} is not one of {', '.join(sorted(choices))}")
    return value


def integer(value: Any, source: str, field: str, low: int = 0, high: int = MAX_INT_ARG) -> int:
    """An integer field in [low, high] (booleans and floats are refused: a file writes ints as ints)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(source, field, f"must be an integer, got {short(value)}")
    if not low <= value <= high:
        raise fail(source, field, f"must be from {low:,} to {high:,}, got {value:,}")
    return value


def number(value: Any, source: str, field: str) -> float:
    """A finite real number (an int is accepted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise fail(source, field, f"must be a finite number, got {short(value)}")
    return float(value)


def short(value: Any) -> str:
    """`repr(value)`, cut to 40 characters for a one-line message."""
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _allowed(annotation: Any) -> tuple[type, ...]:
    """The JSON types a constructor annotation admits (int | None -> (int, NoneType))."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return (int, float, str, bool, type(None))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(annotation) for t in _allowed(arg))
    return (annotation,) if isinstance(annotation, type) else (int, float, str, bool, type(None))


def _kwarg(name: str, value: Any, allowed: tuple[type, ...], source: str, field: str) -> Any:
    """One constructor argument checked against its annotation and the size caps."""
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool):
        if bool not in allowed:
            raise fail(source, field, f"must be {_names(allowed)}, got {value!r}")
        return value
    if isinstance(value, int) and int in allowed:
        deep = name.endswith(("layers", "levels"))
        return integer(value, source, field, 0, MAX_LAYERS if deep else MAX_INT_ARG)  # a layer is a module
    if isinstance(value, (int, float)) and float in allowed:
        return number(value, source, field)
    if isinstance(value, str) and str in allowed:
        return text(value, source, field)
    raise fail(source, field, f"must be {_names(allowed)}, got {short(value)}")


def _names(allowed: tuple[type, ...]) -> str:
    return " or ".join(dict.fromkeys("null" if t is type(None) else t.__name__ for t in allowed))


def _or(value: Any, default: str) -> Any:
    return default if value is None else value


def check_model(value: Any, source: str, field: str = "model") -> ModelInfo:
    """The model record: a registered name, its kind, loss, recipe and typed, capped constructor arguments.

    Example:
        >>> check_model({"name": "siren", "kind": "image", "kwargs": {"in_features": 2, "out_features": 3}}, "f").name
        'siren'
        >>> check_model({"name": "siren", "kind": "image", "kwargs": {"hidden_features": -3}}, "f")
        Traceback (most recent call last):
        ...
        inrkit.errors.ExportError: f: model.kwargs.hidden_features: must be from 0 to 16,777,216, got -3
    """
    record = mapping(value, source, field)
    name = text(record.get("name"), source, f"{field}.name", MODELS)
    # Older files may lack (or hold null for) kind, loss, recipe and targets: the defaults ModelInfo.from_dict gives.
    kind = text(_or(record.get("kind"), "image"), source, f"{field}.kind", KINDS)
    loss = text(_or(record.get("loss"), "mse"), source, f"{field}.loss", LOSS_NAMES)
    recipe = text(_or(record.get("recipe"), "authors"), source, f"{field}.recipe", RECIPE_NAMES)
    targets = text(_or(record.get("targets"), "range"), source, f"{field}.targets", TARGET_MAPS)
    kwargs = _check_kwargs(name, mapping(record.get("kwargs", {}), source, f"{field}.kwargs"), source,
                           f"{field}.kwargs")
    return ModelInfo(name, kind, kwargs, loss, recipe, targets)


def _check_kwargs(name: str, kwargs: dict[str, Any], source: str, field: str) -> dict[str, Any]:
    """Constructor arguments: each one the backbone takes, of the type it annotates, within the caps."""
    init = MODELS[name].cls.__init__
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # an annotation that does not resolve: fall back to "any JSON scalar"
        hints = {}
    params = inspect.signature(init).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    checked = {}
    for key, val in kwargs.items():
        if (key not in params and not open_ended) or key == "self":
            raise fail(source, field, f"{name} takes no argument {key!r}")
        allowed = _allowed(hints.get(key, params[key].annotation if key in params else Any))
        checked[key] = _kwarg(key, val, allowed, source, f"{field}.{key}")
    for key, high in (("in_features", MAX_FEATURES), ("out_features", MAX_CHANNELS)):
        if key not in checked:
            raise fail(source, f"{field}.{key}", "missing")
        integer(checked[key], source, f"{field}.{key}", 1, high)
    return checked


def check_signal(value: Any, source: str, model: ModelInfo, field: str = "signal") -> SignalInfo | None:
    """The signal layout: a registered kind, a capped shape, channels and coordinates that match the model.

    A point signal (a shape's SDF) may have no grid (shape []); it then states `meta.in_features`.

    Example:
        >>> m = check_model({"name": "siren", "kind": "image", "kwargs": {"in_features": 2, "out_features": 3}}, "f")
        >>> check_signal({"kind": "image", "shape": [0, 16], "channels": 3, "data_range": [0, 1]}, "f", m)
        Traceback (most recent call last):
        ...
        inrkit.errors.ExportError: f: signal.shape has an invalid shape [0, 16]: every side must be a positive integer
    """
    if value is None:
        return None
    record = mapping(value, source, field)
    kind = text(record.get("kind"), source, f"{field}.kind", KINDS)
    meta = mapping(record.get("meta", {}), source, f"{field}.meta")
    shape = record.get("shape")
    if not isinstance(shape, list):
        raise fail(source, f"{field}.shape", f"must be a list of sides, got {short(shape)}")
    if shape or "in_features" not in meta:
        check_shape(shape, f"{source}: {field}.shape", error=ExportError)
    grid = meta.get("grid_shape")
    if grid is not None and (not isinstance(grid, list) or not grid):
        raise fail(source, f"{field}.meta.grid_shape", f"must be a list of sides, got {short(grid)}")
    if grid:
        check_shape(grid, f"{source}: {field}.meta.grid_shape", error=ExportError)
    in_features = integer(meta.get("in_features", len(shape)), source, f"{field}.meta.in_features", 1, MAX_FEATURES)
    channels = integer(record.get("channels"), source, f"{field}.channels", 1, MAX_CHANNELS)
    data_range = record.get("data_range")
    if not isinstance(data_range, list) or len(data_range) != 2:
        raise fail(source, f"{field}.data_range", f"must be [low, high], got {short(data_range)}")
    low, high = (number(v, source, f"{field}.data_range") for v in data_range)
    if not low < high:
        raise fail(source, f"{field}.data_range", f"low must be below high, got {data_range}")
    _check_meta(meta, source, f"{field}.meta")
    for what, ours, theirs in (("coordinate dimensions", in_features, model.kwargs["in_features"]),
                               ("channels", channels, model.kwargs["out_features"]),
                               ("shape's dimensions", len(shape) or in_features, in_features),
                               (f"coordinate dimensions of a {kind}", KINDS[kind].coord_dims, in_features)):
        if ours != theirs:
            raise fail(source, field, f"{what} {ours} disagree with the model's {theirs}")
    return SignalInfo(kind, tuple(shape), channels, (low, high), meta)


# Loader facts that renderers read: wrong types here would fail deep inside a writer.
_META_NUMBERS = ("sample_rate", "fps", "value_scale", "value_offset", "scale", "duration")
_META_INTS = ("bit_depth", "render_res", "eval_res")


def _check_meta(meta: dict[str, Any], source: str, field: str) -> None:
    for key in _META_NUMBERS:
        if key in meta and meta[key] is not None:
            value = number(meta[key], source, f"{field}.{key}")
            if key in ("sample_rate", "fps", "scale") and not 0 < value <= 1e9:
                raise fail(source, f"{field}.{key}", f"must be positive and at most 1e9, got {value:g}")
    for key in _META_INTS:
        if key in meta and meta[key] is not None:
            integer(meta[key], source, f"{field}.{key}", 1, 1 << 16)
    if "centre" in meta:
        centre = meta["centre"]
        if not isinstance(centre, list) or len(centre) != 3:
            raise fail(source, f"{field}.centre", f"must be [x, y, z], got {short(centre)}")
        for v in centre:
            number(v, source, f"{field}.centre")
    for key in ("source", "name", "subtype", "content_hash"):
        if key in meta and meta[key] is not None:
            text(meta[key], source, f"{field}.{key}")
    if meta.get("value_range") is not None:  # a min-max recipe reads the output back through it
        span = meta["value_range"]
        if not isinstance(span, list) or len(span) != 2:
            raise fail(source, f"{field}.value_range", f"must be [min, max], got {short(span)}")
        low, high = (number(v, source, f"{field}.value_range") for v in span)
        if low > high:
            raise fail(source, f"{field}.value_range", f"min must not exceed max, got {span}")


def build(model: ModelInfo, signal: SignalInfo | None, source: str) -> nn.Module:
    """The model the record describes, after counting its numbers on the meta device (no memory).

    Example:
        >>> m = check_model({"name": "siren", "kind": "image",
        ...                  "kwargs": {"in_features": 2, "out_features": 3, "hidden_features": 100000}}, "f")
        >>> build(m, None, "f")
        Traceback (most recent call last):
        ...
        inrkit.errors.ExportError: f: model.kwargs: siren with these arguments asks for 30,000,900,003 parameters, ...
    """
    entry = MODELS[model.name]
    try:
        with warnings.catch_warnings():  # a width of 0 is refused below, without torch's warning about it first
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            shell = _build(entry, dict(model.kwargs), device="meta")
        state = shell.state_dict()
        numbers = sum(t.numel() * (1 + t.is_complex()) for t in state.values())
    except Exception as exc:  # a constructor is not written for hostile arguments
        raise fail(source, "model.kwargs", f"{model.name} cannot be built from them ({_first_line(exc)})") from exc
    check_params(numbers, f"{source}: model.kwargs: {model.name} with these arguments", error=ExportError)
    empty = [name for name, t in state.items() if t.numel() == 0]
    if empty:  # a width or table size of 0: no fitted model has one, and an empty tensor has nothing to decode
        raise fail(source, "model.kwargs", f"{model.name} with these arguments has an empty tensor {empty[0]}")
    try:
        return rebuild(model, signal)
    except Exception as exc:
        raise fail(source, "model.kwargs", f"{model.name} cannot be built from them ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:120]}" if lines else type(exc).__name__


def check_record(record: Any, source: str) -> tuple[ModelInfo, SignalInfo | None]:
    """The model and signal of a weights metadata or .inrz header object (the fields both formats share)."""
    record = mapping(record, source, "header")
    text(record.get("inrkit", record.get("inrkit_version", "")), source, "inrkit version")
    model = check_model(record.get("model"), source)
    return model, check_signal(record.get("signal"), source, model)
