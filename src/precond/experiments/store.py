"""The results store: one SQLite file (WAL mode, busy timeout), safe to kill and to share.

* Each run is a row keyed by :attr:`RunConfig.key` (a hash of experiment, problem config,
  optimizer, hyperparameters, seed and budget), written with ``INSERT OR IGNORE`` in its
  own transaction: a sweep killed at any moment loses no finished run, and a restarted
  one skips every key already present.
* WAL journaling and a busy timeout let two sweeps write one store at once.
* A run that raised (not a divergence) goes to ``failures`` and is retried next time.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

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
    finished_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_experiment ON runs (experiment);
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    problem TEXT NOT NULL,
    meta TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT NOT NULL,
    experiment TEXT NOT NULL,
    config TEXT NOT NULL,
    error TEXT NOT NULL,
    at REAL NOT NULL
);
"""

RUN_COLUMNS = ("key", "experiment", "problem", "problem_args", "optimizer", "label", "hyperparameters", "seed",
               "steps", "status", "diverged_step", "final_metrics", "history", "wall_time", "mode", "config",
               "env", "finished_at")  # fmt: skip
_JSON_COLUMNS = ("problem_args", "hyperparameters", "final_metrics", "history", "config", "env")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=True, default=lambda o: list(o) if isinstance(o, tuple) else str(o))


class Store:
    """A results store at ``path`` (created if absent)."""

    def __init__(self, path: str | Path, timeout: float = 60.0) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self._retry(lambda: self.conn.execute("PRAGMA journal_mode = WAL"))
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self._retry(lambda: self.conn.executescript(SCHEMA))

    def _retry(self, fn, tries: int = 50):
        for i in range(tries):
            try:
                return fn()
            except sqlite3.OperationalError as exc:  # schema creation racing another process
                if "locked" not in str(exc) or i == tries - 1:
                    raise
                time.sleep(0.05 * (i + 1))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- writing -------------------------------------------------------------------------------
    def put_experiment(self, name: str, spec_text: str, problem: str, meta: dict[str, Any]) -> None:
        self._retry(lambda: self.conn.execute(
            "INSERT OR REPLACE INTO experiments (name, spec, problem, meta, updated_at) VALUES (?, ?, ?, ?, ?)",
            (name, spec_text, problem, _dumps(meta), time.time()),
        ))  # fmt: skip

    def put_runs(self, records: Iterable[dict[str, Any]]) -> int:
        """Insert finished runs in one transaction; keys already present are left alone. Returns the number inserted."""
        rows = []
        for r in records:
            r = dict(r)
            for c in _JSON_COLUMNS:
                r[c] = _dumps(r[c])
            r.setdefault("finished_at", time.time())
            rows.append(tuple(r[c] for c in RUN_COLUMNS))
        if not rows:
            return 0
        sql = f"INSERT OR IGNORE INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"

        def tx() -> int:
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                before = self.conn.total_changes
                cur.executemany(sql, rows)
                n = self.conn.total_changes - before
                cur.execute("COMMIT")
                return n
            except BaseException:
                cur.execute("ROLLBACK")
                raise

        return self._retry(tx)

    def put_failure(self, key: str, experiment: str, config: dict[str, Any], error: str) -> None:
        self._retry(lambda: self.conn.execute(
            "INSERT INTO failures (key, experiment, config, error, at) VALUES (?, ?, ?, ?, ?)",
            (key, experiment, _dumps(config), error, time.time()),
        ))  # fmt: skip

    # ---- reading -------------------------------------------------------------------------------
    def done_keys(self, experiment: str | None = None) -> set[str]:
        if experiment is None:
            return {k for (k,) in self.conn.execute("SELECT key FROM runs")}
        return {k for (k,) in self.conn.execute("SELECT key FROM runs WHERE experiment = ?", (experiment,))}

    def experiments(self) -> list[dict[str, Any]]:
        out = []
        for name, spec, problem, meta, updated in self.conn.execute(
            "SELECT name, spec, problem, meta, updated_at FROM experiments ORDER BY name"
        ):
            out.append({"name": name, "spec": spec, "problem": problem, "meta": json.loads(meta), "updated_at": updated})
        return out

    def runs(self, experiment: str | None = None, *, history: bool = True) -> list[dict[str, Any]]:
        cols = [c for c in RUN_COLUMNS if history or c != "history"]
        sql = f"SELECT {', '.join(cols)} FROM runs"
        args: tuple[Any, ...] = ()
        if experiment is not None:
            sql += " WHERE experiment = ?"
            args = (experiment,)
        out = []
        for row in self.conn.execute(sql + " ORDER BY label, hyperparameters, seed", args):
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
                                       "diverged_step", "wall_time", "mode")}  # fmt: skip
            flat["problem_args"] = _dumps(r["problem_args"])
            for k, v in r["hyperparameters"].items():
                flat[f"hp.{k}"] = _dumps(v) if isinstance(v, (list, tuple, dict)) else v
            for k, v in r["final_metrics"].items():
                flat[f"final.{k}"] = _dumps(v) if isinstance(v, (list, tuple, dict)) else v
            rows.append(flat)
        return rows

    def export_csv(self, path: str | Path, experiment: str | None = None) -> int:
        rows = self.flat_rows(experiment)
        cols: list[str] = []
        for r in rows:
            cols.extend(c for c in r if c not in cols)
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
        rows = self.flat_rows(experiment)
        cols: list[str] = []
        for r in rows:
            cols.extend(c for c in r if c not in cols)
        table = pa.table({c: [r.get(c) for r in rows] for c in cols})
        pq.write_table(table, str(path))
        return len(rows)
