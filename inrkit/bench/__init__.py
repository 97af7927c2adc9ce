"""Benchmarks: signals x models x seeds, resumable, with tables and plots (`inrkit bench`).

Every resumable experiment goes through the runner here: `run_benchmark` for a spec's grid,
`run_cases` for a script's own list of cases, a named runner per case kind ("fit", "rd", or one
registered with `register_runner`), one store and one report.

Example:
    >>> run = run_benchmark({"signals": ["data/*.png"], "models": ["siren", "ffn"], "seeds": [0, 1],
    ...                      "steps": 200, "out": "bench-out"})  # doctest: +SKIP
    >>> print((run.out / "report.md").read_text())  # doctest: +SKIP
"""

from .case import CaseContext, fit_case, fit_row, register_runner, run_case
from .plots import register_gallery
from .rd import run_rd  # registers the "rd" runner, so specs (and worker processes) can name it
from .report import write_report
from .runner import BenchRun, run_benchmark, run_cases
from .spec import BenchSpec, Case, ModelSpec, load_spec, make_spec, resolve
from .store import ResultStore

__all__ = ["BenchRun", "BenchSpec", "Case", "CaseContext", "ModelSpec", "ResultStore", "fit_case", "fit_row",
           "load_spec", "make_spec", "register_gallery", "register_runner", "resolve", "run_benchmark", "run_case",
           "run_cases", "run_rd", "write_report"]
