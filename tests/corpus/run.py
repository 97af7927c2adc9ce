"""Run one corpus case (in this process, or in a subprocess under a timeout and an address-space limit)
and classify what happened.

Outcomes, worst first as they are checked:
    hang            no answer within the timeout, or memory ran out (an input that grows without bound)
    traceback       a Python traceback instead of one line
    data loss       a file that existed before the command changed or vanished (and was not its to write)
    partial folder  a refused command left something behind (an empty --out folder, a temporary file)
    wrong output    exit 0 where the input had to be refused, or an output that is not what it claims
                    (a .png holding TIFF bytes, an all-black render of NaN weights, NaN metrics)
    unclear         another exit status, or exit 2 without exactly one `error:` line
    clean           exit 2 with one line, or exit 0 with correct outputs where the input may be used
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from .checks import output_problems

OUTCOMES = ("clean", "traceback", "hang", "wrong output", "partial folder", "data loss", "unclear")
MEMORY_WORDS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "std::bad_alloc")


@dataclass
class Result:
    """What a command did: exit status (None: timed out), its output and the exception that escaped."""

    code: int | None
    stdout: str
    stderr: str
    escaped: str | None = None
    seconds: float = 0.0


@dataclass
class Verdict:
    case: str
    outcome: str
    detail: str
    seconds: float


class CaseTimeout(BaseException):
    """Raised by the alarm in-process; a BaseException so that no `except Exception` swallows it."""


@functools.cache
def _command() -> object:
    import typer

    from inrkit.cli import app

    return typer.main.get_command(app)  # built once: typer rebuilds it per invoke otherwise (0.3 s)


def _on_alarm(signum: int, frame: object) -> None:
    raise CaseTimeout()


def invoke(argv: list[str], cwd: Path, profile: object, timeout: float = 60.0) -> Result:
    """Run `inrkit argv` in this process with `cwd` as the working folder and the profile's environment."""
    import typer.testing

    from inrkit.cli import app

    old_cwd, start = os.getcwd(), time.perf_counter()
    os.chdir(cwd)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with mock.patch.object(typer.testing, "_get_command", lambda _app: _command()):
            res = typer.testing.CliRunner().invoke(app, argv, env=getattr(profile, "env", {}))
        escaped = None if res.exception is None or isinstance(res.exception, SystemExit) else \
            f"{type(res.exception).__name__}: {str(res.exception).strip()[:200]}"
        return Result(res.exit_code, res.stdout, res.stderr, escaped, time.perf_counter() - start)
    except CaseTimeout:
        return Result(None, "", "", None, time.perf_counter() - start)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(old_cwd)


def inrkit_command() -> list[str]:
    script = Path(sys.executable).with_name("inrkit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "inrkit"]


def subprocess_prefix(timeout: float) -> list[str]:
    """`timeout -k 5 T` where the tool exists, else nothing (Python's timeout only).

    The address-space limit is set by `invoke_subprocess` itself (setrlimit before exec), the same as
    `prlimit --as=M`; the prlimit tool is not used because in some sandboxes it crashes every process
    it starts, whatever the limit.
    """
    return ["timeout", "-k", "5", str(int(timeout))] if shutil.which("timeout") else []


def invoke_subprocess(argv: list[str], cwd: Path, profile: object, timeout: float = 120.0,
                      memory: str = "8GiB") -> Result:
    """Run `inrkit argv` as its own process under a timeout and an address-space limit."""
    import resource

    env = {**os.environ, **getattr(profile, "env", {}), "COLUMNS": "200"}
    limit = _bytes(memory)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    start = time.perf_counter()
    try:
        proc = subprocess.run([*subprocess_prefix(timeout), *inrkit_command(), *argv], cwd=cwd, env=env,
                              capture_output=True, text=True, errors="replace", timeout=timeout + 15,
                              preexec_fn=limit_memory)
    except subprocess.TimeoutExpired:
        return Result(None, "", "", None, time.perf_counter() - start)
    code = None if proc.returncode in (124, 137) else proc.returncode
    return Result(code, proc.stdout, proc.stderr, None, time.perf_counter() - start)


def invoke_forked(argv: list[str], cwd: Path, profile: object, timeout: float = 120.0,
                  memory: str = "8GiB") -> Result:
    """Run `inrkit argv` in a forked child of this process (which has imported inrkit once) under an
    address-space limit (RLIMIT_AS) and a timeout: a process per case, without paying the import per case.

    The parent must not have run torch work of its own (thread pools do not survive a fork): build the
    workspace with subprocesses first (`Workspace(..., mode="fork")` does).
    """
    import resource
    import tempfile
    import traceback

    import inrkit.cli  # noqa: F401  (imported once, before forking)

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                limit = _bytes(memory)
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
                os.chdir(cwd)
                os.environ.update({**getattr(profile, "env", {}), "COLUMNS": "200"})
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.argv = ["inrkit", *argv]
                try:
                    inrkit.cli.main()
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                except BaseException:
                    traceback.print_exc()
                    code = 1
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
        code = _wait(pid, timeout)
        out.seek(0)
        err.seek(0)
        text = (out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))
    return Result(code, *text, None, time.perf_counter() - start)


