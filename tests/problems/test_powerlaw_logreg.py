"""powerlaw_logreg (seed 001's sparse power-law logistic regression): the frequencies, the rows, the
minimizer and the smoothness bound are what the module says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from precond.problems import get
from precond.problems.powerlaw_logreg import powerlaw_frequencies


def test_frequencies_follow_the_power_law_and_sum_to_nnz():
    p = powerlaw_frequencies(256, 1.5, 8.0)
    assert p.sum() == pytest.approx(8.0, rel=1e-9)
    free = p < 1  # the uncapped ones are c (j + 1)^-alpha
    j = np.flatnonzero(free)
    assert np.allclose(p[j] * (j + 1) ** 1.5, p[j[0]] * (j[0] + 1) ** 1.5, rtol=1e-12)
    assert np.allclose(powerlaw_frequencies(64, 0.0, 4.0), 4.0 / 64)
    with pytest.raises(ValueError, match="nnz"):
        powerlaw_frequencies(10, 1.0, 20.0)


def test_rows_have_unit_norm_and_the_columns_the_frequencies():
    prob = get("powerlaw_logreg", dim=64, n=8192, alpha=1.0, nnz=6.0, dtype="float64")
    X, y = prob.data["train"]
    assert torch.allclose(X.norm(dim=1), torch.ones(len(X), dtype=torch.float64))
    present = (X > 0).double().mean(0).numpy()
    p = powerlaw_frequencies(64, 1.0, 6.0)
    sd = np.sqrt(p * (1 - p) / len(X)) + 1e-3  # (+ the few rows that drew no feature and got one)
    assert np.all(np.abs(present - p) < 5 * sd)
    assert set(torch.unique(y).tolist()) == {0.0, 1.0}


def test_minimizer_and_smoothness_bound():
    prob = get("powerlaw_logreg", dim=32, n=2048, alpha=1.0, nnz=4.0, l2=1e-3, dtype="float64")
    w = prob.minimizer.requires_grad_(True)
    (g,) = torch.autograd.grad(prob.value(w), [w])
    assert float(g.abs().max()) < 1e-10
    an = prob.anisotropy()
    X, _ = prob.data["train"]
    L = (X.T @ X).abs().sum(1) / (4 * len(X)) + 1e-3
    assert an["L1"] == pytest.approx(float(L.sum())) and an["Linf"] == pytest.approx(float(L.max()))
    for point in (torch.zeros(32, dtype=torch.float64), prob.minimizer):  # nabla^2 f <= diag(L) everywhere
        H = torch.autograd.functional.hessian(prob.value, point)
        assert float(torch.linalg.eigvalsh(torch.diag(L) - H).min()) > -1e-12
    assert an["D2"] == pytest.approx(float(prob.minimizer.norm()))
    iso = get("powerlaw_logreg", dim=32, n=2048, alpha=0.0, nnz=4.0, l2=1e-3, dtype="float64").anisotropy()
    assert iso["L1_over_dLinf"] > 0.8 > 0.2 > an["L1_over_dLinf"]  # isotropic: |L|_1 ~ d |L|_inf


def test_digits_rows_and_metrics():
    prob = get("powerlaw_logreg", dataset="digits", batch_size=8)
    X, y = prob.data["train"]
    assert X.shape == (1797, 64) and torch.allclose(X.double().norm(dim=1), torch.ones(1797, dtype=torch.float64), atol=1e-6)
    m = prob.evaluate(prob.model(3))
    assert float(prob.model(3).x.detach().abs().max()) == 0.0  # every seed starts at w = 0
    assert m["objective"] == pytest.approx(np.log(2)) and m["excess"] == pytest.approx(np.log(2) - prob.optimum)
