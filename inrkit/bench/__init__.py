"""Benchmarks: signals x models x seeds, resumable, with tables and plots (`inrkit bench`).

Example:
    >>> run = run_benchmark({"signals": ["data/*.png"], "models": ["siren", "ffn"], "seeds": [0, 1],
    ...                      "steps": 200, "out": "bench-out"})  # doctest: +SKIP
    >>> print((run.out / "report.md").read_text())  # doctest: +SKIP
"""

from .case import run_case
from .plots import register_gallery
from .report import write_report
from .runner import BenchRun, run_benchmark
from .spec import BenchSpec, Case, ModelSpec, load_spec, make_spec, resolve
from .store import ResultStore

__all__ = ["BenchRun", "BenchSpec", "Case", "ModelSpec", "ResultStore", "load_spec", "make_spec", "register_gallery",
           "resolve", "run_benchmark", "run_case", "write_report"]
