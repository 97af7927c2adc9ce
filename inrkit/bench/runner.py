"""Run a benchmark: resolve the grid, skip finished cases, run the rest, store each row as it ends.

Executors: in this process (default); one subprocess per case (`isolate`, or `workers` > 1, one GPU
per worker where there are several); or Ray (`executor="ray"`). Only this process writes the store.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two benches on one folder are then the user's care
    fcntl = None

from ..errors import ConfigError
from ..models.registry import check_targets
from .case import base_row, case_config, get_runner, run_case, runner_module
from .grouped import groups, run_group, use_batched
from .progress import BenchProgress
from .spec import BenchSpec, Case, load_spec, make_spec, resolve
from .store import ResultStore, row_key


@dataclass
class BenchRun:
    """What `run_benchmark` did: the folder, how many cases there are, ran now, and failed in all."""

    out: Path
    total: int
    ran: int
    errors: int
    reports: list[Path] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)

    def rows(self, status: str | None = "ok") -> list[dict[str, Any]]:
        """This run's rows of the store (not those of other specs sharing the folder), in case order."""
        stored = {row_key(r): r for r in ResultStore(self.out).rows(status)}
        return [stored[c.key] for c in self.cases if c.key in stored]


def run_benchmark(spec: BenchSpec | dict[str, Any] | str | Path, *, progress: bool = True,
                  report: bool = True) -> BenchRun:
    """Run (or resume) a benchmark and write its report; re-running skips every finished case.

    Args:
        spec: a BenchSpec, a dict in the TOML layout, or the path of a TOML/JSON spec.
        progress: show overall cases done/total with ETA and the current fits' progress.
        report: regenerate the tables and plots from the store at the end.

    Example:
        >>> run = run_benchmark({"signals": ["data/*.png"], "models": ["siren", "ffn"], "seeds": [0, 1],
        ...                      "steps": 200, "out": "bench-out"})  # doctest: +SKIP
        >>> run.total, run.errors  # doctest: +SKIP
        (4, 0)
    """
    spec = as_spec(spec)
    get_runner(spec.runner)  # an unknown runner fails before any work
    cases = resolve(spec)
    check_executor(spec)
    check_cases(spec, cases)
    out = prepare_folder(spec)
    with exclusive(out):
        ResultStore(out, create=True)  # a damaged or foreign store fails now, before anything is written
        write_resolved_spec(spec, cases, out)
        return run_cases(cases, spec, progress=progress, report=report)


def run_cases(cases: list[Case], spec: BenchSpec | dict[str, Any], *, progress: bool = True,
              report: bool = True) -> BenchRun:
    """Run the `cases` not yet in the store of `spec.out`, storing each row as it ends.

    The resumable core of `run_benchmark`, for scripts whose cases are not a signals x models x seeds
    grid (each with its own settings, or a custom runner): build the Cases, then call this. Only the
    spec's run settings are used (out, device, workers, executor, isolate, retry_errors, published, ...).

    Example:
        >>> cases = [replace(c, options={"note": 1}) for c in resolve(spec)]  # doctest: +SKIP
        >>> run_cases(cases, spec).ran  # doctest: +SKIP
        2
    """
    spec = as_spec(spec)
    check_executor(spec)
    for name in {c.runner for c in cases}:
        get_runner(name)
    out = prepare_folder(spec)
    with exclusive(out):
        store = ResultStore(out, create=True)
        done = store.done_keys(include_errors=not spec.retry_errors)
        todo = [c for c in cases if c.key not in done]
        with BenchProgress(len(cases), len(cases) - len(todo), enabled=progress) as bar:
            execute(spec, todo, out, store, bar)
    keys = {c.key for c in cases}
    errors = sum(row_key(r) in keys for r in store.rows("error"))
    reports = []
    if report:
        from .report import write_report

        reports = write_report(out, published=spec.published)
    return BenchRun(out, len(cases), len(todo), errors, reports, list(cases))


_HELD: set[Path] = set()  # folders this process holds (run_benchmark's lock covers its run_cases)


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold OUT/.bench.lock while a bench writes there, so a second bench on the same folder stops with
    one line instead of fitting the same cases twice. The OS drops the lock when the process ends,
    however it ends."""
    out = Path(out).resolve()
    if out in _HELD or fcntl is None:
        yield
        return
    with open(out / ".bench.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{out}: another inrkit bench is writing there; let it finish, or pass "
                              "another --out") from None
        _HELD.add(out)
        try:
            yield
        finally:
            _HELD.discard(out)


def as_spec(spec: BenchSpec | dict[str, Any] | str | Path) -> BenchSpec:
    """A BenchSpec from a spec, a dict in the TOML layout or the path of a TOML/JSON spec."""
    if isinstance(spec, (str, Path)):
        return load_spec(spec)
    return make_spec(spec) if isinstance(spec, dict) else spec


def check_cases(spec: BenchSpec, cases: list[Case]) -> None:
    """Refuse, before anything is written, what every case would fail on: an unknown device, a fit
    setting out of range (a NaN lr), a crop or size over the sample limit, an existing store with
    rows that are not inrkit's."""
    from ..limits import check_shape
    from ..utils import resolve_device

    resolve_device(spec.device)
    for case in cases:
        case_config(case)
        check_targets(case.fit.get("targets", "range"))
        for key in ("crop", "size"):
            value = case.load.get(key)
            if isinstance(value, (int, list, tuple)) and not isinstance(value, bool):
                check_shape((value, value) if isinstance(value, int) else tuple(value), f"{case.kind}.{key}")
    store = Path(spec.out) / ResultStore.FILENAME
    if store.is_file() and store.stat().st_size:
        ResultStore(store.parent).rows()  # read-only: a store with foreign rows is refused untouched


