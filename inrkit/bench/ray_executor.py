"""Send benchmark cases to a Ray cluster; rows come back to this process, which alone writes the store.

The results folder must be reachable by the workers (a shared filesystem) for thumbnails and
reconstructions; the rows themselves travel through Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .case import base_row, import_runner, run_case, runner_module
from .spec import BenchSpec, Case


def _remote_case(case: dict[str, Any], out: str, keep: bool, module: str | None) -> dict[str, Any]:
    import_runner(module)
    return run_case(Case.from_dict(case), out, keep_reconstruction=keep)


def run_on_ray(spec: BenchSpec, todo: list[Case], out: Path, store: Any, bar: Any) -> None:
    """Submit every case (at most `workers` x cluster GPUs/CPUs in flight, Ray decides) and store rows as they end."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'inrkit[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=spec.ray_address, ignore_reinit_error=True, log_to_driver=False)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    remote = ray.remote(num_gpus=gpus)(_remote_case)
    pending = {}
    for case in todo:
        ref = remote.remote(case.to_dict(), str(out), spec.keep_reconstructions, runner_module(case.runner))
        pending[ref] = (case, None)  # one bar per case would flood the screen
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            case, task = pending.pop(ref)
            try:
                row = ray.get(ref)
            except Exception as exc:  # noqa: BLE001  a worker that died: record it, go on
                row = {**base_row(case), "status": "error", "error": f"ray worker failed: {exc}"[:1000]}
            store.add(row)
            bar.end_fit(task, row)
