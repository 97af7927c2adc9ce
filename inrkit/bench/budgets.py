"""Comparisons at equal budgets: each model's quality after the same training seconds and the same samples.

A recipe's own result rewards whoever trains longest or sees most data (full-batch backbones see
the whole signal every step). Reading every case's history at a common budget removes that: the
common budget is the smallest one that every model reached, so no number is extrapolated.
History rows are [step, loss, psnr, seconds, samples] (older stores lack samples).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

SECONDS, SAMPLES = 3, 4


def value_at(history: list[list[Any]], column: int, budget: float) -> float:
    """PSNR of the last history row whose `column` (seconds or samples) is within `budget`."""
    best = math.nan
    for row in history:
        if len(row) > column and row[column] is not None and row[column] <= budget * (1 + 1e-9):
            best = row[2] if row[2] is not None else math.nan
    return best


def common_budget(rows: list[dict[str, Any]], column: int) -> float | None:
    """The largest budget every model reached in every case (None when a case did not record it)."""
    totals = [r["history"][-1][column] if r["history"] and len(r["history"][-1]) > column else None for r in rows]
    if not totals or any(t is None for t in totals):
        return None
    return float(min(totals))


def equal_budget_section(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown: mean PSNR per model at the common time and at the common number of samples."""
    budgets = [(label, column, common_budget(rows, column)) for label, column in
               (("seconds", SECONDS), ("samples seen", SAMPLES))]
    budgets = [(label, column, b) for label, column, b in budgets if b]
    if not budgets or not any(h[2] is not None for r in rows for h in r["history"]):
        return []
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_model[r["model"]].append(r)
    head = " | ".join(f"PSNR (dB) at {b:,.4g} {label}" for label, _, b in budgets)
    lines = ["### At equal budgets", "",
             "Each case's PSNR read from its history at the budget every model reached (mean over cases).", "",
             f"| model | {head} |", "|---|" + "---:|" * len(budgets)]
    for model, mine in sorted(by_model.items()):
        cells = []
        for _, column, budget in budgets:
            values = [v for v in (value_at(r["history"], column, budget) for r in mine) if not math.isnan(v)]
            cells.append(f"{statistics.fmean(values):.2f}" if values else "–")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return [*lines, ""]
