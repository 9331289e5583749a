"""``precond claims``: the JSON objects, the report, errors in one line, and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from precond.cli import main as cli

PRECOND = [sys.executable, "-m", "precond"]


def test_json_and_report(tmp_path, capsys):
    rc = cli(["claims", "--size", "tiny", "--only", "c1", "--json", "-o", str(tmp_path), "--workers", "1", "--no-progress",
              "--no-sensitivity"])  # fmt: skip
    assert rc == 0
    (obj,) = json.loads(capsys.readouterr().out)
    assert {"id", "source", "claim", "verdict", "measured", "rule", "figure"} <= set(obj)
    assert obj["id"] == "C1" and obj["verdict"] == "reproduced" and obj["numbers"]["pinv_g"] == [1.0, 10.0]
    assert os.path.isfile(obj["figure"]) and obj["figure"].endswith(".png")
    assert all(e["spec_hash"] for e in obj["experiments"])  # the verdict names the specs its runs come from
    html = (tmp_path / "index.html").read_text()
    assert "C1 Preconditioning: reproduced" in html and "fig/C1.png" in html
    assert "spec hash" in (tmp_path / "report.md").read_text()


def test_unknown_claim_and_list(capsys):
    assert cli(["claims", "--only", "C99"]) == 2
    assert "unknown claim(s) C99; known: C1, C2" in capsys.readouterr().err
    assert cli(["claims", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("C1 ") and "seed 003" in out


def _finished(store) -> dict[str, float]:
    try:
        con = sqlite3.connect(str(store), timeout=10)
        try:
            return dict(con.execute("SELECT key, finished_at FROM runs"))
        finally:
            con.close()
    except sqlite3.OperationalError:
        return {}


def test_sigkill_then_resume_redoes_nothing(tmp_path):
    store = tmp_path / "claims.sqlite"
    cmd = PRECOND + ["claims", "--size", "tiny", "--only", "C5", "--workers", "1", "--no-progress", "--no-sensitivity",
                     "-o", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while len(_finished(store)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _finished(store)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    after = _finished(store)
    total = int(out.stderr.split(" runs: ")[0].split()[-1])
    assert 3 <= len(before) < total, f"the kill came too early or too late: {len(before)} of {total} runs stored"
    assert f"{len(before)} already in the store, {total - len(before)} ran now" in out.stderr
    assert len(after) == total and all(after[k] == t for k, t in before.items())  # nothing finished was redone


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_at_once(tmp_path):
    """Ctrl-C while two workers run long sweeps: exit status 130 within seconds, workers gone, resume command said."""
    store = tmp_path / "claims.sqlite"
    cmd = PRECOND + ["claims", "--only", "C5", "--workers", "2", "--no-progress", "--no-sensitivity", "-o", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while not _finished(store) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    children = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
    os.kill(proc.pid, signal.SIGINT)
    t0 = time.time()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.time() - t0 < 5, (proc.returncode, time.time() - t0)
    assert "interrupted; every finished run is in" in err and "resume with: precond claims --only C5" in err
    for _ in range(100):  # the workers, then the fork server and the resource tracker, which follow them
        alive = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
        if not alive:
            break
        time.sleep(0.1)
    assert len(children) >= 2 and not alive, (children, alive, time.time() - t0)
