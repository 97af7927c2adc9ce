"""The benchmark's progress: cases done/total with ETA, and a task per running fit (inrkit.progress style)."""

from __future__ import annotations

from typing import Any

from .. import progress as shared
from .spec import Case


class BenchProgress:
    """Context manager over `inrkit.progress`; `enabled=False` makes every method silent."""

    def __init__(self, total: int, done: int, enabled: bool = True) -> None:
        self.total, self.done, self.enabled = total, done, enabled
        self.overall: shared.Task | None = None

    def __enter__(self) -> BenchProgress:
        self.overall = shared.task("cases", self.total, completed=self.done, progress=self.enabled)
        if self.done:
            self.overall.update(note=f"{self.done} done before")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.overall is not None:
            self.overall.close()

    def start_fit(self, case: Case) -> shared.Task:
        label = f"  {case.model.label} · {case.signal_name} · seed {case.seed}"
        return shared.task(label, case.fit.get("steps"), progress=self.enabled)

    def fit_step(self, task: shared.Task, step: int) -> None:
        task.update(step)

    def end_fit(self, task: shared.Task | None, row: dict[str, Any]) -> None:
        if task is not None:
            task.close()
        if self.overall is not None:
            self.overall.advance()
            if row.get("status") == "error":
                self.overall.log(f"error {row['model']} on {row['signal_name']} seed {row['seed']}: {row['error']}")
