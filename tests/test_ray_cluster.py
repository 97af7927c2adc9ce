"""The Ray executor against a real Ray cluster started here (`ray start --head`, 2 CPUs): the same results
as the local executor, and a worker killed mid-case loses no finished case.

Run with `pytest -m ray tests/test_ray_cluster.py` (needs `pip install 'inrkit[ray]'`; skipped without Ray).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from inrkit.bench import ResultStore, run_benchmark, run_cases
from inrkit.bench.spec import ModelSpec, make_case

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

RUNNER_MODULE = "inrkit_ray_test_runner"
RUNNER = textwrap.dedent('''
    """A case runner for the kill test: the case named by options["block"] waits to be killed, unless the
    test left the file "killed" in the results folder (so Ray's retry and the re-run finish it)."""
    import os
    import time
    from pathlib import Path

    from inrkit.bench import register_runner

    @register_runner("ray_test_blocking")
    def blocking(case, context):
        x = case.options["x"]
        if x == case.options["block"] and not (context.out / "killed").exists():
            (context.out / f"worker-{x}.pid").write_text(str(os.getpid()))
            time.sleep(300)
        return {"metrics": {"square": float(x * x)}, "params": x, "extra": {"pid": os.getpid()}}
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """End the head and every process it started (they share its new session), whatever state they are in."""
    for sig, wait in ((signal.SIGTERM, 2), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            time.sleep(1)  # the head is gone; its raylet and workers may still be shutting down


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A Ray head with 2 CPUs on free local ports; its workers can import the test runner module."""
    ray.shutdown()  # a Ray an earlier test started in this process would take the cases instead
    temp = Path(tempfile.mkdtemp(prefix="inrkit-ray-"))  # short: Ray's socket paths must fit in 107 bytes
    (temp / "modules").mkdir()
    (temp / "modules" / f"{RUNNER_MODULE}.py").write_text(RUNNER)
    sys.path.insert(0, str(temp / "modules"))
    port = free_port()
    ports = [f"--{name}={free_port()}" for name in ("ray-client-server-port", "node-manager-port",
                                                    "object-manager-port", "metrics-export-port",
                                                    "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                                                    "runtime-env-agent-port")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(temp / "modules"), os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_memory_monitor_refresh_ms": "0"}  # Ray kills workers when the *machine* is near full: not this test
    log = open(temp / "head.log", "w")  # noqa: SIM115  closed in teardown
    command = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--num-cpus=2",
               "--num-gpus=0", f"--port={port}", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
               "--disable-usage-stats", f"--temp-dir={temp / 'ray'}", *ports]
    head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in (temp / "head.log").read_text():
            assert head.poll() is None and time.monotonic() < deadline, (temp / "head.log").read_text()[-3000:]
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        ray.shutdown()
        stop(head)
        log.close()
        sys.path.remove(str(temp / "modules"))
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("signals")
    y, x = np.mgrid[0:16, 0:16] / 15.0
    paths = [folder / "a.png", folder / "b.png"]
    for path, image in zip(paths, [np.stack([x, y, x * y], -1), np.stack([y * y, 0.5 + 0 * x, x], -1)]):
        iio.imwrite(path, (image * 255).astype(np.uint8))
    return paths


def results(out: Path) -> dict[tuple[str, str, int], dict]:
    return {(r["signal_name"], r["model"], r["seed"]): r for r in ResultStore(out).rows()}


def test_the_ray_executor_gives_the_local_executors_results(cluster: str, images: list[Path],
                                                            tmp_path: Path) -> None:
    spec = {"signals": [str(p) for p in images], "models": ["siren", "ffn"], "seeds": [0], "steps": 20,
            "device": "cpu", "published": False}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Ray gives each 1-CPU task one thread: the same arithmetic in both runs
    try:
        local = run_benchmark({**spec, "out": str(tmp_path / "local")}, progress=False)
    finally:
        torch.set_num_threads(threads)
    remote = run_benchmark({**spec, "out": str(tmp_path / "ray"), "executor": "ray", "ray_address": cluster},
                           progress=False)
    assert (local.total, local.errors, remote.total, remote.errors) == (4, 0, 4, 0)
    mine, theirs = results(tmp_path / "local"), results(tmp_path / "ray")
    assert set(mine) == set(theirs) and len(mine) == 4
    assert {r["extra"]["peak_mib"] > 0 for r in theirs.values()} == {True}
    for key, row in mine.items():
        other = theirs[key]
        assert (row["config_hash"], row["params"], row["steps"]) == (other["config_hash"], other["params"],
                                                                     other["steps"])
        # Same seed, same init, same sampling and one thread on the same CPU: the fits match to float32
        # rounding (a different summation order could move the last bits, never a real difference).
        for name, value in row["metrics"].items():
            assert other["metrics"][name] == pytest.approx(value, rel=1e-5, abs=1e-6), (key, name)
        assert Path(other["thumbnail"]).is_file() and str(tmp_path / "ray") in other["thumbnail"]
    assert (tmp_path / "ray" / "table_image.csv").read_text().splitlines()[0] == \
        (tmp_path / "local" / "table_image.csv").read_text().splitlines()[0]


def kill_the_blocked_worker(out: Path, x: int, finished: int) -> threading.Thread:
    """Once case `x` is blocking in its worker and `finished` cases are stored, SIGKILL that worker."""
    def watch() -> None:
        pid_file, deadline = out / f"worker-{x}.pid", time.monotonic() + 120
        while time.monotonic() < deadline:
            if pid_file.exists() and pid_file.read_text() and ResultStore(out).count() >= finished:
                (out / "killed").write_text("")  # Ray's retry and the re-run then finish the case
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
                return
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def blocking_cases(block: int) -> list:
    __import__(RUNNER_MODULE)  # registers the runner here; Ray workers import it by name
    return [make_case(f"sig{x}", "image", ModelSpec("toy", "toy"), runner="ray_test_blocking",
                      options={"x": x, "block": block}) for x in (1, 2, 3)]


def test_a_worker_killed_mid_case_loses_no_finished_case_and_a_rerun_completes(cluster: str, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {"out": str(tmp_path / "b"), "device": "cpu", "executor": "ray", "ray_address": cluster}
    monkeypatch.setattr("inrkit.bench.ray_executor.MAX_RETRIES", 0)  # the kill is final: the case is an error
    killer = kill_the_blocked_worker(tmp_path / "b", x=2, finished=2)
    first = run_cases(blocking_cases(block=2), spec, progress=False, report=False)
    killer.join()
    rows = results(tmp_path / "b")
    assert (first.total, first.ran, first.errors) == (3, 3, 1)
    assert rows[("sig2", "toy", 0)]["error"].startswith("Ray worker died")
    finished = {k: (r["id"], r["finished"], r["extra"]["pid"]) for k, r in rows.items() if r["status"] == "ok"}
    assert set(finished) == {("sig1", "toy", 0), ("sig3", "toy", 0)}

    again = run_cases(blocking_cases(block=2), {**spec, "retry_errors": True}, progress=False, report=False)
    rows = results(tmp_path / "b")
    assert (again.ran, again.errors) == (1, 0) and len(rows) == 3
    assert all(r["status"] == "ok" for r in rows.values())
    assert {k: (r["id"], r["finished"], r["extra"]["pid"]) for k, r in rows.items() if k in finished} == finished
    assert [rows[(f"sig{x}", "toy", 0)]["metrics"]["square"] for x in (1, 2, 3)] == [1.0, 4.0, 9.0]


def test_rays_retry_finishes_a_case_whose_worker_was_killed(cluster: str, tmp_path: Path) -> None:
    killer = kill_the_blocked_worker(tmp_path / "c", x=3, finished=2)
    run = run_cases(blocking_cases(block=3), {"out": str(tmp_path / "c"), "executor": "ray", "ray_address": cluster},
                    progress=False, report=False)
    killer.join()
    assert (run.total, run.ran, run.errors) == (3, 3, 0)
    rows = results(tmp_path / "c")
    assert (tmp_path / "c" / "killed").exists(), "the worker was killed mid-case"
    assert rows[("sig3", "toy", 0)]["status"] == "ok"
    assert rows[("sig3", "toy", 0)]["extra"]["pid"] != int((tmp_path / "c" / "worker-3.pid").read_text())


def test_a_bench_killed_while_on_ray_resumes_with_only_the_missing_cases(cluster: str, images: list[Path],
                                                                          tmp_path: Path) -> None:
    """`inrkit bench` (the driver: it alone writes the store) SIGKILLed mid-run, then run again; the cluster
    comes from RAY_ADDRESS."""
    from inrkit.errors import ConfigError

    out = tmp_path / "k"
    command = [sys.executable, "-m", "inrkit", "bench", "--signals", ",".join(map(str, images)),
               "--models", "siren,ffn", "--seeds", "0", "--steps", "100", "--device", "cpu", "--executor", "ray",
               "--out", str(out), "--quiet", "--no-published"]
    env = {**os.environ, "RAY_ADDRESS": cluster}
    log = tmp_path / "driver.log"
    with open(log, "w") as sink:
        driver = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    deadline, stored = time.monotonic() + 120, 0
    while stored < 1 and driver.poll() is None and time.monotonic() < deadline:
        try:
            stored = ResultStore(out).count()
        except ConfigError:  # the store is being created
            stored = 0
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = {k: (r["id"], r["finished"]) for k, r in results(out).items()}
    assert 1 <= len(before) < 4, f"the kill must land midway: {log.read_text()[-2000:]}"

    started = time.monotonic()
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
    print(f"killed after {len(before)} of 4 cases; the re-run took {time.monotonic() - started:.0f} s")
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"4 cases, {4 - len(before)} run now, 0 failed" in again.stdout
    rows = results(out)
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows.values())
    assert {k: (r["id"], r["finished"]) for k, r in rows.items() if k in before} == before
