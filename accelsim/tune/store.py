"""SQLite results store: every measured config, keyed by device fingerprint, shape, batch size, config.

Safe for several processes at once (Ray workers, local processes): WAL journal (readers never block
the writer), a busy timeout instead of "database is locked" errors, and one short `BEGIN IMMEDIATE`
transaction per write. A file that is another program's database is refused before anything is
written to it (no tables added, journal mode unchanged): the store marks its own files (`APPLICATION_ID`).
A row is written the moment a config is measured, so a killed run loses at
most the config in flight and a rerun reuses everything else. The first measurement of a key wins:
rows are never overwritten. The database must live on a local disk (SQLite's WAL mode does not
work over network file systems). Stdlib only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from accelsim.errors import UserError
from accelsim.tune.core import Measurement
from accelsim.tune.fingerprint import fingerprint_key
from accelsim.tune.space import Config, Problem, as_config, as_tuple, config_json

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fingerprints (
    key TEXT PRIMARY KEY,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    fingerprint TEXT NOT NULL REFERENCES fingerprints(key),
    kernel TEXT NOT NULL,
    shape TEXT NOT NULL,          -- canonical JSON {E, H, I, top_k, dtype}
    batch INTEGER NOT NULL,       -- M, tokens per call
    config TEXT NOT NULL,         -- canonical JSON of the six config keys
    status TEXT NOT NULL,
    median_s REAL, p20_s REAL, p80_s REAL, reps INTEGER,
    rel_err REAL,
    message TEXT NOT NULL DEFAULT '',
    created_utc TEXT NOT NULL,
    PRIMARY KEY (fingerprint, kernel, shape, batch, config)
);
"""
BUSY_TIMEOUT_MS = 60_000
# The file's marker: SQLite's header field for the application ("ACST") and the schema version. A file
# without it is claimed only when it is empty or holds exactly this schema (stores made before the
# marker); anything else is another program's database and is left untouched.
APPLICATION_ID = 0x41435354
SCHEMA_VERSION = 1
_TABLES = {"fingerprints": {"key", "json"},
           "results": {"fingerprint", "kernel", "shape", "batch", "config", "status", "median_s", "p20_s",
                       "p80_s", "reps", "rel_err", "message", "created_utc"}}


