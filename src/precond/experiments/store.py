"""The results store: one SQLite file (WAL mode, busy timeout), safe to kill and to share.

* Each run is a row keyed by :attr:`RunConfig.key` (a hash of everything that determines
  its record), written with ``INSERT OR IGNORE`` in its own transaction: a sweep killed at
  any moment loses no finished run, and a restarted one skips every key already present.
* Each run row and each experiment row carry the experiment's :attr:`Experiment.spec_hash`.
  Readers (:meth:`Store.runs`, so tuning, reports and exports) see only the runs of the
  spec an experiment was last run with. A different spec under a stored name is refused
  (:class:`SpecConflict`) unless ``replace=True``, which moves the old spec's runs to
  ``archived_runs`` and keeps those the new spec has too (same key, same record). Stores
  written before spec hashes open as they are: their runs have spec ``NULL`` ("unknown").
* Run claims (table ``claims``: owner, host, pid, heartbeat) keep two sweeps on one store
  from computing the same run: a sweep claims a run before starting it and releases the
  claim with the result. A claim whose heartbeat is older than the lease timeout, or whose
  owner is a dead process on this host, is stale and can be taken over.
* WAL journaling and a busy timeout let two sweeps write one store at once.
* A run that raised (not a divergence) goes to ``failures`` and is retried next time.
* A file that is not an SQLite database of this kind is refused with :class:`StoreError`
  before anything is written to it.
"""

from __future__ import annotations

import collections
import csv
import json
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: the store ``precond run`` and ``precond report`` use when none is given
DEFAULT_STORE = "results.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    problem TEXT NOT NULL,
    problem_args TEXT NOT NULL,
    optimizer TEXT NOT NULL,
    label TEXT NOT NULL,
    hyperparameters TEXT NOT NULL,
    seed INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'diverged')),
    diverged_step INTEGER,
    final_metrics TEXT NOT NULL,
    history TEXT NOT NULL,
    wall_time REAL NOT NULL,
    mode TEXT NOT NULL,
    config TEXT NOT NULL,
    env TEXT NOT NULL,
    finished_at REAL NOT NULL,
    spec_hash TEXT
);
CREATE INDEX IF NOT EXISTS runs_experiment ON runs (experiment);
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    problem TEXT NOT NULL,
    meta TEXT NOT NULL,
    updated_at REAL NOT NULL,
    spec_hash TEXT
);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT NOT NULL,
    experiment TEXT NOT NULL,
    config TEXT NOT NULL,
    error TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL
);
"""
#: created after the migration, so that it has every column of ``runs`` (and when the run was archived)
ARCHIVE = "CREATE TABLE IF NOT EXISTS archived_runs AS SELECT *, 0.0 AS archived_at FROM runs WHERE 0"

RUN_COLUMNS = ("key", "experiment", "problem", "problem_args", "optimizer", "label", "hyperparameters", "seed",
               "steps", "status", "diverged_step", "final_metrics", "history", "wall_time", "mode", "config",
               "env", "finished_at", "spec_hash")  # fmt: skip
_JSON_COLUMNS = ("problem_args", "hyperparameters", "final_metrics", "history", "config", "env")
SQLITE_MAGIC = b"SQLite format 3\x00"
#: a claim whose heartbeat is older than this (seconds) is stale; owners refresh it every LEASE_TIMEOUT / 6
LEASE_TIMEOUT = 60.0


class StoreError(ValueError):
    """The file is not a precond results store (not SQLite, damaged, or another program's database)."""


class SpecConflict(ValueError):
    """The store holds runs of another spec under this experiment name."""

    def __init__(self, path: Path, name: str, n_runs: int, old_spec: str | None, new_spec: str) -> None:
        self.experiment, self.n_runs = name, n_runs
        if old_spec is None:
            what = f"{n_runs} runs written before precond tied runs to their spec (unknown spec)"
        else:
            changed = _changed_keys(old_spec, new_spec)
            what = f"{n_runs} runs of a different spec" + (f" (changed: {', '.join(changed)})" if changed else "")
        super().__init__(f"{path}: experiment {name!r} already holds {what}; give this spec a new name, "
                         f"or rerun with --replace to archive the old runs")  # fmt: skip


def _changed_keys(old: str, new: str) -> list[str]:
    """The top-level spec keys (``budget``, ``seeds``, ...) whose values differ between two spec texts."""
    try:
        a, b = tomllib.loads(old), tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        return []
    return sorted(k for k in set(a) | set(b) if k != "description" and a.get(k) != b.get(k))


@dataclass(frozen=True)
class Lease:
    """Who holds a claim: a unique owner id, with the host and pid that liveness is judged by."""

    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=True, default=lambda o: list(o) if isinstance(o, tuple) else str(o))


