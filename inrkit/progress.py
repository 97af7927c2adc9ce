"""One progress style for every long job (fits, bench, rate-distortion, QAT, mesh preprocessing).

Library code opens a task with `task(...)` or wraps a loop with `track(...)`; nothing here imports
the CLI, so any module may use it. On a terminal the tasks are Rich bars (nested tasks share one
live display); otherwise each task prints a plain line to stderr every 10% or so (and at most one a
few seconds apart), so logs and CI output stay readable. `quiet()` silences every task opened
inside it; `progress=False` on a single task does the same for that task.
"""

from __future__ import annotations

import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

_enabled: ContextVar[bool] = ContextVar("inrkit_progress", default=True)
_lock = threading.RLock()
_live: Any = None  # the one rich.progress.Progress shared by all open tasks on a terminal
_open = 0  # tasks currently using `_live`
PLAIN_STEP = 0.1  # plain mode: a line per 10% ...
PLAIN_MIN_SECONDS = 2.0  # ... but not more often than this (the last line always prints)


def enabled(progress: bool | None = None) -> bool:
    """Whether a task opened now would show: `progress` when given, else not inside `quiet()`."""
    return _enabled.get() if progress is None else bool(progress and _enabled.get())


@contextmanager
def quiet(silence: bool = True) -> Iterator[None]:
    """Silence every progress task opened inside (for --quiet and --json).

    Example:
        >>> with quiet():
        ...     list(track(range(3), "silent"))
        [0, 1, 2]
    """
    token = _enabled.set(not silence and _enabled.get())
    try:
        yield
    finally:
        _enabled.reset(token)


def _interactive() -> bool:
    """Rich bars only when both streams are terminals: a piped stdout means a log is being kept."""
    return all(getattr(s, "isatty", lambda: False)() for s in (sys.stdout, sys.stderr))


def console() -> Any:
    """A Rich console on stderr (through the live display when one is open, so lines do not tear it)."""
    if _live is not None:
        return _live.console
    from rich.console import Console

    return Console(stderr=True)


class Task:
    """A running progress task: `advance`, `update`, `note`; close it (or use it as a context manager)."""

    def __init__(self, description: str, total: float | None, completed: float = 0) -> None:
        self.description, self.total, self.completed, self.fields = description, total, completed, ""
        self.closed = False

    def __enter__(self) -> Task:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, amount: float = 1, **fields: Any) -> None:
        self.update(self.completed + amount, **fields)

    def update(self, completed: float | None = None, *, total: float | None = None, **fields: Any) -> None:
        """Set the count (and total); keyword fields (loss=0.1, psnr=30.2) show after the bar."""
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if fields:
            self.fields = _format_fields(fields)
        self._show()

    def log(self, message: str) -> None:
        """A line above the bars (e.g. a failed case), shown even while bars are live."""

    def close(self) -> None:
        self.closed = True

    def _show(self) -> None:
        pass


class _RichTask(Task):
    def __init__(self, description: str, total: float | None, completed: float = 0) -> None:
        super().__init__(description, total, completed)
        global _live, _open
        with _lock:
            if _live is None:
                _live = _new_live()
                _live.start()
            _open += 1
            self.nested = _open > 1
            self.id = _live.add_task(description, total=total, completed=completed, fields="")

    def _show(self) -> None:
        if not self.closed:
            _live.update(self.id, completed=self.completed, total=self.total, fields=self.fields)

    def log(self, message: str) -> None:
        _live.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        global _live, _open
        with _lock:
            if self.closed:
                return
            self.closed = True
            if self.nested:  # a finished inner task (one fit of a benchmark) makes room for the next
                _live.remove_task(self.id)
            _open -= 1
            if _open == 0:
                _live.stop()
                _live = None


class _PlainTask(Task):
    def __init__(self, description: str, total: float | None, completed: float = 0) -> None:
        super().__init__(description, total, completed)
        self.start, self.last_time, self.printed = time.monotonic(), 0.0, completed

    def _fraction(self, value: float) -> float:
        return value / self.total if self.total else 0.0

    def log(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def _show(self, final: bool = False) -> None:
        now = time.monotonic()
        fraction = self._fraction(self.completed)
        due = fraction >= self._fraction(self.printed) + PLAIN_STEP - 1e-9 and now - self.last_time >= PLAIN_MIN_SECONDS
        if self.closed or not (due or final):
            return
        self.last_time, self.printed = now, self.completed
        count = f"{self.completed:g}/{self.total:g} ({100 * fraction:.0f}%)" if self.total else f"{self.completed:g}"
        print(f"{self.description}: {count} {now - self.start:.1f}s {self.fields}".rstrip(), file=sys.stderr,
              flush=True)

    def close(self) -> None:
        if not self.closed and self.completed != self.printed:
            self._show(final=True)
        self.closed = True


def _new_live() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[fields]}"),
                    console=Console(stderr=True))


def _format_fields(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())


def task(description: str, total: float | None = None, *, completed: float = 0,
         progress: bool | None = None) -> Task:
    """Open a progress task; a silent one when `progress` is False or inside `quiet()`.

    Example:
        >>> with task("fitting", total=10, progress=False) as t:
        ...     t.advance(5, loss=0.1)
        >>> t.completed
        5
    """
    if not enabled(progress):
        return Task(description, total, completed)
    return (_RichTask if _interactive() else _PlainTask)(description, total, completed)


def track(items: Iterable[T], description: str, total: float | None = None, *,
          progress: bool | None = None) -> Iterator[T]:
    """Yield from `items`, advancing a task by one per item.

    Example:
        >>> [x * 2 for x in track(range(3), "doubling", progress=False)]
        [0, 2, 4]
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with task(description, total, progress=progress) as t:
        for item in items:
            yield item
            t.advance()


def warning_line(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """`warnings.showwarning` replacement: one line, `warning: ...`, no source path or code line."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    console().print(f"warning: {text}", markup=False, highlight=False, soft_wrap=True)


@contextmanager
def clean_warnings() -> Iterator[None]:
    """Inside, every warning prints as one `warning: ...` line on stderr (each message once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        # PyTorch's notes on its own internals (torch.compile calls deprecated torch.jit helpers): nothing to act on
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch(\.|$)")
        warnings.showwarning = warning_line
        yield
