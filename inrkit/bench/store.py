"""The results store: one SQLite row per finished case, committed as soon as the case ends.

SQLite is transactional, so a run killed at any moment leaves every finished case intact and no
half-written row; the unique key (signal, model, seed, config_hash) makes a re-run skip them.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    signal TEXT NOT NULL,
    signal_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    model_name TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    status TEXT NOT NULL,            -- 'ok' or 'error'
    error TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',   -- JSON: every metric the kind reports
    params INTEGER,
    steps INTEGER,
    seconds REAL,
    time_to_target REAL,
    device TEXT,
    versions TEXT NOT NULL DEFAULT '{}',  -- JSON: inrkit, torch, python
    config TEXT NOT NULL DEFAULT '{}',    -- JSON: the case as run (fit settings, loader options, overrides)
    history TEXT NOT NULL DEFAULT '[]',   -- JSON: [step, loss, psnr, seconds] rows
    extra TEXT NOT NULL DEFAULT '{}',     -- JSON: what a runner records beyond metrics (rd: bpp per bit width)
    thumbnail TEXT,
    reconstruction TEXT,
    finished TEXT NOT NULL DEFAULT (datetime('now')),
    UNIQUE (signal, model, seed, config_hash)
)
"""
JSON_FIELDS = ("metrics", "versions", "config", "history", "extra")
COLUMNS = ("signal", "signal_name", "kind", "model", "model_name", "seed", "config_hash", "status", "error",
           "metrics", "params", "steps", "seconds", "time_to_target", "device", "versions", "config", "history",
           "extra", "thumbnail", "reconstruction")
Key = tuple[str, str, int, str]


class ResultStore:
    """The `results.sqlite` of a benchmark folder.

    Example:
        >>> store = ResultStore("bench-out")  # doctest: +SKIP
        >>> len(store.rows(status="ok"))  # doctest: +SKIP
        18
    """

    FILENAME = "results.sqlite"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / self.FILENAME
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(SCHEMA)
            if "extra" not in {r[1] for r in db.execute("PRAGMA table_info(results)")}:  # a store from before it
                db.execute("ALTER TABLE results ADD COLUMN extra TEXT NOT NULL DEFAULT '{}'")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers (reports) never block the writer
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        finally:
            db.close()

    def done_keys(self, include_errors: bool = True) -> set[Key]:
        """Keys of the finished cases (error rows too unless `include_errors` is False)."""
        query = "SELECT signal, model, seed, config_hash FROM results"
        if not include_errors:
            query += " WHERE status = 'ok'"
        with self._connect() as db:
            return {tuple(r) for r in db.execute(query)}

    def add(self, row: dict[str, Any]) -> None:
        """Insert one finished case; a row with the same key (a retried error) is replaced."""
        values = [_encode(name, row.get(name)) for name in COLUMNS]
        with self._connect() as db:
            db.execute(f"INSERT OR REPLACE INTO results ({', '.join(COLUMNS)}) "
                       f"VALUES ({', '.join('?' * len(COLUMNS))})", values)

    def remove(self, keys: set[Key]) -> int:
        """Forget these cases (to run them again); returns how many rows went."""
        with self._connect() as db:
            return sum(db.execute("DELETE FROM results WHERE signal = ? AND model = ? AND seed = ? AND config_hash = ?",
                                  key).rowcount for key in keys)

    def rows(self, status: str | None = None) -> list[dict[str, Any]]:
        """All rows as dicts (JSON fields decoded), in insertion order."""
        query = "SELECT * FROM results" + (" WHERE status = ?" if status else "") + " ORDER BY id"
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = [dict(r) for r in db.execute(query, (status,) if status else ())]
        for row in rows:
            for name in JSON_FIELDS:
                row[name] = json.loads(row[name]) if row[name] else _empty(name)
        return rows

    def count(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]


def _empty(name: str) -> Any:
    return [] if name == "history" else {}


def row_key(row: dict[str, Any]) -> Key:
    """The unique key of a stored row (the same as its case's `Case.key`)."""
    return (row["signal"], row["model"], row["seed"], row["config_hash"])


def _encode(name: str, value: Any) -> Any:
    if name in JSON_FIELDS:
        return json.dumps(_finite(value if value is not None else _empty(name)))
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _finite(value: Any) -> Any:
    """A not-yet-measured PSNR (NaN) is stored as null; a perfect one (inf) stays inf (JSON 'Infinity')."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
