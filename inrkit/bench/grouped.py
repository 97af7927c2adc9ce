"""Bench cases that differ only in signal and seed, trained together by `fit_many`.

Cases with the same runner, model, size, fit and loader settings and device whose signals load to one
kind and shape form a group; `fit_many` trains the group as one vectorised model, then each member goes
through its runner as if it had been fitted alone (`CaseContext.prefit`), so rows, thumbnails and
error rows are the ones `fit` would give, member for member up to floating-point summation order. Its
seconds (and its history's, and its time to target) are the group's training time divided by the members
that shared it, recorded as `extra.batched`. Whatever fit_many does not run (INT sampling, mixed
precision, loss terms, a backbone with a loss of its own) runs case by case as before.

`batched = "auto"` (the default) groups on a GPU, where stacking many small fits is what makes them fast;
on a CPU it is about 2.2x for 32² fits and even for larger ones (benchmarks/results/batched.md), so it is
opt-in there (`batched = true`), and timing benchmarks keep one process per case (`isolate`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..errors import ConfigError
from .spec import BenchSpec, Case

MAX_MEMBERS = 64  # a Ctrl-C loses at most one group's fits


def use_batched(spec: BenchSpec) -> bool:
    from ..utils import resolve_device

    if spec.batched == "auto":
        return resolve_device(spec.device).type == "cuda"
    return bool(spec.batched)


def groups(cases: list[Case]) -> list[list[Case]]:
    """The cases in groups that may train together (first-appearance order), at most MAX_MEMBERS each."""
    by_key: dict[str, list[list[Case]]] = {}
    for case in cases:
        chunks = by_key.setdefault(_key(case) if batchable(case) else f"alone {case.key}", [[]])
        if len(chunks[-1]) == MAX_MEMBERS:
            chunks.append([])
        chunks[-1].append(case)
    return [chunk for chunks in by_key.values() for chunk in chunks]


def batchable(case: Case) -> bool:
    from ..batched import check_supported
    from .case import case_config

    if case.runner not in ("fit", "rd"):
        return False
    try:
        check_supported(case_config(case))
    except ConfigError:
        return False
    return True


def _key(case: Case) -> str:
    return json.dumps([case.runner, case.model.to_entry(), case.params, case.fit, case.load, case.kind, case.device,
                       case.options], sort_keys=True, default=str)


RunOne = Callable[[Case, "tuple[Any, Any] | None", "dict[str, Any] | None"], None]


def run_group(cases: list[Case], run_one: RunOne, progress: bool = False) -> None:
    """Train `cases` together where they can be, then hand each to `run_one(case, prefit, extra)`.

    Cases whose signal fails to load, of a shape no other case shares, or that fit_many refuses
    (ConfigError) get `prefit=None`: run_one fits them alone (and records any error as usual). A Ctrl-C
    during the group's fit stores the members that had already finished, then stops the benchmark.
    """
    from .case import load_case_signal

    if len(cases) == 1:  # nothing to train it with: no need to load its signal here as well as in its run
        run_one(cases[0], None, None)
        return
    shapes: dict[tuple, list[tuple[Case, Any]]] = {}
    for case in cases:
        try:
            signal = load_case_signal(case, {})
        except Exception:  # noqa: BLE001  the case's own run records the error row
            run_one(case, None, None)
            continue
        shapes.setdefault((signal.kind, tuple(signal.values.shape)), []).append((case, signal))
    for members in shapes.values():
        together = _fit_together(members, progress) if len(members) > 1 else None
        if together is None:
            for case, _ in members:
                run_one(case, None, None)
            continue
        outcomes, extra = together
        for (case, signal), outcome in zip(members, outcomes):
            if outcome != "interrupted":
                run_one(case, (signal, outcome), extra)
        if "interrupted" in outcomes:
            raise KeyboardInterrupt


def _fit_together(members: list[tuple[Case, Any]], progress: bool) -> tuple[list[Any], dict[str, Any]] | None:
    """Each member's FitResult (amortised), FitDiverged or "interrupted", and the rows' `extra.batched`;
    None where fit_many refuses."""
    from ..batched import fit_many
    from ..fit import FitDiverged
    from .case import case_config, case_model

    first = members[0][0]
    try:
        results = fit_many([signal for _, signal in members], lambda signal: case_model(first, signal),
                           replace(case_config(first), progress=progress), seeds=[case.seed for case, _ in members])
    except ConfigError:
        return None
    share = len(members)
    outcomes: list[Any] = []
    for member in results:
        if member.status == "diverged":
            outcomes.append(FitDiverged(member.error or "diverged"))
        elif member.status == "interrupted":
            outcomes.append("interrupted")
        else:
            outcomes.append(_amortised(member.result, share))
    return outcomes, {"batched": {"members": share, "engine": results[0].engine}}


def _amortised(result: Any, share: int) -> Any:
    """The member's FitResult with the group's training seconds divided among its members."""
    history = [{**row, "seconds": row["seconds"] / share} for row in result.history]
    reached = result.time_to_target / share if result.time_to_target is not None else None
    return replace(result, seconds=result.seconds / share, history=history, time_to_target=reached)
