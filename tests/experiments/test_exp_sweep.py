"""Sweeps: vectorized == one-by-one, divergence, resumability (real SIGKILL); concurrent sweeps: test_exp_procs."""

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from precond.experiments.runner import run_one
from precond.experiments.spec import parse_spec
from precond.experiments.store import Store
from precond.experiments.sweep import plan, run_sweep
from precond.experiments.vectorized import group_key, run_group

HERE = Path(__file__).parent
PRECOND = [sys.executable, "-m", "precond"]


def spec(problem: str, opt_block: str, *, seeds="[0, 1, 2]", steps=200, eval_every=25, extra="", name="t") -> str:
    return f"""
name = "{name}"
seeds = {seeds}
{extra}
[problem]
name = "{problem}"
[budget]
steps = {steps}
eval_every = {eval_every}
divergence_bound = 1e10
{opt_block}
"""


OPTS = """
[[optimizers]]
name = "Adam"
[optimizers.hyperparameters]
lr = {logspace = [1e-3, 3e-1, 4]}
[[optimizers]]
name = "AGD"
[optimizers.hyperparameters]
lr = [0.003, 0.03]
weight_decay = [0.0, 0.01]
[[optimizers]]
name = "SGD"
[optimizers.hyperparameters]
lr = [0.001, 0.004, 2.0]
momentum = [0.9]
[[optimizers]]
name = "AdaBound"
[optimizers.hyperparameters]
lr = [0.003, 0.03]
final_lr = [0.05]
[[optimizers]]
name = "AdaGrad"
[optimizers.hyperparameters]
lr = [0.01, 0.1]
[[optimizers]]
name = "RMSProp"
[optimizers.hyperparameters]
lr = [0.001, 0.01]
[[optimizers]]
name = "AdamW"
[optimizers.hyperparameters]
lr = [0.003, 0.03]
weight_decay = [0.1]
"""


def _close(a, b, rtol=1e-8, atol=1e-12):
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


@pytest.mark.parametrize("problem", ["exp_toys:Quad", "exp_toys:Rosen"])
def test_vectorized_equals_loop(problem):
    exp = parse_spec(spec(problem, OPTS, seeds="[0, 1]", steps=120, eval_every=20))
    runs = exp.runs()
    groups = {}
    for c in runs:
        groups.setdefault(group_key(c), []).append(c)
    assert len(groups) == 1 + 2 + 1 + 4  # AGD splits by weight_decay; lr and seed are batched
    n_div = 0
    for g in groups.values():
        for c, v in zip(g, run_group(g)):
            loop = run_one(c)
            assert v["mode"].startswith("vectorized") and loop["mode"] == "loop"
            assert (v["status"], v["diverged_step"]) == (loop["status"], loop["diverged_step"])
            n_div += v["status"] == "diverged"
            assert set(v["history"]) == set(loop["history"])
            for k in loop["history"]:
                assert _close(loop["history"][k], v["history"][k]), (c.label, c.hyperparameters, c.seed, k)
            for k in loop["final_metrics"]:
                assert _close(loop["final_metrics"][k], v["final_metrics"][k])
    assert n_div >= 2  # SGD lr=2 diverges on both problems, for both seeds


def test_divergence_recorded_with_step(tmp_path):
    # Quad(d=1): f = x^2/2 (h = 1); SGD: x_t = (1 - lr) x_{t-1} = (-4)^t x_0 for lr = 5.
    text = spec("exp_toys:Quad", '[[optimizers]]\nname = "SGD"\n[optimizers.hyperparameters]\nlr = [5.0]\n',
                seeds="[0, 1]", steps=100, eval_every=5).replace('name = "exp_toys:Quad"', 'name = "exp_toys:Quad"\nargs = {d = 1}')
    exp = parse_spec(text)
    from exp_toys import Quad

    for c in exp.runs():
        x0 = float(Quad(d=1).initial_point(c.seed)[0])
        # the loss evaluated at step t is f(x_{t-1}); divergence at the first t with f > 1e10
        t = next(t for t in range(1, 100) if 0.5 * (x0 * (-4.0) ** (t - 1)) ** 2 > 1e10)
        for rec in (run_one(c), run_group([c])[0]):
            assert rec["status"] == "diverged" and rec["diverged_step"] == t
            assert rec["final_metrics"] == {}
    res = run_sweep(exp, tmp_path / "s.sqlite", workers=1, progress=False)
    assert res.diverged == 2 and res.failed == 0
    with Store(tmp_path / "s.sqlite") as st:
        assert {r["status"] for r in st.runs()} == {"diverged"}


def test_nonfinite_gradient_counts_as_divergence():
    # loss finite but gradient NaN: the optimizer raises NonFiniteGradientError, recorded as divergence
    exp = parse_spec(spec("exp_toys:NanGrad", '[[optimizers]]\nname = "Adam"\n[optimizers.hyperparameters]\nlr = [0.1]\n',
                          seeds="[0]", steps=10, eval_every=1))
    c = exp.runs()[0]
    for rec in (run_one(c), run_group([c])[0]):
        assert rec["status"] == "diverged" and rec["diverged_step"] == 4


def test_plan_batches_vectorizable_only():
    exp = parse_spec(spec("exp_toys:Quad", OPTS))
    tasks = plan(exp.runs(), "auto")
    assert sum(len(t.configs) for t in tasks) == len(exp.runs())
    assert all(t.vectorized for t in tasks) and len(tasks) == 8
    assert not any(t.vectorized for t in plan(exp.runs(), "never"))
    slow = parse_spec(spec("exp_toys:SlowQuad", OPTS))
    assert not any(t.vectorized for t in plan(slow.runs(), "auto"))


def _env(count: Path | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    if count is not None:
        env["EXP_TOYS_COUNT"] = str(count)
    return env


def _done(store: Path) -> dict[str, float]:
    if not store.exists():
        return {}
    try:
        con = sqlite3.connect(str(store), timeout=10)
        try:
            return dict(con.execute("SELECT key, finished_at FROM runs"))
        finally:
            con.close()
    except sqlite3.OperationalError:
        return {}


KILL_SPEC = """
name = "kill"
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
[problem]
name = "exp_toys:CountingQuad"
args = {d = 2, sleep = 0.02}
[budget]
steps = 15
eval_every = 5
[[optimizers]]
name = "Adam"
[optimizers.hyperparameters]
lr = [0.1]
"""


def test_sigkill_and_resume(tmp_path):
    spec_path = tmp_path / "kill.toml"
    spec_path.write_text(KILL_SPEC)
    store, count = tmp_path / "s.sqlite", tmp_path / "starts.txt"
    cmd = PRECOND + ["run", str(spec_path), "--store", str(store), "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, env=_env(count), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 90
    while len(_done(store)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _done(store)
    assert 3 <= len(before) < 12, f"kill came too late or too early: {len(before)} runs done"
    out = subprocess.run(cmd, env=_env(count), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"{12 - len(before)} ran now" in out.stdout and f"{len(before)} already in the store" in out.stdout
    after = _done(store)
    assert len(after) == 12
    for k, t in before.items():
        assert after[k] == t  # finished runs were not recomputed
    with Store(store) as st:
        runs = st.runs("kill")
        assert sorted(r["seed"] for r in runs) == list(range(12))  # every run exactly once
    starts = [int(s) for s in count.read_text().split()]
    finished_before = {r["seed"] for r in runs if r["key"] in before}
    for s in finished_before:
        assert starts.count(s) == 1
    # a third start does nothing
    res = run_sweep(parse_spec(KILL_SPEC), store, workers=1, progress=False)
    assert (res.ran, res.skipped) == (0, 12)
