"""Run folders that are never mixed and never lost: path checks, a lock, staging and atomic publication.

A fit writes into a hidden sibling `.<name>.partial-<pid>` and, when it is whole, swaps it with the
run folder in one step; a lock file `.<name>.lock` beside the folder keeps a second fit out. Whatever
a kill leaves behind is named after its owner's pid and cleared by the next fit into the same place
once that pid is dead. Files are replaced through `.<name>.<pid>.tmp` for the same reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows: no advisory locks, fits are not guarded)
    fcntl = None  # type: ignore[assignment]

SYSTEM_ROOTS = ("/proc", "/sys", "/dev")


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _dead_owned(folder: Path, prefix: str, suffix: str = "") -> list[Path]:
    """Entries `<prefix><pid><suffix>` of `folder` whose pid is dead (not glob: names may hold brackets)."""
    found = []
    for entry in folder.iterdir() if folder.is_dir() else ():
        digits = entry.name[len(prefix):len(entry.name) - len(suffix)]
        if entry.name.startswith(prefix) and entry.name.endswith(suffix) and digits.isdigit() \
                and int(digits) != os.getpid() and not alive(int(digits)):
            found.append(entry)
    return found


def leftovers(path: Path, tag: str) -> list[Path]:
    """Siblings `.<name>.<tag>-<pid>` of `path` whose owner is dead, newest first."""
    found = _dead_owned(path.parent, f".{path.name}.{tag}-")
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def replace_file(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write a file through a pid-named temporary and rename it into place (a kill leaves the old file).

    Temporaries of dead writers of the same file are removed first, so kills leave nothing behind.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "a.txt"
        >>> _ = replace_file(target, lambda tmp: tmp.write_text("hi"))
        >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
        ('hi', ['a.txt'])
    """
    path = Path(path)
    for stale in _dead_owned(path.parent, f".{path.name}.", ".tmp"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---- where a run may go ------------------------------------------------------------------------

def check_target(out: str | Path, known: Callable[[str], bool]) -> Path:
    """Refuse an output folder that cannot be (re)written as a run, touching nothing; returns it resolved.

    `known(name)` says whether an entry of an existing folder is something a run writes: a folder
    holding anything else is not replaced (publishing swaps the whole folder).
    """
    target = Path(out).expanduser().resolve()
    if target.parent == target:
        raise ConfigError(f"--out {out}: not a folder a run can be written to")
    if any(target == Path(root) or Path(root) in target.parents for root in SYSTEM_ROOTS):
        raise ConfigError(f"--out {out}: {target} is a system folder, not a place for a run")
    if target.exists():
        if not target.is_dir():
            raise ConfigError(f"--out {out}: is a file, not a folder")
        try:
            foreign = sorted(p.name for p in target.iterdir() if not known(p.name))
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot read the folder ({exc.strerror or exc})") from None
        if foreign:
            raise ConfigError(f"--out {out}: holds files a fit does not write ({', '.join(foreign[:3])}"
                              f"{', ...' if len(foreign) > 3 else ''}); move them or choose another --out")
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"--out {out}: not writable ({ancestor} is a file, not a folder)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: not writable (no permission to write in {ancestor})")
    return target


# ---- one writer per folder ---------------------------------------------------------------------

class RunLock:
    """An exclusive lock on `.<name>.lock` beside a run folder, taken without waiting.

    flock locks die with their process, so a killed fit never blocks the next one. The lock file
    is removed on release; a taker checks that the file it locked is still the one at the path
    (otherwise a fit that opened it just before the removal would hold a lock nobody else sees).
    Parent folders created for the run are removed again if the run never got written.
    """

    def __init__(self, target: Path) -> None:
        self.target, self.path = target, target.parent / f".{target.name}.lock"
        self.created: list[Path] = []
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        missing = [p for p in [self.target.parent, *self.target.parent.parents] if not p.exists()]
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {self.target.parent} ({exc.strerror or exc})") from exc
        self.created = missing
        try:
            self.fd = self._take() if fcntl is not None else None
        except BaseException:
            self._remove_created()
            raise
        return self

    def _take(self) -> int:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise ConfigError(f"{self.target} is being written by another fit (pid {holder}); wait for it "
                                  "or choose another --out") from None
            with contextlib.suppress(FileNotFoundError):
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    os.ftruncate(fd, 0)
                    os.write(fd, str(os.getpid()).encode())
                    return fd
            os.close(fd)  # removed by its last holder while we waited: take the new one

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
        if not self.target.exists():
            self._remove_created()

    def _remove_created(self) -> None:
        for folder in self.created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


# ---- staging and publishing --------------------------------------------------------------------

def recover(target: Path) -> None:
    """Undo a publication killed halfway through the fallback path (old run moved away, new not yet in)."""
    old = leftovers(target, "old")
    if not target.exists() and old:
        os.replace(old[0], target)
    for stale in leftovers(target, "partial"):
        if not (stale / "checkpoint.pt").exists():  # nothing to resume from: a dead fit's scraps
            _remove(stale)


@contextlib.contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A fresh `.<name>.partial-<pid>` folder to write a run into.

    When writing fails (a full disk) or a second Ctrl-C stops the final evaluation, a folder holding a
    checkpoint stays, resumable with --resume, until the next fit into the same place publishes; on
    any other failure (bad input, a diverged fit) it is removed.
    """
    work = target.parent / f".{target.name}.partial-{os.getpid()}"
    _remove(work)  # a dead process that had our pid
    work.mkdir()
    try:
        yield work
    except BaseException as exc:
        if not (isinstance(exc, (OSError, KeyboardInterrupt)) and (work / "checkpoint.pt").exists()):
            _remove(work)
        raise


def publish(work: Path, target: Path) -> None:
    """Put the finished run `work` in place of `target` in one step, then clear what earlier fits left.

    Where the kernel can swap two folders atomically (Linux renameat2 RENAME_EXCHANGE) the folder is
    always one whole run, even for a reader; the old run then sits under `work`'s name until removed,
    and a kill there leaves it for the next fit to clear. Elsewhere the old run is first renamed to
    `.<name>.old-<pid>`: a kill between the two renames leaves no folder for an instant, and
    `recover` puts the old one back on the next start, so a kill still leaves one whole run.
    """
    if not target.exists():
        os.replace(work, target)
    elif _exchange(work, target):
        _remove(work)
    else:
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
        os.replace(work, target)
        _remove(old)
    for stale in leftovers(target, "partial") + leftovers(target, "old"):
        _remove(stale)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # glibc before 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


# ---- stopping ----------------------------------------------------------------------------------

@contextlib.contextmanager
def stops_interrupt() -> Iterator[None]:
    """SIGTERM stops like Ctrl-C (a KeyboardInterrupt), so a fit saves and publishes what it learnt."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    with _handlers({signal.SIGTERM: interrupt}):
        yield


@contextlib.contextmanager
def stops_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block (writing and publishing a run) is done, then interrupt."""
    caught: list[int] = []
    with _handlers({signal.SIGINT: lambda s, f: caught.append(s), signal.SIGTERM: lambda s, f: caught.append(s)}):
        yield
    if caught:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _handlers(handlers: dict[int, Callable[[int, object], None]]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set them
        yield
        return
    before = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
