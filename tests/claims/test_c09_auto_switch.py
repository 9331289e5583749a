"""C9 (AGD's delta limits; AGD vs Adam on Beale from (-2.5, -2.5)): the rule's three verdicts on
synthetic numbers, and the tiny run against direct computations (a NumPy restatement of the SGD
branch, torch.optim.Adam)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from precond.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, get
from precond.claims.c09_auto_switch import LARGE_DELTA, LIMIT_LR, comparison
from precond.problems import get as problem

from ._helpers import changed, run_tiny

GOOD = {"beta1": 0.9, "steps": 1000, "diverged_limits": [], "lrs": [0.01, 0.1, 1.0],
        "large": {"max_fraction": 0.0, "distance_to_sgd": [0.001, 0.002, 0.0015], "final_gap": [0.0] * 3},
        "small": {"min_fraction": 1.0, "distance_to_smaller": [0.0, 0.0, 0.0]},
        "AGD": {"0.01": [1.0, 1.1, 0.9], "0.1": [0.5, 0.6, 0.55], "1.0": [0.01, 0.012, 0.011]},
        "Adam": {"0.01": [2.0, 2.1, 1.9], "0.1": [1.0, 1.1, 1.05], "1.0": [0.005, 0.006, 0.0055]}}  # fmt: skip


def test_rule_gives_each_verdict():
    rule = get(["C9"])[0].verdict
    assert rule(GOOD).status == REPRODUCED  # AGD closer at 2 of 3 lrs, significantly
    assert rule(changed(GOOD, ("large", "distance_to_sgd"), [0.03, 0.031, 0.032])).status == NOT_REPRODUCED
    assert rule(changed(GOOD, ("small", "min_fraction"), 0.9)).status == NOT_REPRODUCED
    # a tie at 0.1 (AGD 2x closer on one seed, 2x farther on another): 1 significant win, 1 loss -> share in [1/3, 2/3]
    assert rule(changed(GOOD, ("AGD", "0.1"), [0.5, 2.2, 1.05])).status == INCONCLUSIVE
    assert comparison(changed(GOOD, ("AGD", "0.1"), [0.5, 2.2, 1.05]))["0.1"]["closer"] == "tie"


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_tiny(["C9"], tmp_path_factory.mktemp("c09"), figures=True)[0]


def _sgd_branch_paths(steps: int, b1: float) -> tuple[np.ndarray, np.ndarray]:
    """AGD with every coordinate on its SGD branch (w -= lr/delta m_hat) and SGD with EMA momentum
    (w -= lr/delta m), restated in NumPy with Beale's analytic gradient."""
    p = problem("beale_far", dtype="float64")
    eta = LIMIT_LR / LARGE_DELTA
    out = []
    for corrected in (True, False):
        w, m, path = p.initial_point(0).double().numpy(), np.zeros(2), []
        path.append(w.copy())
        for t in range(1, steps + 1):
            m = b1 * m + (1 - b1) * p.grad(torch.as_tensor(w)).numpy()
            w = w - eta * (m / (1 - b1**t) if corrected else m)
            path.append(w.copy())
        out.append(np.asarray(path))
    return out[0], out[1]


def test_tiny_numbers(result):
    n = result.numbers
    assert result.figure.is_file()
    assert n["large"]["max_fraction"] == 0.0 and n["small"]["min_fraction"] == 1.0
    assert n["small"]["distance_to_smaller"] == [0.0]  # every coordinate adaptive: delta does not enter the step
    agd, sgd = _sgd_branch_paths(60, 0.9)
    want = np.max(np.linalg.norm(agd - sgd, axis=1)) / np.max(np.linalg.norm(sgd - sgd[0], axis=1))
    assert n["large"]["distance_to_sgd"][0] == pytest.approx(want, rel=1e-8)
    # Adam's final distance to (3, 0.5) from (-2.5, -2.5), with torch's own Adam
    p = problem("beale_far", dtype="float64")
    for lr in n["lrs"]:
        x = p.initial_point(0).double().clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr)
        for _ in range(60):
            opt.zero_grad()
            p.value(x).backward()
            opt.step()
        assert n["Adam"][str(lr)][0] == pytest.approx(float((x.detach() - p.minimizer).norm()), rel=1e-9)
