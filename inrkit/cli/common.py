"""What every command shares: the consoles, the one-line error handling, option parsers and checks."""

from __future__ import annotations

import difflib
import functools
import json
import math
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

try:  # typer >= 0.24 vendors click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors  # type: ignore[no-redef]

from ..errors import ConfigError, InrkitError
from ..limits import MAX_INT, MAX_LAYERS, check_params, check_shape
from ..progress import clean_warnings
from ..signals import KINDS, get_kind

_NO_ARGS = getattr(click_errors, "NoArgsIsHelpError", ())  # older click prints the help itself

console = Console()
err_console = Console(stderr=True)
DEVICE_HELP = "auto, cpu, cuda or mps"
MAX_THREADS = 1024  # CPU threads or worker processes: more than any machine has is a typo, and would spawn them


def error_line(message: str) -> None:
    """The one line every failure ends with (no markup: file names may hold brackets)."""
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Bad input ends with one line on stderr and exit status 2; warnings print as one line each."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with clean_warnings():
                return command(*args, **kwargs)
        except InrkitError as exc:
            error_line(str(exc))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except OSError as exc:  # the system refused a path: too long a name, a full disk, no permission
            where = f"{exc.filename}: " if exc.filename else ""
            error_line(f"{where}{exc.strerror or exc}"[:500])
            raise typer.Exit(2) from None

    return wrapper


class OneLineErrors(TyperGroup):
    """The top-level group: a usage error (bad option value, unknown option or command) is one line too."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS as exc:  # type: ignore[misc]
            exc.show()
            sys.exit(2)
        except click_errors.ClickException as exc:
            where = exc.ctx.command_path if getattr(exc, "ctx", None) else "inrkit"
            error_line(f"{exc.format_message()} (see '{where} --help')")
            sys.exit(2 if isinstance(exc, click_errors.UsageError) else exc.exit_code)
        except typer.Abort:
            err_console.print("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


# ---- option values -------------------------------------------------------------------------

def _number(text: str, ok: Callable[[float], bool], what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise typer.BadParameter(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and ok(value)):
        raise typer.BadParameter(f"must be {what}, got {text}")
    return value


def positive(text: str) -> float:
    """A finite number above 0 (rates, scales, learning rates)."""
    return _number(text, lambda v: v > 0, "a finite number above 0")


def non_negative(text: str) -> float:
    """A finite number of 0 or more (loss weights)."""
    return _number(text, lambda v: v >= 0, "a finite number of 0 or more")


def factor(text: str) -> float:
    """A factor in (0, 1] (a learning-rate decay, Reptile's outer step)."""
    return _number(text, lambda v: 0 < v <= 1, "a number above 0 and at most 1")


def fraction(text: str) -> float:
    """A fraction in [0, 1) (pruning)."""
    return _number(text, lambda v: 0 <= v < 1, "a fraction from 0 up to (not including) 1")


def parse_size(text: str | None, name: str = "--size", max_dims: int = 3) -> tuple[int, ...] | None:
    """The one size parser of every command: 'HxW' -> (H, W), 'N' -> (N,) (N along every axis).

    Example:
        >>> parse_size("256x512"), parse_size("64")
        ((256, 512), (64,))
    """
    if text is None:
        return None
    try:
        size = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"cannot read {name} {text!r}; write it as N or HxW, e.g. 256x256") from None
    if len(size) > max_dims:
        raise ConfigError(f"{name} {text!r} has {len(size)} sides; write it as N or HxW")
    if min(size) < 1:
        raise ConfigError(f"{name} must be positive, got {text!r}")
    return check_shape(size, name)  # 100000x100000 is refused here, before any loader or renderer sees it


def loader_size(text: str | None, name: str) -> int | tuple[int, int] | None:
    """A crop/resize for a loader: N (square) or (H, W)."""
    size = parse_size(text, name, max_dims=2)
    return None if size is None else size[0] if len(size) == 1 else (size[0], size[1])


def parse_budget(text: str | None, name: str = "--params") -> int | None:
    """'200k' -> 200000: a positive parameter count."""
    from ..utils import parse_count

    try:
        count = parse_count(text)
    except OverflowError:
        raise ConfigError(f"{name} must be a finite count, got {text!r}") from None
    if count is not None and count < 1:
        raise ConfigError(f"{name} must be a positive count (e.g. 200k), got {text!r}")
    return None if count is None else check_params(count, name)


BUDGET_UNITS = ("steps", "epochs", "samples", "seconds")


