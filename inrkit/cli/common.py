"""What every command shares: the consoles, the one-line error handler and the option parsers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from ..errors import ConfigError, InrkitError

console = Console()
err_console = Console(stderr=True)


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Bad input ends with one line on stderr and exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InrkitError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def parse_size(text: str | None) -> tuple[int, ...] | None:
    """'256x512' -> (256, 512); '64' -> (64,)."""
    if text is None:
        return None
    try:
        size = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"cannot read size {text!r}; write it as HxW, e.g. 256x256") from None
    if min(size) < 1:
        raise ConfigError(f"size must be positive, got {text!r}")
    return size


def parse_bits(text: str) -> int | None:
    """'8' -> 8, 'fp16' -> None (float16 storage)."""
    if text.lower() in ("fp16", "16f", "half", "float16"):
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--bits must be an integer from 2 to 16 or 'fp16', got {text!r}") from None
