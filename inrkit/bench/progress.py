"""The benchmark's rich progress display: cases done/total with ETA, and a bar per running fit."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from .spec import Case


class BenchProgress:
    """Context manager; `enabled=False` makes every method a no-op display-wise."""

    def __init__(self, total: int, done: int, enabled: bool = True, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[note]}"), console=self.console, disable=not enabled)
        self.enabled = enabled
        self.overall = self.progress.add_task("[bold]cases", total=total, completed=done,
                                              note=f"{done} done before" if done else "")

    def __enter__(self) -> BenchProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start_fit(self, case: Case) -> TaskID:
        label = f"  {case.model.label} · {case.signal_name} · seed {case.seed}"
        return self.progress.add_task(label, total=case.fit.get("steps"), note="")

    def fit_step(self, task: TaskID, step: int) -> None:
        self.progress.update(task, completed=step)

    def end_fit(self, task: TaskID | None, row: dict[str, Any]) -> None:
        if task is not None:
            self.progress.remove_task(task)
        self.progress.advance(self.overall)
        if row.get("status") == "error" and self.enabled:
            self.progress.console.print(f"[red]error[/] {row['model']} on {row['signal_name']} seed {row['seed']}: "
                                        f"{row['error']}", highlight=False, soft_wrap=True)
