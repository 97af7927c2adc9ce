"""Where a number came from: code version, command line, hardware and the exact input file.

One helper for every record inrkit writes (a run's `metrics.json`, each bench row), so a result
can be traced to the commit that made it and the bytes it was fitted to.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent  # the checkout, when inrkit runs from one


def git_state(repo: str | Path = _REPO) -> dict[str, Any] | None:
    """{"commit", "dirty"} of the checkout inrkit runs from; None for an installed copy or without git.

    `dirty` is True when tracked files differ from the commit (untracked files do not count). Read anew
    for every record (two quick git calls), so a long benchmark's rows name the commit current at each.

    Example:
        >>> state = git_state()
        >>> state is None or (len(state["commit"]) == 40 and isinstance(state["dirty"], bool))
        True
    """
    if not (Path(repo) / ".git").exists():
        return None
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()

        return {"commit": git("rev-parse", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):  # no git binary, or not a repository after all
        return None


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name ("AMD EPYC 7B13"), falling back to the architecture ("x86_64")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5).stdout.strip() or platform.machine()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def gpu_model(device: str | None = None) -> str | None:
    """The name of the CUDA device a run used ("NVIDIA H100 80GB HBM3"); None on CPU/MPS."""
    if not device or not str(device).startswith("cuda"):
        return None
    import torch

    try:
        return torch.cuda.get_device_name(torch.device(device))
    except (RuntimeError, AssertionError, ValueError):
        return None


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime key the cache: a changed file is re-read
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str | None:
    """sha256 of a file's bytes; for a folder (a video's frames), of its files' names and hashes in order.

    None when the path does not exist (a signal built in memory). Cached while the file is unchanged,
    so a benchmark hashing the same signal for every case reads it once.

    Example:
        >>> len(file_sha256("data/astronaut.png")), file_sha256("no/such/file.png")
        (64, None)
    """
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for child in sorted(p for p in path.iterdir() if p.is_file()):
            digest.update(f"{child.name}\0{file_sha256(child)}\n".encode())
        return digest.hexdigest()
    if not path.is_file():
        return None
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def command_line() -> str:
    """The command that started this process, shell-quoted ("inrkit fit cat.png --steps 300")."""
    argv = list(sys.argv) or [sys.executable]
    argv[0] = os.path.basename(argv[0]) if argv[0].endswith(("inrkit", "inrkit.exe")) else argv[0]
    return " ".join(shlex.quote(a) for a in argv)


def provenance(source: str | Path | None = None, device: str | None = None) -> dict[str, Any]:
    """The record stored with every result: git state, command line, CPU/GPU model, signal file hash.

    Args:
        source: the signal's file or folder (None or a missing path: no hash).
        device: the torch device the work ran on ("cuda:0" adds the GPU's name).

    Example:
        >>> sorted(provenance("data/astronaut.png", "cpu"))
        ['command', 'cpu', 'git', 'gpu', 'signal_sha256']
    """
    return {"git": git_state(), "command": command_line(), "cpu": cpu_model(), "gpu": gpu_model(device),
            "signal_sha256": file_sha256(source) if source else None}
