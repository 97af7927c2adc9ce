"""The results store: one SQLite row per finished case, committed as soon as the case ends.

SQLite is transactional, so a run killed at any moment leaves every finished case intact and no
half-written row; the unique key (signal, model, seed, config_hash) makes a re-run skip them.

A store is the user's data: a file is checked through a read-only connection first, and one that is
not a store this inrkit can read (not SQLite, damaged, another program's database, a newer schema) is
refused with one line and left exactly as it is, never "repaired" by creating a fresh store over it.
Reports read it with SQL writes switched off (query_only).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigError

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
    history TEXT NOT NULL DEFAULT '[]',   -- JSON: [step, loss, psnr, seconds, samples(, iou)] rows
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
SCHEMA_VERSION = 1
"""PRAGMA user_version of the stores this inrkit writes; stores from before it read as 0, a newer one is refused."""
SQLITE_MAGIC = b"SQLite format 3\x00"


class ResultStore:
    """The `results.sqlite` of a benchmark folder.

    Reading a folder without a store gives no rows; the first write (or `create`) makes it. A file that
    is not a store this inrkit reads raises ConfigError and is left untouched.

    Example:
        >>> store = ResultStore("bench-out")  # doctest: +SKIP
        >>> len(store.rows(status="ok"))  # doctest: +SKIP
        18
        >>> ResultStore("my-photos").rows()  # doctest: +SKIP
        ConfigError: my-photos/results.sqlite: not an SQLite database; not an inrkit results store ...
    """

    FILENAME = "results.sqlite"

    def __init__(self, folder: str | Path, create: bool = False) -> None:
        self.folder = Path(folder)
        self.path = self.folder / self.FILENAME
        self._checked = self._created = False
        if create:
            self.create()

    def create(self) -> None:
        """Make the folder and an empty store if there is none; an existing file is checked, never replaced."""
        if self._created:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.check(new_ok=True)
        with self._write() as db:
            db.execute(SCHEMA)
            if "extra" not in {r[1] for r in db.execute("PRAGMA table_info(results)")}:  # a store from before it
                db.execute("ALTER TABLE results ADD COLUMN extra TEXT NOT NULL DEFAULT '{}'")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._created = self._checked = True

    def check(self, new_ok: bool = False) -> None:
        """Raise ConfigError (touching nothing) unless the file is a store this inrkit reads.

        A missing file passes; with `new_ok`, so does an empty one (a store killed while being created).
        """
        if self._checked or not self.path.exists():
            return
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise self._refuse(f"cannot read it ({exc.strerror or exc})") from None
        if not head and new_ok:
            return
        if head != SQLITE_MAGIC:
            raise self._refuse("not an SQLite database" + ("" if head else " (an empty file)"))
        with self._read() as db:
            problem = _schema_problem(db, new_ok)
        if problem:
            raise self._refuse(problem)
        self._checked = True

    def _refuse(self, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {problem}; not an inrkit results store this version can use "
                           "(left untouched)")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection: a report or a resume check can never change the file."""
        try:
            db = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=60)
        except sqlite3.Error as exc:
            raise self._refuse(f"cannot open it ({exc})") from None
        try:
            yield db
        except sqlite3.DatabaseError as exc:  # a truncated or damaged file shows up on the first read
            if "locked" in str(exc) or "busy" in str(exc):
                raise ConfigError(f"{self.path}: another process has held the store locked for a minute; "
                                  "try again when it is done") from None
            raise self._refuse(f"damaged ({exc})") from None
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers (reports) never block the writer
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: cannot write the results store ({exc})") from None
        finally:
            db.close()

    def _query(self, sql: str, params: tuple[Any, ...] = (), rows: bool = False) -> list[Any]:
        """Run a SELECT on the checked store (query_only: SQL cannot change it); no store yet means no rows.

        Once the file is known to be ours, an ordinary connection reads it: unlike a read-only one it
        tidies up the WAL side files on close, so a report leaves no results.sqlite-wal/-shm behind.
        """
        self.check()
        if not self.path.exists():
            return []
        db = sqlite3.connect(self.path, timeout=60)
        try:
            db.execute("PRAGMA query_only = ON")
            if rows:
                db.row_factory = sqlite3.Row
            return [dict(r) if rows else tuple(r) for r in db.execute(sql, params)]
        except sqlite3.DatabaseError as exc:
            raise self._refuse(f"damaged ({exc})") from None
        finally:
            db.close()

    def done_keys(self, include_errors: bool = True) -> set[Key]:
        """Keys of the finished cases (error rows too unless `include_errors` is False)."""
        query = "SELECT signal, model, seed, config_hash FROM results"
        if not include_errors:
            query += " WHERE status = 'ok'"
        return set(self._query(query))

    def add(self, row: dict[str, Any]) -> None:
        """Insert one finished case; a row with the same key (a retried error) is replaced."""
        self.create()
        values = [_encode(name, row.get(name)) for name in COLUMNS]
        with self._write() as db:
            db.execute(f"INSERT OR REPLACE INTO results ({', '.join(COLUMNS)}) "
                       f"VALUES ({', '.join('?' * len(COLUMNS))})", values)

    def remove(self, keys: set[Key]) -> int:
        """Forget these cases (to run them again); returns how many rows went."""
        self.create()
        with self._write() as db:
            return sum(db.execute("DELETE FROM results WHERE signal = ? AND model = ? AND seed = ? AND config_hash = ?",
                                  key).rowcount for key in keys)

    def rows(self, status: str | None = None) -> list[dict[str, Any]]:
        """All rows as dicts (JSON fields decoded), in insertion order."""
        query = "SELECT * FROM results" + (" WHERE status = ?" if status else "") + " ORDER BY id"
        rows = self._query(query, (status,) if status else (), rows=True)
        for row in rows:
            for name in JSON_FIELDS:
                try:
                    row[name] = json.loads(row[name]) if row.get(name) else _empty(name)
                except (TypeError, json.JSONDecodeError):
                    row[name] = None
                if type(row[name]) is not type(_empty(name)):  # noqa: E721  exactly a dict (or a list)
                    raise self._refuse(f"row {row.get('id')}: its {name} is not a JSON {type(_empty(name)).__name__}")
            for name, kind in KEY_TYPES.items():  # the row's key and status, as every reader relies on them
                if type(row.get(name)) is not kind:
                    raise self._refuse(f"row {row.get('id')}: its {name} is not a {kind.__name__}")
        return rows

    def count(self) -> int:
        found = self._query("SELECT COUNT(*) FROM results")
        return found[0][0] if found else 0


KEY_TYPES = {"signal": str, "model": str, "seed": int, "config_hash": str, "status": str}


def _schema_problem(db: sqlite3.Connection, new_ok: bool) -> str | None:
    """Why an SQLite file is not a store this inrkit reads (None: it is, or it is a new empty database)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        return (f"written by a newer inrkit (store schema {version}; this one reads up to {SCHEMA_VERSION}): "
                "upgrade inrkit")
    tables = sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    if "results" not in tables:
        if not tables and new_ok:
            return None
        return "an SQLite file without inrkit's results table" + (f" (it holds {', '.join(tables[:5])})"
                                                                   if tables else "")
    missing = [c for c in COLUMNS if c != "extra"] + ["id", "finished"]
    missing = sorted(set(missing) - {r[1] for r in db.execute("PRAGMA table_info(results)")})
    if missing:
        return f"its results table lacks inrkit's columns ({', '.join(missing[:4])})"
    damage = [r[0] for r in db.execute("PRAGMA quick_check")]
    return None if damage == ["ok"] else f"damaged ({damage[0]})"


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
