"""What the claims (issue 13) need from the engine: an lr schedule (Reddi et al.'s alpha / sqrt(t)),
1-D trajectories in both run paths, the online problems' average regret, ``budget.epochs`` for a
problem with epochs, problem arguments whose annotation admits several kinds, and the trajectory
figure of a 1-D problem."""

from __future__ import annotations

import math

import numpy as np
import pytest

from precond.experiments import plots
from precond.experiments.runner import run_one
from precond.experiments.spec import parse_spec
from precond.experiments.sweep import plan
from precond.experiments.vectorized import run_group
from precond.problems import get, resolve
from precond.problems.counterexamples import regret


def _spec(problem: str, optimizer: str, *, steps: int = 6, extra: str = "", budget: str = "") -> str:
    return f"""
name = "t"
seeds = [0]
[problem]
name = "{problem}"
[budget]
{budget or f"steps = {steps}"}
eval_every = 2
[[optimizers]]
name = "SGD"
{optimizer}
[optimizers.hyperparameters]
lr = 0.1
{extra}
"""


def test_inverse_sqrt_schedule_steps_lr_over_sqrt_t():
    (cfg,) = parse_spec(_spec("reddi", 'lr_schedule = "inverse_sqrt"')).runs()
    traj = np.array(run_one(cfg)["history"]["trajectory"])[:, 0]
    x = 1.0
    for t in range(1, 7):  # f_t = 3x if t % 3 == 1 else -x; projected onto [-1, 1]
        x = min(1.0, max(-1.0, x - 0.1 / math.sqrt(t) * (3.0 if t % 3 == 1 else -1.0)))
        assert traj[t] == pytest.approx(x, abs=1e-6)  # reddi's point is float32 by default


def test_schedule_is_in_the_key_only_when_not_constant():
    const, = parse_spec(_spec("quadratic", "")).runs()
    explicit, = parse_spec(_spec("quadratic", 'lr_schedule = "constant"')).runs()
    decayed, = parse_spec(_spec("quadratic", 'lr_schedule = "inverse_sqrt"')).runs()
    assert const.key == explicit.key and "lr_schedule" not in const.identity()
    assert decayed.key != const.key and decayed.identity()["lr_schedule"] == "inverse_sqrt"


def test_scheduled_runs_are_not_batched():
    for opt, batched in (("", True), ('lr_schedule = "inverse_sqrt"', False)):
        exp = parse_spec(_spec("quadratic", opt))
        (task,) = plan(exp.runs(), "auto", exp.problem)
        assert task.vectorized is batched


def test_one_dimensional_trajectories_in_both_paths():
    exp = parse_spec(_spec("quadratic", "", extra="").replace('name = "quadratic"', 'name = "quadratic"\nargs = {dim = 1}'))
    (cfg,) = exp.runs()
    loop = run_one(cfg)["history"]["trajectory"]
    (batched,) = run_group([cfg])
    assert len(loop) == 7 and len(loop[0]) == 1
    np.testing.assert_allclose(batched["history"]["trajectory"], loop, rtol=1e-12)


def test_online_problems_record_their_average_regret():
    (cfg,) = parse_spec(_spec("reddi_fig1", "", steps=303)).runs()
    rec = run_one(cfg)
    played = np.array(rec["history"]["trajectory"][:-1])  # x_t is played at step t
    avg = regret(get("reddi_fig1"), played).average[:, 0]
    steps = rec["history"]["step"]
    assert math.isnan(rec["history"]["average_regret"][0])  # step 0: nothing played yet
    np.testing.assert_allclose(rec["history"]["average_regret"][1:], [avg[s - 1] for s in steps[1:]], rtol=1e-12)
    assert rec["final_metrics"]["average_regret"] == pytest.approx(avg[-1], rel=1e-12)


def test_average_regret_without_the_trajectory():
    spec = _spec("reddi_fig1", "", steps=303).replace('seeds = [0]', 'seeds = [0]\ntrajectory = false')
    (cfg,) = parse_spec(spec).runs()
    rec = run_one(cfg)
    assert "trajectory" not in rec["history"]
    (with_traj,) = parse_spec(_spec("reddi_fig1", "", steps=303)).runs()
    assert rec["final_metrics"]["average_regret"] == run_one(with_traj)["final_metrics"]["average_regret"]