#: stores this process has open (real path -> count). Opening and closing a file that SQLite
#: has open in the same process drops SQLite's POSIX locks on it (see "How To Corrupt An SQLite
#: Database File", sqlite.org/howtocorrupt.html, 2.2), after which another process can checkpoint
#: and delete the WAL under the writer: so the header is read only before the first connection.
_OPEN: collections.Counter[str] = collections.Counter()
_OPEN_LOCK = threading.Lock()


def _in_use(path: Path) -> bool:
    """A WAL file beside the store: some process has it open, and a checkpoint may be copying pages
    back, which writes page 1 (with the new page count) before the pages after it, so a file shorter
    than its header says is then no damage (seen: another process's ``make demo`` claims run)."""
    return Path(f"{path}-wal").exists()


def check_store_file(path: Path) -> None:
    """Raise :class:`StoreError` if ``path`` exists and is not an intact SQLite file; reads only.
    Never call it on a file this process has an SQLite connection to (see :data:`_OPEN`)."""
    if not path.exists():
        return
    why = None
    if path.is_dir():
        why = "it is a directory"
    elif path.stat().st_size:  # an empty file is an empty database (SQLite makes new ones so)
        with open(path, "rb") as fh:
            head = fh.read(100)
        size = path.stat().st_size
        page = int.from_bytes(head[16:18], "big") if len(head) >= 18 else 0
        page = 65536 if page == 1 else page
        pages = int.from_bytes(head[28:32], "big") if len(head) == 100 else 0
        if not head.startswith(SQLITE_MAGIC):
            why = "the file does not start with the SQLite header"
        elif len(head) < 100 or (pages and head[24:28] == head[92:96] and size < pages * page and not _in_use(path)):
            why = f"the file is truncated ({size} bytes; its header says {pages * page})"
    if why:
        raise StoreError(f"{path}: not a precond results store (SQLite): {why}")