def _wait(pid: int, timeout: float) -> int | None:
    """The child's exit status (negative: killed by that signal), or None after killing it at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _bytes(memory: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    text = memory.lower().removesuffix("ib").removesuffix("b")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1:] in units else int(text)


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` -> a hash of its bytes ('dir' for folders).

    An SQLite database is hashed by its content (opening one rewrites its bytes without changing a
    row), and its -wal/-shm companions are left out: they are part of the database, not files.
    """
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        if path.is_symlink() or not path.exists():
            found[rel] = "link"
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = _sqlite_content(path) or hashlib.sha1(path.read_bytes()).hexdigest()
    return found


def _sqlite_content(path: Path) -> str | None:
    """A hash of a database's rows (None when the file is not a readable SQLite database)."""
    import sqlite3

    if path.suffix not in (".sqlite", ".db") or path.stat().st_size == 0:
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return "sqlite:" + hashlib.sha1("\n".join(db.iterdump()).encode("utf-8", "replace")).hexdigest()
    except sqlite3.Error:
        return None


def _first_error_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def classify(case: object, result: Result, before: dict[str, str], after: dict[str, str],
             folder: Path) -> tuple[str, str]:
    """The outcome of one case and a one-line detail."""
    text = result.stdout + result.stderr + (result.escaped or "")
    if result.code is None:
        return "hang", f"no answer within the timeout ({result.seconds:.0f} s)"
    if any(word in text for word in MEMORY_WORDS) or result.code in (-9, 137):
        return "hang", "ran out of memory: " + _first_error_line(text)
    if result.escaped or "Traceback (most recent call last)" in text:
        return "traceback", result.escaped or _first_error_line(text)
    writes = tuple(getattr(case, "writes", ()))
    lost = [p for p, h in before.items() if after.get(p) != h and h != "dir"
            and not (result.code == 0 and _under(p, writes))]
    if lost:
        return "data loss", f"exit {result.code}; changed or removed: {', '.join(lost[:4])}"
    created = [p for p in after if p not in before]
    if result.code == 2:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        # a record the error line points to ("see the errors in rd/results.sqlite") is kept on purpose
        left = [p for p in created if not any(p.split("/")[0] in line for line in errors)]
        if left:
            return "partial folder", f"refused but left: {', '.join(left[:4])}"
        noise = [line for line in lines if not line.startswith(("error: ", "warning: "))]
        if len(errors) != 1 or noise or result.stdout.strip():
            return "unclear", f"exit 2 but not one error line: {' | '.join(lines[-3:])[:200]}"
        return "clean", errors[0][:200]
    if result.code == 0:
        if not getattr(case, "may_succeed", False):
            return "wrong output", "exit 0: the bad input was accepted" + (f" (wrote {created[0]})" if created else "")
        changed = [p for p in after if before.get(p) != after[p] and after[p] not in ("dir", "link")]
        problems = output_problems(folder, changed, case, result)
        if problems:
            return "wrong output", "; ".join(problems)[:300]
        return "clean", "exit 0, outputs checked"
    return "unclear", f"exit {result.code}: {_first_error_line(text)}"


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def run_case(case: object, workspace: object, mode: str = "in-process", timeout: float | None = None,
             memory: str = "8GiB", keep: bool = True) -> Verdict:
    """Set up the case's folder, run its command and classify the result (`keep`: keep a clean case's folder)."""
    folder = workspace.root / "cases" / case.slug
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    case.prepare(folder, workspace)
    before = snapshot(folder)
    if mode == "in-process":
        result = invoke(case.argv, folder, workspace.profile, timeout or 60.0)
    elif mode == "fork":
        result = invoke_forked(case.argv, folder, workspace.profile, timeout or 120.0, memory)
    else:
        result = invoke_subprocess(case.argv, folder, workspace.profile, timeout or 120.0, memory)
    outcome, detail = classify(case, result, before, snapshot(folder), folder)
    if outcome == "clean" and not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return Verdict(case.id, outcome, detail, result.seconds)
