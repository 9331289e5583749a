"""Sweeps: vectorized == one-by-one, divergence, planning; killed, resumed and concurrent sweeps: test_exp_procs."""

import math

import pytest

from precond.experiments.runner import run_one
from precond.experiments.spec import parse_spec
from precond.experiments.store import Store
from precond.experiments.sweep import plan, run_sweep
from precond.experiments.vectorized import group_key, run_group

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
    tasks = plan(exp.runs(), "auto", exp.problem)
    assert sum(len(t.configs) for t in tasks) == len(exp.runs())
    assert all(t.vectorized for t in tasks) and len(tasks) == 8
    assert not any(t.vectorized for t in plan(exp.runs(), "never", exp.problem))
    slow = parse_spec(spec("exp_toys:SlowQuad", OPTS))
    assert not any(t.vectorized for t in plan(slow.runs(), "auto", slow.problem))