def test_budget_target_records_the_steps_to_reach_it_in_both_paths():
    spec = _spec("ravine", "", steps=200).replace("eval_every = 2", "eval_every = 2\ntarget = 1e-6")
    (cfg,) = parse_spec(spec).runs()
    (batched,) = run_group([cfg])
    loop = run_one(cfg)
    x = np.array([4.0, 3.0])  # SGD at lr 0.1 on x^2 + 5y^2 from (4, 3): x_t = (0.8^t * 4, 0^t * 3)
    f = [float((x * np.array([0.8, 0.0]) ** t) @ (np.array([1.0, 5.0]) * x * np.array([0.8, 0.0]) ** t)) for t in range(200)]
    expected = next(t for t, v in enumerate(f) if v <= 1e-6)
    assert loop["final_metrics"]["steps_to_target"] == batched["final_metrics"]["steps_to_target"] == expected
    (unset,) = parse_spec(_spec("ravine", "", steps=200)).runs()
    assert "target" not in unset.identity()["budget"] and cfg.key != unset.key
    (never,) = parse_spec(spec.replace("target = 1e-6", "target = -1.0")).runs()
    assert run_one(never)["final_metrics"]["steps_to_target"] == 201  # not reached: steps + 1


def test_tuning_selects_and_reports_the_metric_the_spec_names(tmp_path):
    from precond.experiments.store import Store
    from precond.experiments.sweep import run_sweep
    from precond.experiments.tuning import tune_store

    spec = _spec("ravine", "", steps=300).replace("eval_every = 2", "eval_every = 300\ntarget = 1e-6")
    spec = spec.replace("lr = 0.1", "lr = [0.02, 0.1, 0.19]") + '\n[tuning]\nmetric = "steps_to_target"\n'
    exp = parse_spec(spec)
    run_sweep(exp, tmp_path / "s.sqlite", workers=1, progress=False)
    with Store(tmp_path / "s.sqlite") as st:
        (res,) = tune_store(st, "t")
        meta = st.experiments()[0]["meta"]
    steps = {lr: run_one(c)["final_metrics"]["steps_to_target"] for lr, c in ((c.hyperparameters["lr"], c) for c in exp.runs())}
    best = min(steps, key=steps.get)
    assert (meta["val_metric"], meta["test_metric"]) == ("steps_to_target", "steps_to_target")
    assert res.hyperparameters == {"lr": best} and res.estimate == pytest.approx(steps[best])


def test_budget_epochs_for_a_problem_with_epochs():
    assert parse_spec(_spec("wilson", "", budget="epochs = 3").replace('name = "wilson"', 'name = "wilson"\nargs = {batch_size = 8}')).steps == 15
    assert parse_spec(_spec("wilson", "", budget="epochs = 3")).steps == 3  # full batch: one step per epoch
    assert resolve("wilson", {"batch_size": 7}).steps_per_epoch == 40 // 7


def test_an_argument_annotated_with_several_kinds_takes_each():
    spec = _spec("linear_regression", "").replace('name = "linear_regression"',
                                                  'name = "linear_regression"\nargs = {dim = 2, spectrum = [1.0, 0.01]}')
    assert parse_spec(spec).problem.build().hessian().diagonal().tolist() == [1.0, 0.01]


def test_trajectory_figure_of_a_one_dimensional_problem(tmp_path):
    (cfg,) = parse_spec(_spec("reddi", "")).runs()
    rec = dict(run_one(cfg), label="SGD", hyperparameters=cfg.hyperparameters, seed=0)

    class Tuned:
        label, hyperparameters = "SGD", cfg.hyperparameters

    path = plots.trajectories(get("reddi"), [rec], [Tuned()], tmp_path / "traj")
    assert path is not None and path.is_file() and path.with_suffix(".svg").is_file()
