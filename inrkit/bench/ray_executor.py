"""Send benchmark cases to a Ray cluster; rows come back to this process, which alone writes the store.

Where: `ray_address` (spec or `--ray-address`), else the RAY_ADDRESS environment variable, else a Ray
started on this machine. The signals and the results folder must be reachable by the workers at the same
paths (a shared filesystem): workers read the signals and write thumbnails and reconstructions; the rows
themselves travel back through Ray. A worker that dies mid-case (a kill, a lost node) has its case retried
by Ray up to `MAX_RETRIES` times; after that the case is an error row (`--retry-errors` runs it again).
Finished cases are in the store the moment they end, so nothing finished is lost either way.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .case import base_row, import_runner, run_case, runner_module
from .spec import BenchSpec, Case

MAX_RETRIES = 3
"""Times Ray re-runs a case whose worker died (Ray's own default for tasks); exceptions are never retried."""


def _remote_case(case: dict[str, Any], out: str, keep: bool, module: str | None) -> dict[str, Any]:
    import_runner(module)
    return run_case(Case.from_dict(case), out, keep_reconstruction=keep)


def connect(address: str | None) -> Any:
    """Connect to the cluster at `address` (None: RAY_ADDRESS, else a local Ray); ConfigError if it cannot.

    Example:
        >>> ray = connect("10.0.0.5:6379")  # doctest: +SKIP
        >>> ray.cluster_resources()["CPU"]  # doctest: +SKIP
        64.0
    """
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'inrkit[ray]'") from None
    if not ray.is_initialized():
        where = address or os.environ.get("RAY_ADDRESS")
        if where:
            _probe(where)
        try:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001  Ray raises ConnectionError, RuntimeError, ValueError...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot connect to the Ray cluster at {where or 'a local Ray'}: {first}") from None
    return ray


def _probe(address: str, seconds: float = 5.0) -> None:
    """Fail in seconds when nothing listens at host:port (Ray itself retries for minutes before giving up)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local" and other forms Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as exc:
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: nothing answers there "
                          f"({exc.strerror or exc}); start it with `ray start --head` or fix --ray-address "
                          "/ RAY_ADDRESS") from None


def run_on_ray(spec: BenchSpec, todo: list[Case], out: Path, store: Any, bar: Any) -> None:
    """Submit every case (Ray runs as many at once as the cluster has CPUs, or GPUs) and store rows as they end.

    Example:
        >>> run_on_ray(spec, resolve(spec), Path("bench"), ResultStore("bench"), bar)  # doctest: +SKIP
    """
    ray = connect(spec.ray_address)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    remote = ray.remote(num_gpus=gpus, max_retries=MAX_RETRIES, retry_exceptions=False)(_remote_case)
    folder = str(Path(out).resolve())  # workers do not share this process's working directory
    pending = {}
    for case in todo:
        ref = remote.remote(case.to_dict(), folder, spec.keep_reconstructions, runner_module(case.runner))
        pending[ref] = case  # one bar per case would flood the screen
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                row = _row(ray, ref, pending.pop(ref))
                store.add(row)
                bar.end_fit(None, row)
    finally:  # Ctrl-C, or a store that cannot be written: nothing of this run goes on running on the cluster
        for ref in pending:
            ray.cancel(ref, force=True)


def _row(ray: Any, ref: Any, case: Case) -> dict[str, Any]:
    """The case's row; a worker that died on every try gives an error row (the case's own errors already do)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        first = next((s.strip() for s in str(exc).splitlines() if s.strip()), "")
        return {**base_row(case), "status": "error",
                "error": f"Ray worker died ({type(exc).__name__}): {first}"[:1000]}
