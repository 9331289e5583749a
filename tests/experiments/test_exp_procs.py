"""Processes (issue 11, points 15, 18 and 24): workers die with their sweep (SIGKILL, SIGTERM,
Ctrl-C), finished runs are kept and a rerun completes the rest; two sweeps on one store split
the runs; Ctrl-C says what was kept and how to resume."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from precond.cli import main as cli
from precond.experiments.spec import parse_spec
from precond.experiments.store import Store
from precond.experiments.sweep import run_sweep
from proc_probes import finished as _finished, stat_fields

HERE = Path(__file__).parent
PRECOND = [sys.executable, "-m", "precond"]

SPEC = """
name = "procs"
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
[problem]
name = "exp_toys:{problem}"
args = {{d = 2, sleep = {sleep}}}
[budget]
steps = 15
eval_every = 5
[[optimizers]]
name = "Adam"
[optimizers.hyperparameters]
lr = [0.1]
"""
N = 12


def _env(count: Path) -> dict:
    return dict(os.environ, EXP_TOYS_COUNT=str(count),
                PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))  # fmt: skip


def _done(store: Path) -> int:
    return len(_finished(store))


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a live process from /proc, None when it is gone or a zombie."""
    fields = stat_fields(pid)
    return None if fields is None else (fields[0], int(fields[1]))


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _stat(int(name))) is not None:
            children.setdefault(st[1], []).append(int(name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _start(tmp_path: Path, workers: int, sleep: float = 0.02):
    spec = tmp_path / "procs.toml"
    spec.write_text(SPEC.format(problem="CountingQuad", sleep=sleep))
    store, count = tmp_path / "s.sqlite", tmp_path / "starts.txt"
    cmd = PRECOND + ["run", str(spec), "--store", str(store), "--workers", str(workers), "--no-progress"]
    return cmd, store, count


def _wait_for(cond, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")


@needs_proc
@pytest.mark.parametrize("how", ["SIGKILL", pytest.param("SIGTERM", marks=pytest.mark.slow), "Ctrl-C"])
def test_killed_sweep_leaves_no_process(tmp_path, how):
    cmd, store, count = _start(tmp_path, workers=2)
    proc = subprocess.Popen(cmd, env=_env(count), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    assert _wait_for(lambda: _done(store) >= 2 or proc.poll() is not None, 120)
    kids = _descendants(proc.pid)
    assert proc.poll() is None and len(kids) >= 3, f"sweep over before the kill, or no workers: {kids}"  # fork server + 2 workers
    if how == "Ctrl-C":  # the terminal sends SIGINT to the whole foreground group
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, getattr(signal, how))
    out, err = proc.communicate(timeout=60)
    assert _wait_for(lambda: not any(_stat(k) for k in kids), 5), [open(f"/proc/{k}/cmdline").read() for k in kids if _stat(k)]
    kept = _done(store)
    assert 2 <= kept < N
    if how == "SIGKILL":
        return
    assert proc.returncode == (143 if how == "SIGTERM" else 130), err
    last = err.strip().splitlines()[-1]
    assert f"{kept} of {N} runs of 'procs' are in {store}" in last and f"resume with: precond run {cmd[4]} --store {store}" in last
    con = sqlite3.connect(str(store))
    assert con.execute("SELECT count(*) FROM claims").fetchone()[0] == 0  # claims released
    con.close()
    if how == "SIGTERM":  # a rerun completes the rest and redoes nothing
        rerun = subprocess.run(cmd[:-2] + ["1", "--no-progress"], env=_env(count), capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert f"{N - kept} ran now" in rerun.stdout and f"{kept} already in the store" in rerun.stdout
        assert _done(store) == N


def test_ctrl_c_says_what_was_kept_and_how_to_resume(tmp_path, monkeypatch, capsys):
    spec = tmp_path / "i.toml"
    spec.write_text(SPEC.format(problem="InterruptQuad", sleep=0.0).replace("[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]", "[0, 1, 2, 3, 4]"))
    store = tmp_path / "s.sqlite"
    args = ["run", str(spec), "--store", str(store), "--workers", "1", "--no-progress"]
    monkeypatch.setenv("EXP_TOYS_INTERRUPT_SEED", "3")
    assert cli(args) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"precond run: interrupted: 3 of 5 runs of 'procs' are in {store}; resume with: precond run {spec} --store {store}"]
    monkeypatch.delenv("EXP_TOYS_INTERRUPT_SEED")
    assert cli(args) == 0
    assert "2 ran now (0 diverged), 3 already in the store" in capsys.readouterr().out


def test_two_sweeps_on_one_store_split_the_runs(tmp_path):
    cmd, store, count = _start(tmp_path, workers=1, sleep=0.03)
    procs = [subprocess.Popen(cmd, env=_env(count), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    starts = count.read_text().split()
    assert sorted(map(int, starts)) == list(range(N))  # every run computed exactly once
    ran = []
    for out, _ in outs:
        line = out.splitlines()[0]  # "procs: 12 runs: a ran now (0 diverged), b already in the store, c taken by another process, d failed; ..."
        nums = [int(w) for w in line.replace("(", " ").replace(",", " ").split() if w.isdigit()]
        total, r, _div, skipped, taken, failed = nums[:6]
        assert total == N and r + skipped + taken + failed == N, line
        ran.append(r)
    assert sum(ran) == N
    con = sqlite3.connect(str(store))
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*), count(DISTINCT key) FROM runs").fetchone() == (N, N)
    assert con.execute("SELECT count(*) FROM claims").fetchone()[0] == 0
    con.close()


def test_sigkill_and_resume(tmp_path):
    """One worker (in the sweep's process): SIGKILL loses no finished run and a rerun redoes none."""
    cmd, store, count = _start(tmp_path, workers=1)
    proc = subprocess.Popen(cmd, env=_env(count), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 90
    while len(_finished(store)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _finished(store)
    assert 3 <= len(before) < 12, f"kill came too late or too early: {len(before)} runs done"
    out = subprocess.run(cmd, env=_env(count), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"{12 - len(before)} ran now" in out.stdout and f"{len(before)} already in the store" in out.stdout
    after = _finished(store)
    assert len(after) == 12
    for k, t in before.items():
        assert after[k] == t  # finished runs were not recomputed
    with Store(store) as st:
        runs = st.runs("procs")
        assert sorted(r["seed"] for r in runs) == list(range(12))  # every run exactly once
    starts = [int(s) for s in count.read_text().split()]
    finished_before = {r["seed"] for r in runs if r["key"] in before}
    for s in finished_before:
        assert starts.count(s) == 1
    # a third start does nothing
    res = run_sweep(parse_spec(SPEC.format(problem="CountingQuad", sleep=0.02)), store, workers=1, progress=False)
    assert (res.ran, res.skipped) == (0, 12)