def parse_fit_budget(text: str | None) -> dict[str, float]:
    """'seconds=60' -> {"seconds": 60.0}: a training budget as FitConfig fields (steps, epochs, samples, seconds)."""
    if text is None:
        return {}
    unit, sep, amount = text.partition("=")
    unit = unit.strip().lower()
    if not sep or unit not in BUDGET_UNITS:
        raise ConfigError(f"cannot read --budget {text!r}; write UNIT=AMOUNT with UNIT one of "
                          f"{', '.join(BUDGET_UNITS)}, e.g. seconds=60")
    from ..utils import parse_count

    try:
        value = float(amount) if unit in ("epochs", "seconds") else parse_count(amount)
    except (ValueError, OverflowError):
        raise ConfigError(f"--budget {unit} must be a number, got {amount!r}") from None
    if not (isinstance(value, (int, float)) and 0 < value < float("inf") and value <= MAX_INT):
        raise ConfigError(f"--budget {unit} must be positive and at most {MAX_INT}, got {amount!r}")
    return {unit: int(value) if unit in ("steps", "samples") else value}


def parse_bits(text: str, name: str = "--bits") -> int | None:
    """'8' -> 8, 'fp16' -> None (float16 storage)."""
    if text.lower() in ("fp16", "16f", "half", "float16"):
        return None
    try:
        bits = int(text)
    except ValueError:
        bits = 0
    if not 2 <= bits <= 16:
        raise ConfigError(f"{name} must be an integer from 2 to 16 or 'fp16', got {text!r}")
    return bits


def parse_seed(text: str, name: str = "--seeds") -> int:
    """'7' -> 7: a seed, a whole number from 0 to 2**63 - 1 (torch and the bench store hold 64 bits)."""
    try:
        seed = int(text)
    except ValueError:
        raise ConfigError(f"cannot read {name} {text!r}; write whole numbers, e.g. 0,1,2") from None
    if not 0 <= seed <= MAX_INT:
        raise ConfigError(f"{name} must be from 0 to {MAX_INT}, got {text!r}")
    return seed


def split_list(text: str, parse: Callable[[str], Any]) -> list[Any]:
    """'2k,4k' -> [parse('2k'), parse('4k')]."""
    return [parse(p.strip()) for p in text.split(",") if p.strip()]


# ---- which options apply to which kind -----------------------------------------------------

def kinds_with(option: str, facts: str) -> list[str]:
    """Registered kinds whose `facts` ("load_options", "render_options", "loss_terms") name `option`."""
    return [k.name for k in KINDS.values() if option in getattr(k, facts)]


def for_kinds(option: str, facts: str) -> str:
    """A help prefix like 'video: ' derived from the registered kinds."""
    return f"{'/'.join(kinds_with(option, facts)) or 'no kind'}: "


def check_applies(kind: str, options: dict[str, Any], facts: str) -> None:
    """Refuse an option that the signal's kind does not take, naming the kinds that do."""
    known = getattr(get_kind(kind), facts)
    for name, value in options.items():
        if value is not None and value is not False and name not in known:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} applies to {' and '.join(kinds_with(name, facts)) or 'no'} signals, "
                              f"not to this {kind} signal")


def signal_kind(path: Path, kind: str | None) -> str | None:
    """The kind a file will be loaded as (None when it does not exist: loading says so)."""
    from ..signals import detect_kind

    if kind is not None:
        return get_kind(kind).name
    return detect_kind(path) if path.exists() else None


# ---- output --------------------------------------------------------------------------------

def nearest(word: str, names: Iterable[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(word, list(names), n=n, cutoff=0.0)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy / torch scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no inf or nan
    return value


def emit_json(data: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout (the only thing a --json command prints there)."""
    typer.echo(json.dumps(_plain(data), default=str))


def version_callback(value: bool) -> None:
    if value:
        from .._version import __version__

        typer.echo(f"inrkit {__version__}")
        raise typer.Exit()


# The training options `fit`, `fit-many` and `meta-learn` share, spelled once.
LrOption = Annotated[float | None, typer.Option("--lr", parser=positive, help="learning rate",
                                                show_default="the backbone's recipe")]
LrDecayOption = Annotated[float | None, typer.Option("--lr-decay", parser=factor,
                                                     help="final lr factor, 1 = constant", show_default="the recipe's")]
BatchSizeOption = Annotated[int | None, typer.Option("--batch-size", min=1, max=MAX_INT, help="samples per step",
                                                     show_default="the recipe's, else the whole signal")]
ParamsOption = Annotated[str | None, typer.Option("--params", help="parameter budget, e.g. 200k; solves the width",
                                                  show_default="the recipe's width")]
WidthOption = Annotated[int | None, typer.Option("--width", min=1, max=MAX_INT, help="hidden width (hidden_features)",
                                                 show_default="the recipe's")]
LayersOption = Annotated[int | None, typer.Option("--layers", min=0, max=MAX_LAYERS,
                                                  help="hidden layers (hidden_layers)", show_default="the recipe's")]
TargetsOption = Annotated[str | None, typer.Option(help="range (x/255 for images) or minmax (each signal's own "
                                                        "min..max, as WIRE, SL²A and FKAN do)",
                                                   show_default="the recipe's")]
KindOption = Annotated[str | None, typer.Option("--kind", help="signal kind", show_default="from the file suffix")]
