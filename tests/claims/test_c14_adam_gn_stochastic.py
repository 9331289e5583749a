"""C14 (Adam ~ GN^-1/2 in the stochastic regime): the rule's three verdicts on synthetic numbers, and
the tiny run's preconditioner ratios against a replay with torch.optim.Adam."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from precond.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, get
from precond.claims.c14_adam_gn_stochastic import PROBLEM, args, curve_gap
from precond.problems import get as problem

from ._helpers import changed, run_tiny


def _pt(spread: list[float], gap: list[float]) -> dict:
    return {"spread": spread, "curve_gap": gap, "lr": {"Adam": 0.01, "GN^-1/2": 0.03}, "edge": {"Adam": [], "GN^-1/2": []}}


GOOD = {"alphas": [0.0, 1.0], "batches": ["1", "full"], "points": {
    "0/1": _pt([0.1, 0.12], [0.1, 0.15]), "0/full": _pt([3.0, 2.9], [0.9, 0.8]),
    "1/1": _pt([0.13, 0.14], [0.12, 0.2]), "1/full": _pt([3.0, 3.1], [1.2, 1.1])}}  # fmt: skip


def test_rule_gives_each_verdict():
    rule = get(["C14"])[0].verdict
    v = rule(GOOD)
    assert v.status == REPRODUCED, [c.text() for c in v.checks if c.status != REPRODUCED]
    assert rule(changed(GOOD, ("points", "1/1", "curve_gap"), [1.0, 1.1])).status == NOT_REPRODUCED
    assert rule(changed(GOOD, ("points", "0/full", "spread"), [0.1, 0.12])).status == NOT_REPRODUCED
    assert rule(changed(GOOD, ("points", "1/1", "spread"), [0.1, 0.5])).status == INCONCLUSIVE


def test_curve_gap():
    assert curve_gap([1.0, 2.0, 4.0, 0.0], [1.0, 1.0, 8.0, 1.0], 1e-12) == pytest.approx(np.log(2))  # step 0 and the 0 left out


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_tiny(["C14"], tmp_path_factory.mktemp("c14"), figures=True)[0]


def test_tiny_numbers(result):
    n, p = result.numbers, result.params
    assert result.figure.is_file()
    for alpha in p["alphas"]:  # v_hat / h at batch 1, seed 0, replayed with torch's Adam
        prob = problem(PROBLEM, dtype="float64", **args(alpha, 1))
        model = prob.model(0)
        opt = torch.optim.Adam(model.parameters(), lr=p["ratio_lr"], betas=(0.9, 0.999))
        batches = prob.batches(0)
        for _ in range(p["steps"]):
            opt.zero_grad()
            prob.loss(model, next(batches)).backward()
            opt.step()
        v_hat = opt.state[model.x]["exp_avg_sq"] / (1 - 0.999 ** p["steps"])
        ratio = (v_hat / torch.diagonal(prob.hessian())).numpy()
        assert n["points"][f"{alpha:g}/1"]["spread"][0] == pytest.approx(float(np.std(np.log(ratio))), rel=1e-6)
    # full batch: v_hat ~ (S r)_i^2 has nothing to do with S_ii; batch 1: within the noise of the EMA
    for alpha in p["alphas"]:
        assert np.mean(n["points"][f"{alpha:g}/full"]["spread"]) > 4 * np.mean(n["points"][f"{alpha:g}/1"]["spread"])
