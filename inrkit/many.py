"""Fit every signal in a folder (or glob) into a neural-field dataset: what `inrkit fit-many` runs.

Files are fitted in chunks of `chunk` members through `fit_many`; each finished chunk is appended to
the dataset at once, so an interrupted run loses at most the chunk in flight and a re-run skips every
(file content, seed) already in the index. A member's seed is the base seed plus a number taken from
the file's content hash, so each file gets its own init (random per member) and keeps it when files
are added to the folder later.
"""

from __future__ import annotations

import glob
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .batched import Member, fit_many
from .errors import ConfigError, InrkitError
from .fields import FieldStore, content_hash, member_record, save_fields
from .fit import FitConfig, resolve_config
from .models import create_model
from .publish import RunLock
from .signals import Signal, load_signal
from .utils import parse_count


@dataclass
class ManySummary:
    """What a fit-many run did: counts, the dataset folder and the members fitted now."""

    folder: Path
    fitted: int = 0
    skipped_existing: int = 0
    unreadable: list[str] = field(default_factory=list)
    diverged: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    psnr: list[float] = field(default_factory=list)


def expand_sources(source: str | Path) -> list[Path]:
    """A folder's files (sorted, hidden ones left out) or a glob's matches; none is a ConfigError."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        files = sorted(Path(p) for p in glob.glob(str(source), recursive=True) if Path(p).is_file())
    if not files:
        raise ConfigError(f"{source}: no files to fit" + ("" if path.is_dir() or any(c in str(source) for c in "*?[")
                                                          else " (no such folder or file)"))
    return files


def member_seed(base: int, digest: str, k: int) -> int:
    """Seed of copy k of the file with this content hash: stable whatever else is in the folder."""
    return (base + int(digest[:7], 16) + k) % (2**31)


def load_all(files: list[Path], kind: str | None, options: dict[str, Any],
             warn: Callable[[str], None]) -> tuple[list[tuple[Path, Signal]], list[dict[str, Any]]]:
    """Load what can be loaded; every unreadable file is one warning and one index record."""
    loaded, bad = [], []
    for path in files:
        try:
            loaded.append((path, load_signal(path, kind, **options)))
        except (InrkitError, OSError, ValueError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0].removeprefix(f"{path}: ")
            warn(f"skipped {path}: {reason}")
            bad.append(member_record(path, None, 0, "unreadable", error=reason))
    if loaded:
        shapes: dict[tuple, list[str]] = {}
        for path, sig in loaded:
            shapes.setdefault((sig.kind, tuple(sig.values.shape)), []).append(path.name)
        if len(shapes) > 1:
            parts = [f"{len(v)} {k[0]} {'x'.join(map(str, k[1]))} (e.g. {v[0]})" for k, v in shapes.items()]
            raise ConfigError(f"fit-many needs one kind and shape, found {'; '.join(parts)}: "
                              "pass --size HxW (or --crop) to make them equal, or fit the groups apart")
    return loaded, bad


def run_fit_many(source: str | Path, model: str, out: str | Path, config: FitConfig | None = None, *,
                 seeds: int = 1, init: Any = "random", params: int | str | None = None, kind: str | None = None,
                 signal_options: dict[str, Any] | None = None, model_options: dict[str, Any] | None = None,
                 chunk: int = 64, warn: Callable[[str], None] = warnings.warn,
                 progress: Callable[[ManySummary], None] | None = None) -> ManySummary:
    """Fit each file of a folder or glob (`seeds` times) into the dataset at `out`; resumable.

    Example:
        >>> s = run_fit_many("crops/", "siren", "fields/crops", FitConfig(steps=300))  # doctest: +SKIP
        >>> s.fitted  # doctest: +SKIP
        64
    """
    config = config or FitConfig()
    if chunk < 1 or seeds < 1:
        raise ConfigError("--chunk and --seeds must be positive")
    files = expand_sources(source)
    store = FieldStore(out)
    summary = ManySummary(Path(out))
    loaded, bad = load_all(files, kind, signal_options or {}, warn)
    summary.unreadable = [b["path"] for b in bad]
    if not loaded:
        raise ConfigError(f"{source}: none of the {len(files)} files could be read")
    budget = parse_count(params)

    def factory(sig: Signal) -> Any:
        return create_model(model, signal=sig, params=budget, **(model_options or {}))

    probe = factory(loaded[0][1])  # refuse another architecture or setting before anything is written
    store.check_model(probe.model_info, asdict(resolve_config(config, probe, loaded[0][1])))
    with RunLock(Path(out).expanduser().resolve()):  # two runs appending to one dataset would lose rows
        store = FieldStore(out)  # as the last run left it
        if bad:
            store.append(bad, [None] * len(bad))
        done = store.finished()
        todo: list[tuple[Path, Signal, int]] = []
        for path, sig in loaded:
            digest = content_hash(path)
            for k in range(seeds):
                seed = member_seed(config.seed, digest, k)
                if (digest, seed) in done:
                    summary.skipped_existing += 1
                else:
                    todo.append((path, sig, seed))
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            members = fit_many([s for _, s, _ in part], factory, config, seeds=[seed for _, _, seed in part], init=init)
            save_fields(out, members, [p for p, _, _ in part])
            _count(summary, members)
            if progress:
                progress(summary)
            if summary.interrupted:
                break
    return summary


def _count(summary: ManySummary, members: list[Member]) -> None:
    for m in members:
        if m.status == "interrupted":
            summary.interrupted = True
        elif m.status == "diverged":
            summary.diverged += 1
        else:
            summary.fitted += 1
            summary.psnr.append(float(m.result.metrics.get("psnr", float("nan"))))
    if members and members[0].result is not None:
        summary.seconds += members[0].result.seconds