def prepare_folder(spec: BenchSpec) -> Path:
    from ..runs import prepare_out_dir

    return prepare_out_dir(spec.out)


def write_resolved_spec(spec: BenchSpec, cases: list[Case], out: Path) -> Path:
    """spec.resolved.json: the spec with signals and models expanded; `inrkit bench` can re-run it."""
    data = spec.to_dict()
    data["signals"] = list(dict.fromkeys(c.signal for c in cases))
    data["models"] = [m.to_entry() for m in {c.model.label: c.model for c in cases}.values()]
    data["out"] = str(out)
    path = out / "spec.resolved.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def execute(spec: BenchSpec, todo: list[Case], out: Path, store: ResultStore, bar: BenchProgress) -> None:
    """Run `todo` with the spec's executor; each row is stored the moment its case ends."""
    if spec.executor == "ray":
        from .ray_executor import run_on_ray

        run_on_ray(spec, todo, out, store, bar)
    elif spec.workers == 1 and not spec.isolate:
        cache: dict[str, Any] = {}

        def run_one(case: Case, prefit: Any = None, extra: dict[str, Any] | None = None) -> None:
            task = bar.start_fit(case) if prefit is None else None
            row = run_case(case, out, keep_reconstruction=spec.keep_reconstructions, cache=cache, prefit=prefit,
                           on_step=(lambda step: bar.fit_step(task, step)) if task else None)
            if extra and row.get("status") == "ok":
                row.setdefault("extra", {}).update(extra)
            store.add(row)
            bar.end_fit(task, row)

        if use_batched(spec):
            for group in groups(todo):
                run_group(group, run_one, progress=bar.enabled)
        else:
            for case in todo:
                run_one(case)
    else:
        _run_in_subprocesses(spec, todo, out, store, bar)


def _run_in_subprocesses(spec: BenchSpec, todo: list[Case], out: Path, store: ResultStore,
                         bar: BenchProgress) -> None:
    """`workers` threads, each running one case at a time in a fresh Python process."""
    gpus = _gpu_count()
    workers = max(1, min(spec.workers, len(todo)))  # no more slots (or threads) than cases, however large --workers
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
    slots: queue.Queue[int] = queue.Queue()
    for i in range(workers):
        slots.put(i)
    lock = threading.Lock()

    def one(case: Case) -> None:
        slot = slots.get()
        try:
            task = bar.start_fit(case)
            row = run_isolated(case, out, spec.keep_reconstructions, gpu=slot % gpus if gpus > 1 else None,
                               on_step=lambda step: bar.fit_step(task, step), threads=threads)
            with lock:
                store.add(row)
            bar.end_fit(task, row)
        finally:
            slots.put(slot)

    pool = ThreadPoolExecutor(workers)
    try:
        for future in [pool.submit(one, c) for c in todo]:
            future.result()
    finally:  # on Ctrl-C, start nothing new; running children got the same SIGINT and stop
        pool.shutdown(wait=True, cancel_futures=True)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_isolated(case: Case, out: Path, keep: bool = False, gpu: int | None = None,
                 on_step: Any = None, threads: int | None = None) -> dict[str, Any]:
    """Run one case in a child process (`python -m inrkit.bench.worker`); a crash becomes an error row."""
    env = dict(os.environ)
    if threads and "OMP_NUM_THREADS" not in env:  # N workers share the cores instead of each taking all
        env["OMP_NUM_THREADS"] = str(threads)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    job = json.dumps({"case": case.to_dict(), "out": str(out), "keep": keep, "module": runner_module(case.runner)})
    proc = subprocess.Popen([sys.executable, "-m", "inrkit.bench.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        proc.stdin.write(job)
        proc.stdin.close()
    except OSError:  # the child died before reading its job; its exit status says why
        pass
    row = None
    for line in proc.stdout:
        if line.startswith("@@step ") and on_step:
            on_step(int(line.split()[1]))
        elif line.startswith("@@row "):
            row = json.loads(line[6:])
    code = proc.wait()
    reader.join(timeout=5)
    if row is not None:
        return row
    if code in (130, -2):  # the child was interrupted (Ctrl-C): not a failure of the case, so no row
        raise KeyboardInterrupt
    how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    tail = next((e.strip() for e in reversed(errors) if e.strip()), "no message")
    return {**base_row(case), "status": "error", "error": f"worker process died ({how}): {tail}"[:1000]}


def check_executor(spec: BenchSpec) -> None:
    """Fail before any work (or any folder) when the chosen executor cannot run: Ray missing or unreachable."""
    if spec.executor == "ray":
        from .ray_executor import connect

        connect(spec.ray_address)