def default_db_path() -> Path:
    """$ACCELSIM_TUNE_DB, else $XDG_CACHE_HOME/accelsim/tune.sqlite (~/.cache/...)."""
    if os.environ.get("ACCELSIM_TUNE_DB"):
        return Path(os.environ["ACCELSIM_TUNE_DB"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "accelsim" / "tune.sqlite"


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


class ResultStore:
    """One connection per process (open it in the worker, not before forking).

    ``fingerprint`` binds the store to a device: ``get``/``put`` then act on that device's rows.
    Raises UserError if the file exists but is not a tuning database."""

    def __init__(self, path: str | os.PathLike[str], fingerprint: Mapping[str, str] | None = None,
                 kernel: str = "moe") -> None:
        self.path = Path(path)
        self.kernel = kernel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below.
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            with self._transaction() as db:  # claim (or recognise) the file before changing anything
                _claim(db, path)
            # only now, on a database that is ours: WAL (set once, persists in the file)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; WAL keeps it consistent
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise UserError(f"--db {path}: not a tuning database ({exc})") from None
        except UserError:
            self._db.close()
            raise
        self.fingerprint: dict[str, str] = {}
        self.fp_key = ""
        if fingerprint is not None:
            self.bind(fingerprint)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def bind(self, fingerprint: Mapping[str, str]) -> str:
        """Register a device fingerprint and make it the current one; returns its key."""
        self.fingerprint = {k: str(v) for k, v in fingerprint.items()}
        self.fp_key = fingerprint_key(self.fingerprint)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO fingerprints(key, json) VALUES (?, ?)",
                       (self.fp_key, json.dumps(self.fingerprint, sort_keys=True)))
        return self.fp_key

    def _need_fp(self) -> str:
        if not self.fp_key:
            raise RuntimeError("ResultStore: bind(fingerprint) before reading or writing results")
        return self.fp_key

    def get(self, problem: Problem, config: Config) -> Measurement | None:
        row = self._db.execute(
            "SELECT status, median_s, p20_s, p80_s, reps, rel_err, message FROM results WHERE fingerprint=? "
            "AND kernel=? AND shape=? AND batch=? AND config=?",
            (self._need_fp(), self.kernel, problem.shape_json, problem.m, config_json(config))).fetchone()
        return None if row is None else _measurement(row)

    def put(self, problem: Problem, config: Config, m: Measurement) -> None:
        """Insert one result in its own transaction; an existing row for the key is kept."""
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO results(fingerprint, kernel, shape, batch, config, status, median_s, "
                "p20_s, p80_s, reps, rel_err, message, created_utc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (self._need_fp(), self.kernel, problem.shape_json, problem.m, config_json(config), m.status,
                 _num(m.median_s), _num(m.p20_s), _num(m.p80_s), int(m.reps), _num(m.rel_err),
                 m.message[:2000], now))

    def results(self, problem: Problem) -> dict[tuple[int, ...], Measurement]:
        """All rows of the bound device for this problem (shape and batch size), by config tuple."""
        rows = self._db.execute(
            "SELECT config, status, median_s, p20_s, p80_s, reps, rel_err, message FROM results "
            "WHERE fingerprint=? AND kernel=? AND shape=? AND batch=?",
            (self._need_fp(), self.kernel, problem.shape_json, problem.m)).fetchall()
        return {as_tuple(json.loads(r[0])): _measurement(r[1:]) for r in rows}

    def best(self, problem: Problem) -> tuple[Config, Measurement] | None:
        """The fastest ok config stored for this device and problem."""
        row = self._db.execute(
            "SELECT config, status, median_s, p20_s, p80_s, reps, rel_err, message FROM results "
            "WHERE fingerprint=? AND kernel=? AND shape=? AND batch=? AND status='ok' AND median_s > 0 "
            "ORDER BY median_s, config LIMIT 1",
            (self._need_fp(), self.kernel, problem.shape_json, problem.m)).fetchone()
        return None if row is None else (as_config(as_tuple(json.loads(row[0]))), _measurement(row[1:]))

    def count(self, where: str = "", params: tuple[Any, ...] = ()) -> int:
        return int(self._db.execute(f"SELECT COUNT(*) FROM results {where}", params).fetchone()[0])

    def integrity_ok(self) -> bool:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _claim(db: sqlite3.Connection, path: str | os.PathLike[str]) -> None:
    """Inside a write transaction: create the schema and marker in an empty database, accept our own,
    and raise UserError (writing nothing) for any other database."""
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if app_id == APPLICATION_ID:
        if version != SCHEMA_VERSION:
            raise UserError(f"--db {path}: a tuning database of schema version {version}; this accelsim "
                            f"reads version {SCHEMA_VERSION}")
        return
    if app_id != 0 or version != 0:
        raise UserError(f"--db {path}: another program's SQLite database (application id {app_id:#x}); "
                        "give a new file or an accelsim tuning database")
    legacy = tables == set(_TABLES) and all(
        {r[1] for r in db.execute(f"PRAGMA table_info({t})")} == cols for t, cols in _TABLES.items())
    if tables and not legacy:
        shown = ", ".join(sorted(tables)[:5])
        raise UserError(f"--db {path}: an SQLite database that is not an accelsim tuning store (tables: "
                        f"{shown}); give a new file or an accelsim tuning database")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _measurement(row: tuple[Any, ...]) -> Measurement:
    status, median, p20, p80, reps, rel, msg = row
    nan = math.nan
    return Measurement(status, nan if median is None else median, nan if p20 is None else p20,
                       nan if p80 is None else p80, int(reps or 0), nan if rel is None else rel, msg or "")