class Store:
    """A results store at ``path`` (created if absent); :class:`StoreError` if ``path`` is something else."""

    def __init__(self, path: str | Path, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self._real = os.path.realpath(self.path)
        with _OPEN_LOCK:
            if not _OPEN[self._real]:
                check_store_file(self.path)
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
            _OPEN[self._real] += 1
        try:
            tables = {t for (t,) in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "runs" not in tables:
                raise StoreError(f"{self.path}: not a precond results store (SQLite): it is an SQLite database "
                                 f"without a runs table (its tables: {', '.join(sorted(tables))})")  # fmt: skip
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._retry(lambda: self.conn.execute("PRAGMA journal_mode = WAL"))
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self._retry(lambda: self.conn.executescript(SCHEMA))
            self._retry(self._migrate)
        except sqlite3.DatabaseError as exc:
            self.close()
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            raise StoreError(f"{self.path}: not a precond results store (SQLite): {exc}") from None
        except BaseException:
            self.close()
            raise

    def _migrate(self) -> None:
        """Stores from before spec hashes: add the ``spec_hash`` columns (``NULL``: unknown spec)."""
        for table in ("runs", "experiments"):
            if "spec_hash" not in {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}:
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN spec_hash TEXT")
        self.conn.execute(ARCHIVE)

    def _retry(self, fn, tries: int = 50):
        for i in range(tries):
            try:
                return fn()
            except sqlite3.OperationalError as exc:  # schema creation racing another process
                if "locked" not in str(exc) or i == tries - 1:
                    raise
                time.sleep(0.05 * (i + 1))

    def _transaction(self, fn):
        """``fn(cursor)`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any exception), retried while locked."""

        def tx():
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                out = fn(cur)
                cur.execute("COMMIT")
                return out
            except BaseException:
                cur.execute("ROLLBACK")
                raise

        return self._retry(tx)

    def close(self) -> None:
        with _OPEN_LOCK:
            if self.conn is not None:
                self.conn.close()
                self.conn = None  # type: ignore[assignment]
                _OPEN[self._real] -= 1

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- writing -------------------------------------------------------------------------------
    def put_experiment(self, name: str, spec_text: str, problem: str, meta: dict[str, Any], spec_hash: str | None = None,
                       keys: Iterable[str] = (), *, replace: bool = False) -> int:  # fmt: skip
        """Record experiment ``name`` as run by the spec with ``spec_hash`` (whose run keys are ``keys``).

        If the store holds runs of ``name`` from another spec (or of unknown spec), raises
        :class:`SpecConflict`, unless ``replace``: then those runs move to ``archived_runs``,
        except the ones whose key the new spec has (same key, same record), which are kept.
        Returns the number of runs archived.
        """
        keys = list(keys)

        def tx(cur: sqlite3.Cursor) -> int:
            row = cur.execute("SELECT spec, spec_hash FROM experiments WHERE name = ?", (name,)).fetchone()
            (stale,) = cur.execute("SELECT count(*) FROM runs WHERE experiment = ? AND spec_hash IS NOT ?",
                                   (name, spec_hash)).fetchone()  # fmt: skip
            archived = 0
            if stale:
                old_spec = row[0] if row is not None and row[1] is not None else None
                if not replace:
                    raise SpecConflict(self.path, name, stale, old_spec, spec_text)
                cur.executemany("UPDATE runs SET spec_hash = ? WHERE experiment = ? AND key = ?",
                                [(spec_hash, name, k) for k in keys])  # fmt: skip
                cols = ", ".join(RUN_COLUMNS)
                where = "WHERE experiment = ? AND spec_hash IS NOT ?"
                cur.execute(f"INSERT INTO archived_runs ({cols}, archived_at) SELECT {cols}, ? FROM runs {where}",
                            (time.time(), name, spec_hash))  # fmt: skip
                archived = cur.execute(f"DELETE FROM runs {where}", (name, spec_hash)).rowcount
                cur.execute("DELETE FROM failures WHERE experiment = ?", (name,))
            cur.execute(
                "INSERT OR REPLACE INTO experiments (name, spec, problem, meta, updated_at, spec_hash) VALUES (?, ?, ?, ?, ?, ?)",
                (name, spec_text, problem, _dumps(meta), time.time(), spec_hash),
            )
            return archived

        return self._transaction(tx)

    def put_runs(self, records: Iterable[dict[str, Any]]) -> int:
        """Insert finished runs in one transaction and release their claims; keys already present are left alone.
        Returns the number inserted."""
        rows = []
        for r in records:
            r = dict(r)
            for c in _JSON_COLUMNS:
                r[c] = _dumps(r[c])
            r.setdefault("finished_at", time.time())
            r.setdefault("spec_hash", None)
            rows.append(tuple(r[c] for c in RUN_COLUMNS))
        if not rows:
            return 0
        sql = f"INSERT OR IGNORE INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"

        def tx(cur: sqlite3.Cursor) -> int:
            before = self.conn.total_changes
            cur.executemany(sql, rows)
            n = self.conn.total_changes - before
            cur.executemany("DELETE FROM claims WHERE key = ?", [(r[0],) for r in rows])
            return n

        return self._transaction(tx)

    def put_failure(self, key: str, experiment: str, config: dict[str, Any], error: str) -> None:
        def tx(cur: sqlite3.Cursor) -> None:
            cur.execute("INSERT INTO failures (key, experiment, config, error, at) VALUES (?, ?, ?, ?, ?)",
                        (key, experiment, _dumps(config), error, time.time()))  # fmt: skip
            cur.execute("DELETE FROM claims WHERE key = ?", (key,))

        self._transaction(tx)

    # ---- claims --------------------------------------------------------------------------------
    def claim(self, keys: Iterable[str], experiment: str, lease: Lease, timeout: float = LEASE_TIMEOUT) -> tuple[list[str], list[str]]:
        """Claim the runs ``keys`` for ``lease``: ``(claimed, taken)``, taken being the keys already in
        ``runs`` or under a live claim of another owner (see the module doc for stale claims)."""
        from .procs import pid_alive

        keys = list(keys)

        def tx(cur: sqlite3.Cursor) -> tuple[list[str], list[str]]:
            now = time.time()
            claimed, taken = [], []
            for k in keys:
                if cur.execute("SELECT 1 FROM runs WHERE key = ?", (k,)).fetchone():
                    taken.append(k)
                    continue
                c = cur.execute("SELECT owner, host, pid, heartbeat FROM claims WHERE key = ?", (k,)).fetchone()
                if c is not None and c[0] != lease.owner and now - c[3] < timeout and not (c[1] == lease.host and not pid_alive(c[2])):
                    taken.append(k)
                    continue
                cur.execute("INSERT OR REPLACE INTO claims (key, experiment, owner, host, pid, heartbeat) VALUES (?, ?, ?, ?, ?, ?)",
                            (k, experiment, lease.owner, lease.host, lease.pid, now))  # fmt: skip
                claimed.append(k)
            return claimed, taken

        return self._transaction(tx)

    def heartbeat(self, lease: Lease) -> None:
        """Refresh every claim of ``lease`` (so that others do not take them over)."""
        self._retry(lambda: self.conn.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), lease.owner)))

    def release(self, lease: Lease) -> None:
        """Drop every claim of ``lease`` (runs it will not finish)."""
        self._retry(lambda: self.conn.execute("DELETE FROM claims WHERE owner = ?", (lease.owner,)))

    def claims(self, experiment: str | None = None) -> list[dict[str, Any]]:
        cols = ("key", "experiment", "owner", "host", "pid", "heartbeat")
        sql = f"SELECT {', '.join(cols)} FROM claims" + (" WHERE experiment = ?" if experiment is not None else "")
        return [dict(zip(cols, r)) for r in self.conn.execute(sql, () if experiment is None else (experiment,))]

    # ---- reading -------------------------------------------------------------------------------
    def done_keys(self, experiment: str | None = None) -> set[str]:
        if experiment is None:
            return {k for (k,) in self.conn.execute("SELECT key FROM runs")}
        return {k for (k,) in self.conn.execute("SELECT key FROM runs WHERE experiment = ?", (experiment,))}

    def experiments(self) -> list[dict[str, Any]]:
        out = []
        for name, spec, problem, meta, updated, spec_hash in self.conn.execute(
            "SELECT name, spec, problem, meta, updated_at, spec_hash FROM experiments ORDER BY name"
        ):
            out.append({"name": name, "spec": spec, "problem": problem, "meta": json.loads(meta), "updated_at": updated,
                        "spec_hash": spec_hash})  # fmt: skip
        return out

    def runs(self, experiment: str | None = None, *, history: bool = True, current: bool = True) -> list[dict[str, Any]]:
        """Run records (JSON columns decoded), by label, hyperparameters and seed.

        ``current`` (default): only the runs of the spec each experiment was last run with
        (``spec_hash`` equal to the experiment's; ``NULL`` = ``NULL`` for stores from before
        spec hashes); ``current=False``: every run in the ``runs`` table.
        """
        cols = [c for c in RUN_COLUMNS if history or c != "history"]
        sql = f"SELECT {', '.join('r.' + c for c in cols)} FROM runs r LEFT JOIN experiments e ON e.name = r.experiment"
        where, args = [], []
        if current:
            where.append("(e.name IS NULL OR r.spec_hash IS e.spec_hash)")
        if experiment is not None:
            where.append("r.experiment = ?")
            args.append(experiment)
        if where:
            sql += " WHERE " + " AND ".join(where)
        out = []
        for row in self.conn.execute(sql + " ORDER BY r.label, r.hyperparameters, r.seed", args):
            r = dict(zip(cols, row))
            for c in _JSON_COLUMNS:
                if c in r:
                    r[c] = json.loads(r[c])
            out.append(r)
        return out

    def failures(self, experiment: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT key, experiment, config, error, at FROM failures"
        args: tuple[Any, ...] = ()
        if experiment is not None:
            sql += " WHERE experiment = ?"
            args = (experiment,)
        return [dict(zip(("key", "experiment", "config", "error", "at"), r)) for r in self.conn.execute(sql, args)]

    # ---- export --------------------------------------------------------------------------------
    def flat_rows(self, experiment: str | None = None) -> list[dict[str, Any]]:
        """One flat dict per run: config columns, ``hp.<name>`` and ``final.<metric>``."""
        rows = []
        for r in self.runs(experiment, history=False):
            flat = {k: r[k] for k in ("key", "experiment", "problem", "optimizer", "label", "seed", "steps", "status",
                                       "diverged_step", "wall_time", "mode", "spec_hash")}  # fmt: skip
            flat["problem_args"] = _dumps(r["problem_args"])
            for prefix, values in (("hp", r["hyperparameters"]), ("final", r["final_metrics"])):
                flat.update({f"{prefix}.{k}": _dumps(v) if isinstance(v, (list, tuple, dict)) else v for k, v in values.items()})
            rows.append(flat)
        return rows

    def _flat_table(self, experiment: str | None) -> tuple[list[dict[str, Any]], list[str]]:
        """:meth:`flat_rows` and their columns, in order of first appearance."""
        rows = self.flat_rows(experiment)
        cols: list[str] = []
        for r in rows:
            cols.extend(c for c in r if c not in cols)
        return rows, cols

    def export_csv(self, path: str | Path, experiment: str | None = None) -> int:
        rows, cols = self._flat_table(experiment)
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
        return len(rows)

    def export_parquet(self, path: str | Path, experiment: str | None = None) -> int:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise RuntimeError(
                "Parquet export needs pyarrow, which is not installed: `pip install pyarrow`, or export CSV instead"
            ) from None
        rows, cols = self._flat_table(experiment)
        table = pa.table({c: [r.get(c) for r in rows] for c in cols})
        pq.write_table(table, str(path))
        return len(rows)
