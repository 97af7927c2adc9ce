"""A bench spec file read and its shape checked before anything runs: a readable text file, every field's
type, and unknown names with the nearest known one.

A wrong type would otherwise surface far from its cause (a `signals` string iterated letter by letter,
"i: no such file"); a misspelt kind table (`[imgae]`) or loader setting would be silently ignored or
fail every case one by one.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ..errors import ConfigError, InrkitError


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return _int(v) or (isinstance(v, float) and math.isfinite(v))  # TOML and JSON readers accept nan and inf


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _table(v: Any) -> bool:
    return isinstance(v, dict)


def _count(v: Any) -> bool:
    return _number(v) or _str(v)


def _list_of(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(ok(x) for x in v)


Check = tuple[str, Callable[[Any], bool], bool]
"""What a value must be (for the message), the test, and whether None (JSON null) is allowed."""

COUNT = 'a finite count such as 200000 or "200k"'
FIELDS: dict[str, Check] = {
    "signals": ("a list of strings", _list_of(_str), False),
    "models": ("a list of names or model tables", _list_of(lambda v: _str(v) or _table(v)), False),
    "seeds": ("a list of integers", _list_of(_int), False),
    "params": (COUNT, _count, True),
    "steps": ("an integer", _int, False),
    "target_psnr": ("a finite number", _number, True),
    "kinds": ("a table", _table, False),
    "out": ("a string", _str, False),
    "device": ("a string", _str, False),
    "workers": ("an integer", _int, False),
    "executor": ("a string", _str, False),
    "ray_address": ("a string", _str, True),
    "isolate": ("true or false", _bool, False),
    "keep_reconstructions": ("true or false", _bool, False),
    "retry_errors": ("true or false", _bool, False),
    "published": ("true or false", _bool, False),
    "kind": ("a string", _str, True),
    "runner": ("a string", _str, False),
    "options": ("a table", _table, False),
    "batched": ('true, false or "auto"', lambda v: _bool(v) or v == "auto", False),
}
"""BenchSpec's fields (a test keeps the two in step)."""

MODEL_FIELDS: dict[str, Check] = {"name": ("a string", _str, False), "label": ("a string", _str, True),
                                  "params": (COUNT, _count, True), "fit": ("a table", _table, False)}
EXAMPLES = {"signals": 'signals = ["data/*.png"]', "models": 'models = ["siren", "ffn"]', "seeds": "seeds = [0, 1]"}


def did_you_mean(word: str, names: Iterable[str]) -> str:
    """' (did you mean 'steps'?)' for the closest name, or '' when none is close.

    Example:
        >>> did_you_mean("stepz", ["steps", "seeds"])
        " (did you mean 'steps'?)"
    """
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(value: Any) -> str:
    """What a wrong value is, short enough for one line."""
    names = {str: "a string", bool: "a boolean", dict: "a table", int: "an integer", float: "a number",
             list: "a list"}
    text = repr(value)
    return f"{names.get(type(value), type(value).__name__)} {text if len(text) <= 50 else text[:47] + '...'}"


def check_types(data: dict[str, Any], fields: dict[str, Check], where: str = "") -> None:
    """Each of `fields` present in `data` has its type (ConfigError naming it, what it must be, what it got).

    Example:
        >>> check_types({"signals": "a.png"}, FIELDS)
        Traceback (most recent call last):
        ...
        inrkit.errors.ConfigError: signals must be a list of strings, ...; got a string 'a.png'
    """
    for name, value in data.items():
        if name not in fields:
            continue
        want, ok, optional = fields[name]
        if (value is None and optional) or ok(value):
            continue
        example = f", e.g. {EXAMPLES[name]}" if name in EXAMPLES and not where else ""
        raise ConfigError(f"{where}{name} must be {want}{example}; got {describe(value)}")


def check_unknown(names: Iterable[str], known: Iterable[str], what: str = "bench setting") -> None:
    """Names that are not `known` fail with the nearest known one.

    Example:
        >>> check_unknown(["stepz"], ["steps", "seeds"])
        Traceback (most recent call last):
        ...
        inrkit.errors.ConfigError: unknown bench setting 'stepz' (did you mean 'steps'?); known: seeds, steps
    """
    known = sorted(known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        more = f" (and {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else ""
        raise ConfigError(f"unknown {what} {unknown[0]!r}{did_you_mean(unknown[0], known)}{more}; "
                          f"known: {', '.join(known)}")


def check_kinds(kinds: dict[str, Any], fit_keys: Iterable[str]) -> None:
    """Per-kind tables name a registered kind; each key is a fit setting or one of the kind's loader options.

    Example:
        >>> check_kinds({"image": {"crop": 64, "lr": 1e-3}}, ["lr"])  # fine: crop is the image loader's
    """
    from ..signals import KINDS

    for kind, settings in kinds.items():
        check_unknown([kind], KINDS, "signal kind")
        if not isinstance(settings, dict):
            raise ConfigError(f"[{kind}] must be a table of settings; got {describe(settings)}")
        check_unknown(settings, [*fit_keys, *KINDS[kind].load_options], f"[{kind}] setting")


MAX_SPEC_BYTES = 16 * 2**20
"""A spec lists patterns, not data: anything larger is another file given by mistake (and /dev/zero never ends)."""


def read_spec_file(path: Path) -> Any:
    """The parsed TOML (or, for .json, JSON) of a spec file; ConfigError naming the file for anything else.

    Example:
        >>> read_spec_file(Path("benchmarks/bench_div2k.toml"))["models"]
        ['siren', 'finer', 'wire']
    """
    if path.is_dir():
        raise ConfigError(f"{path}: a folder, not a spec file (to bench the signals in it: --signals {path})")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path}: not a regular file (a device or a pipe); a spec is a TOML or JSON file")
    kind = _signal_kind(path)
    if kind:  # `inrkit bench a.png b.png`: the second file lands where the spec goes
        article = "an" if kind[0] in "aeiou" else "a"
        raise ConfigError(f"{path}: {article} {kind} file, not a bench spec; list signals with --signals "
                          f"(e.g. --signals a.png,b.png) or in the spec's signals = [...]")
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size:,} bytes is no bench spec (a spec is a short TOML "
                              "or JSON file)")
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(f"{path}: no such spec file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the spec ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
        return json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a spec: byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8 "
                          "text (a spec is a TOML or JSON file)") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path}: not a valid spec ({str(exc)[:200]})") from None


def _signal_kind(path: Path) -> str | None:
    """The signal kind a spec argument's suffix claims (None for .toml, .json and the unknown)."""
    from ..signals import detect_kind

    if path.suffix.lower() in (".toml", ".json"):
        return None
    try:
        return detect_kind(path)
    except InrkitError:  # not a signal suffix either
        return None
