"""Sweeps on Ray (issue 17): ``precond run SPEC --backend ray`` stores what the process pool stores
(records, diverged runs, spec identity), with provenance taken on the Ray worker; an interrupted Ray
sweep resumes with only the missing runs; a missing ray package or an unreachable --address is one
line. One local Ray instance (2 CPUs) is shared by the module's tests; they skip without ray."""

import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from precond.cli import main as cli
from precond.experiments import sweep
from precond.experiments.spec import parse_spec
from precond.experiments.store import Store
from proc_probes import finished, stat_fields

HERE = Path(__file__).parent

# 15 runs in 5 tasks: Adam and SGD batched (vectorized points), AGD with a schedule one by one; SGD lr=5 diverges
SPEC = """
name = "ray-eq"
seeds = [0, 1, 2]
[problem]
name = "exp_toys:Quad"
args = {d = 2}
[budget]
steps = 30
eval_every = 10
divergence_bound = 1e6
[[optimizers]]
name = "Adam"
[optimizers.hyperparameters]
lr = [0.03, 0.3]
[[optimizers]]
name = "SGD"
[optimizers.hyperparameters]
lr = [0.01, 5.0]
[[optimizers]]
name = "AGD"
lr_schedule = "inverse_sqrt"
[optimizers.hyperparameters]
lr = [0.1]
"""

SLOW = """
name = "ray-resume"
seeds = [0, 1, 2, 3, 4, 5]
[problem]
name = "exp_toys:CountingQuad"
args = {{d = 2, sleep = {sleep}}}
[budget]
steps = 10
eval_every = 5
[[optimizers]]
name = "Adam"
[optimizers.hyperparameters]
lr = [0.1]
"""

PROVENANCE = ("host", "precond", "torch", "numpy", "python", "platform", "device", "cpu", "torch_threads")


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """A local Ray instance with 2 CPUs; its workers append each started run's seed to ``count``."""
    ray = pytest.importorskip("ray")
    count = tmp_path_factory.mktemp("ray") / "starts.txt"
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"EXP_TOYS_COUNT": str(count)}})  # fmt: skip
    yield ray, count
    ray.shutdown()


def _executor(slots=2):
    from precond.experiments.ray_backend import RayExecutor

    return RayExecutor(slots)


def _rows(path) -> dict[str, dict]:
    with Store(path) as st:
        return {r["key"]: r for r in st.runs()}


def test_ray_store_equals_process_pool(ray_local, tmp_path, monkeypatch):
    ray, _ = ray_local
    exp = parse_spec(SPEC)
    # the driver's provenance is marked: a record carrying it was not described where it ran
    monkeypatch.setattr(sweep, "environment", lambda: {"host": "the-driver"})
    sweep._environment_here.cache_clear()
    try:
        pool = sweep.run_sweep(exp, tmp_path / "pool.sqlite", workers=2, progress=False)
        onray = sweep.run_sweep(exp, tmp_path / "ray.sqlite", progress=False, executor=_executor())
    finally:
        sweep._environment_here.cache_clear()
    assert (onray.total, onray.ran, onray.diverged, onray.failed) == (pool.total, pool.ran, pool.diverged, pool.failed) == (15, 15, 3, 0)
    assert onray.plan == pool.plan == "15 runs: 12 batched (vectorized points) in 2 tasks, 3 one by one"
    a, b = _rows(tmp_path / "pool.sqlite"), _rows(tmp_path / "ray.sqlite")
    assert a.keys() == b.keys() == {c.key for c in exp.runs()}
    for key, ra in a.items():
        rb = b[key]
        for col in ra:
            if col not in ("env", "wall_time", "finished_at"):
                assert ra[col] == rb[col], (col, ra["label"], ra["hyperparameters"], ra["seed"])
        for env in (ra["env"], rb["env"]):
            assert all(env.get(k) not in (None, "") for k in PROVENANCE) and env["host"] == socket.gethostname()
            assert env["torch_threads"] == 1
        assert rb["env"]["ray"] == ray.__version__ and "ray" not in ra["env"]
        same = {k: v for k, v in rb["env"].items() if k not in ("ray", "git_commit", "git_dirty")}
        assert same == {k: v for k, v in ra["env"].items() if k not in ("git_commit", "git_dirty")}
    with Store(tmp_path / "ray.sqlite") as st:
        assert {e["spec_hash"] for e in st.experiments()} == {exp.spec_hash}
    # the diverged runs, against x_t = (1 - 5 h) x_{t-1}, f = 0.5 sum h x^2 (h = 1, 10): the first t with f(x_{t-1}) > 1e6
    from exp_toys import Quad

    q = Quad(d=2)
    for r in b.values():
        if r["hyperparameters"] == {"lr": 5.0}:
            x, t = q.initial_point(r["seed"]), 1
            while float(q.value(x)) <= 1e6:
                x, t = (1 - 5.0 * q.h) * x, t + 1
            assert (r["status"], r["diverged_step"], r["final_metrics"]) == ("diverged", t, {})
        else:
            assert r["status"] == "done" and math.isfinite(r["final_metrics"]["val_loss"])


