"""C12 (AdaGrad under anisotropic smoothness): the rule's three verdicts on synthetic numbers, and the
tiny run against a NumPy replay of SGD on the same minibatches and the bounds' ratios recomputed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from precond.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, get
from precond.claims.c12_adagrad_anisotropic import best_gap, gaps, settings
from precond.problems import get as problem

from ._helpers import changed, run_tiny


def _batch(sgd: list[float], ada: list[float], norm: list[float]) -> dict:
    return {lab: {"lr": 1.0, "edge": [], "excess": e} for lab, e in (("SGD", sgd), ("AdaGrad", ada), ("AdaGrad-Norm", norm))}


def _setting(ratio: float, batches: dict) -> dict:
    return {"batches": batches, "anisotropy": {"L1_over_dLinf": 0.03, "sigma1_over_sqrtd_sigma2": 0.8, "ratio": ratio, "L1": 2.0,
                                               "Linf": 0.25, "sigma1": 4.0, "sigma2": 0.3, "D2": 20.0, "Dinf": 5.0, "d": 256}}


WIN = {"8": _batch([0.1, 0.11], [0.05, 0.051], [0.09, 0.095]), "4096": _batch([0.01, 0.011], [1e-5, 1.1e-5], [2e-4, 2.2e-4])}
GOOD = {"alpha": 1.0, "steps": 150, "settings": {
    "alpha0": _setting(0.1, {"8": _batch([0.1, 0.1], [0.1, 0.1], [0.11, 0.1]), "4096": _batch([0.01, 0.011], [0.012, 0.011], [0.02, 0.02])}),
    "alpha1": _setting(1.9, WIN), "digits": _setting(0.2, {"8": _batch([0.2, 0.21], [0.1, 0.1], [0.3, 0.3])})}}  # fmt: skip


def test_rule_gives_each_verdict():
    rule = get(["C12"])[0].verdict
    v = rule(GOOD)
    assert v.status == REPRODUCED, [c.text() for c in v.checks if c.status != REPRODUCED]
    assert "2 of 3 settings" in v.measured  # the ratio predicts alpha1 (win) and alpha0 (no win), not digits
    assert rule(changed(GOOD, ("settings", "alpha1", "batches", "8", "SGD", "excess"), [0.01, 0.011])).status == NOT_REPRODUCED
    iso_win = changed(GOOD, ("settings", "alpha0", "batches", "8", "AdaGrad", "excess"), [0.01, 0.011])
    assert rule(changed(iso_win, ("settings", "alpha0", "batches", "4096", "AdaGrad", "excess"), [1e-3, 1.2e-3])).status == NOT_REPRODUCED
    assert rule(changed(GOOD, ("settings", "alpha1", "batches", "8", "SGD", "excess"), [0.2, 0.04])).status == INCONCLUSIVE
    edge = changed(GOOD, ("settings", "digits", "batches", "8", "AdaGrad", "edge"), ["lr=30 is the largest value of its grid"])
    assert rule(edge).status == INCONCLUSIVE


def test_gaps_are_paired_by_seed():
    assert gaps(WIN["8"], "SGD") == pytest.approx([2.0, 0.11 / 0.051])
    assert best_gap(WIN["4096"]) == pytest.approx([20.0, 20.0])


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_tiny(["C12"], tmp_path_factory.mktemp("c12"), figures=True)[0]


def test_tiny_numbers(result):
    n, p = result.numbers, result.params
    assert result.figure.is_file()
    for name, s in settings(p).items():
        prob = problem("powerlaw_logreg", **s["args"])
        X, y = (t.double().numpy() for t in prob.data["train"])
        an = n["settings"][name]["anisotropy"]
        L = np.abs(X.T @ X).sum(1) / (4 * len(X)) + prob.l2
        assert an["L1"] == pytest.approx(L.sum(), rel=1e-9) and an["ratio"] == pytest.approx(
            L.max() * an["D2"] ** 2 / (L.sum() * an["Dinf"] ** 2), rel=1e-9)
        b = s["batches"][0]
        sgd = n["settings"][name]["batches"][str(b)]["SGD"]
        # SGD replayed in NumPy on the same minibatches from w = 0: w -= lr (X_B^T (sigmoid(X_B w) - y_B) / B + l2 w)
        prob_b = problem("powerlaw_logreg", **s["args"], batch_size=b)
        w, batches = np.zeros(X.shape[1]), prob_b.batches(p["seeds"][0])
        for _ in range(p["steps"]):
            bt = next(batches)
            xb, yb = bt.inputs.double().numpy(), bt.targets.double().numpy()
            w -= sgd["lr"] * (xb.T @ (1 / (1 + np.exp(-xb @ w)) - yb) / len(xb) + prob.l2 * w)
        z = X @ w
        f = float(np.mean(np.logaddexp(0, -(2 * y - 1) * z)) + 0.5 * prob.l2 * w @ w)
        assert sgd["excess"][0] == pytest.approx(f - prob.optimum, rel=1e-3, abs=1e-6)
    assert math.isfinite(n["settings"]["alpha1"]["batches"]["8"]["AdaGrad"]["excess"][0])
