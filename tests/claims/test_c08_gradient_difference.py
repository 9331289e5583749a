"""C8 (AGD's s_t against H dw): the rule's three verdicts on synthetic numbers, and the tiny run's
numbers against an independent computation (analytic gradients, autograd Hessians)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from precond.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, get
from precond.claims.c08_gradient_difference import points
from precond.experiments.run_config import RunConfig
from precond.experiments.runner import run_one
from precond.problems import get as problem

from ._helpers import changed, run_tiny


def _part(slopes, small, max_err=0.2):
    return {"slope": slopes, "small_step_error": small, "points": 300, "max_rel_err": max_err,
            "max_grad_diff_rel_err": max_err, "diverged": 0, "runs": 6}  # fmt: skip


GOOD = {"beta1": 0.0, "dw_floor": 1e-6, "quadratic": _part([0.1, 0.1, 0.1], [1e-14] * 3, 2e-12),
        "beale": _part([0.3, 0.28, 0.31], [0.005, 0.006, 0.005]), "rosenbrock": _part([0.95, 0.9, 0.97], [0.03, 0.05, 0.04])}  # fmt: skip


def test_rule_gives_each_verdict():
    rule = get(["C8"])[0].verdict
    assert rule(GOOD).status == REPRODUCED
    assert rule(changed(GOOD, ("quadratic", "max_rel_err"), 1e-3)).status == NOT_REPRODUCED  # not exact on a quadratic
    assert rule(changed(GOOD, ("beale", "slope"), [-0.3, -0.28, -0.31])).status == NOT_REPRODUCED  # error falls with |dw|
    assert rule(changed(GOOD, ("rosenbrock", "slope"), [0.5, -0.4, 0.1])).status == INCONCLUSIVE
    assert rule(changed(GOOD, ("beale", "small_step_error"), [0.03, 0.2, 0.5])).status == INCONCLUSIVE


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_tiny(["C8"], tmp_path_factory.mktemp("c08"), figures=True)[0]


def test_tiny_numbers(result):
    n = result.numbers
    assert result.figure.is_file()
    assert n["quadratic"]["max_rel_err"] < 1e-12  # b1 = 0 on a quadratic: s_t = g_t - g_{t-1} = H dw exactly
    # 40 steps x 2 lrs: measured from step 2 on (39 a run); the quadratic's converged steps fall under the floor
    assert n["beale"]["points"] == n["rosenbrock"]["points"] == 2 * 39 and 0 < n["quadratic"]["points"] <= 2 * 39
    for prob in ("beale", "rosenbrock"):  # b1 = 0: AGD's s_t is the gradient difference
        assert n[prob]["max_rel_err"] == pytest.approx(n[prob]["max_grad_diff_rel_err"], rel=1e-9)
        assert n[prob]["slope"][0] > 0.5  # Taylor: error ~ |T[dw, dw]| / (2 |H dw|), slope 1
    assert result.verdict.checks[0].status == REPRODUCED


@pytest.mark.parametrize("prob", ["beale", "rosenbrock"])
def test_points_match_analytic_gradients_and_autograd_hessians(prob):
    cfg = RunConfig("t", prob, {}, "AGD", "AGD", {"lr": 0.05, "betas": [0.0, 0.999]}, 0, 25, 1, 1e8,
                    diagnostics=("gradient_difference",), trajectory=True, dtype="float64")  # fmt: skip
    dw, err, gd_err = points(run_one(cfg), 0.0)
    p = problem(prob, dtype="float64")
    traj = [p.initial_point(0).double()]
    w = traj[0].clone().requires_grad_(True)
    from precond.optim import AGD

    opt = AGD([w], lr=0.05, betas=(0.0, 0.999))
    for _ in range(24):  # the points before steps 1..25
        opt.zero_grad()
        p.value(w).backward()
        opt.step()
        traj.append(w.detach().clone())
    want_dw, want = [], []
    for t in range(2, len(traj) + 1):  # steps 2..25
        a, b = traj[t - 1], traj[t - 2]  # the measurement after step t compares w_{t-1} with w_{t-2}
        H = torch.autograd.functional.hessian(lambda x: p.value(x), a)
        hv = H @ (a - b)
        want.append(float(((p.grad(a) - p.grad(b)) - hv).norm() / hv.norm()))
        want_dw.append(float((a - b).norm()))
    assert len(dw) == len(want_dw) == 24 and np.allclose(dw, want_dw, rtol=1e-12)
    assert np.allclose(err, want, rtol=1e-7) and np.allclose(gd_err, want, rtol=1e-7)
