"""Probes shared by the tests that run sweeps in other processes (test_exp_procs, test_ray_backend):
the runs a store holds, read by plain sqlite3 while another process writes it, and a live process's
``/proc/PID/stat`` fields. A helper module, not a test module (tests/cli/test_layout.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def finished(store: Path) -> dict[str, float]:
    """key -> finished_at of the stored runs, read by plain sqlite3 ({} before the store has its tables)."""
    try:
        con = sqlite3.connect(str(store), timeout=10)
        try:
            return dict(con.execute("SELECT key, finished_at FROM runs"))
        finally:
            con.close()
    except sqlite3.OperationalError:
        return {}


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state, ppid, pgrp, session, ...) of a
    live process; None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in "ZX" else fields