def test_interrupted_ray_sweep_resumes_with_only_the_missing_runs(ray_local, tmp_path):
    ray, count = ray_local
    exp = parse_spec(SLOW.format(sleep=0.02))
    store, seen = tmp_path / "s.sqlite", []

    def interrupt(cfg, rec):  # Ctrl-C as the 3rd result arrives (it is not stored)
        seen.append(cfg.seed)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(exp, store, progress=False, on_record=interrupt, executor=_executor())
    kept = {r["seed"] for r in _rows(store).values()}
    assert kept == set(seen[:2])
    con = sqlite3.connect(str(store))
    assert con.execute("SELECT count(*) FROM claims").fetchone()[0] == 0  # claims released
    con.close()
    deadline = time.time() + 60  # the tasks in flight were cancelled: their CPUs come back
    while ray.available_resources().get("CPU", 0) < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert ray.available_resources().get("CPU", 0) == 2
    count.write_text("")
    res = sweep.run_sweep(exp, store, progress=False, executor=_executor())
    assert (res.ran, res.skipped, res.failed) == (6 - len(kept), len(kept), 0)
    assert sorted(int(s) for s in count.read_text().split()) == sorted(set(range(6)) - kept)  # each missing run started once
    assert sorted(r["seed"] for r in _rows(store).values()) == list(range(6))


def test_cli_ray_backend_runs_and_resumes(ray_local, tmp_path, capsys):
    spec = tmp_path / "eq.toml"
    spec.write_text(SPEC.split("[[optimizers]]\nname = \"AGD\"")[0])  # Adam and SGD: 12 runs in 2 tasks
    args = ["run", str(spec), "--store", str(tmp_path / "s.sqlite"), "--backend", "ray", "--no-progress"]
    assert cli(args) == 0  # connects to the module's Ray instance (and leaves it running)
    assert "ray-eq: 12 runs: 12 ran now (3 diverged), 0 already in the store, 0 taken by another process, 0 failed" in capsys.readouterr().out
    assert cli(args) == 0
    assert "12 runs: 0 ran now (0 diverged), 12 already in the store" in capsys.readouterr().out
    assert ray_local[0].is_initialized()


def _one_line_error(args, capsys) -> str:
    t0 = time.perf_counter()
    assert cli(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and time.perf_counter() - t0 < 30, err
    return err[0]


def test_missing_ray_package_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    store = tmp_path / "s.sqlite"
    line = _one_line_error(["run", "quadratic", "--store", str(store), "--backend", "ray"], capsys)
    assert line.startswith("precond run: --backend ray needs the ray package, which is not installed (")
    assert line.endswith("pip install 'precond[ray]' (ray==2.60.0)")
    assert not store.exists()
    line = _one_line_error(["run", "quadratic", "--store", str(store), "--address", "10.0.0.5:6379"], capsys)
    assert line == "precond run: --address is the Ray cluster's: give --backend ray with it"


def test_unreachable_or_malformed_address_is_one_line(tmp_path, capsys):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("", 0))
        port = s.getsockname()[1]
    store = tmp_path / "s.sqlite"
    base = ["run", "quadratic", "--store", str(store), "--backend", "ray", "--address"]
    for addr in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        line = _one_line_error(base + [addr], capsys)
        assert line.startswith(f"precond run: --address {addr}") and "no Ray cluster answers there (ConnectionRefusedError" in line
    line = _one_line_error(base + ["nonsense"], capsys)
    assert line.startswith("precond run: --address nonsense: not a Ray cluster address: give host:port")
    assert not store.exists()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")
@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_stopped_cli_ray_sweep_says_what_was_kept(tmp_path, how):
    """`precond run --backend ray` in its own process (its own local Ray instance), stopped as a terminal
    or a scheduler would: one line, exit 130/143, claims released, no Ray process left; a rerun completes."""
    pytest.importorskip("ray")
    spec, store = tmp_path / "slow.toml", tmp_path / "s.sqlite"
    spec.write_text(SLOW.format(sleep=0.5))
    cmd = [sys.executable, "-m", "precond", "run", str(spec), "--store", str(store), "--backend", "ray", "--workers", "2", "--no-progress"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def done() -> int:
        return len(finished(store))

    deadline = time.time() + 240
    while done() < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    os.killpg(proc.pid, signal.SIGINT if how == "Ctrl-C" else signal.SIGTERM)  # the whole group, as a terminal does
    _, err = proc.communicate(timeout=120)
    kept = done()
    assert proc.returncode == (130 if how == "Ctrl-C" else 143), err[-2000:]
    assert 1 <= kept < 6
    assert err.strip().splitlines()[-1].endswith(f"{kept} of 6 runs of 'ray-resume' are in {store}; "
                                                 f"resume with: precond run {spec} --store {store} --backend ray")  # fmt: skip
    con = sqlite3.connect(str(store))
    assert con.execute("SELECT count(*) FROM claims").fetchone()[0] == 0
    con.close()
    left = []
    for _ in range(100):  # the instance's processes are in the sweep's session
        left = [p for p in os.listdir("/proc") if p.isdigit() and _session(int(p)) == proc.pid]
        if not left:
            break
        time.sleep(0.5)
    assert not left, left
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{6 - kept} ran now (0 diverged), {kept} already in the store" in rerun.stdout


def _session(pid: int) -> int | None:
    """The session id of a live process (field 6 of /proc/PID/stat), None for a zombie or a gone one."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[3])
