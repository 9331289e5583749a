"""Every claim's experiments at the test size (``tiny``), end to end through the engine, with their
measured numbers checked against what the mathematics says they must be."""

from __future__ import annotations

import math

import numpy as np
import pytest

from precond.claims import NOT_REPRODUCED, REPRODUCED

from ._helpers import run_tiny


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("claims")
    return {r.claim.id: r for r in run_tiny(["C1", "C2", "C3", "C4", "C5", "C6", "C7"], tmp, figures=True)}


def test_every_claim_has_a_verdict_and_a_figure(results):
    assert sorted(results) == [f"C{i}" for i in range(1, 8)]
    for r in results.values():
        assert r.figure is not None and r.figure.is_file() and r.figure.with_suffix(".svg").is_file()
        assert r.verdict.measured and r.verdict.checks
        j = r.to_json()
        assert {"id", "source", "claim", "verdict", "measured", "rule", "figure"} <= set(j)


def test_c1_numbers(results):
    n = results["C1"].numbers
    assert n["pinv_g"] == [1.0, 10.0] and n["g"] == [10.0, 10.0]
    assert n["newton_steps"] == [1]
    # GD on 1/2(10x^2 + y^2) from (1, 10): f_t = 5 (1 - 10 lr)^(2t) + 50 (1 - lr)^(2t), the first t with f_t <= tol
    lr, t = n["gd_lr"], np.arange(200)
    f = 5 * (1 - 10 * lr) ** (2 * t) + 50 * (1 - lr) ** (2 * t)
    assert n["gd_steps"] == [int(np.argmax(f <= n["tol"]))]
    assert lr > 0.1 and n["gd_zigzag"] == [1.0]  # 1 - 10 lr < 0: x flips sign every step
    assert results["C1"].verdict.status == REPRODUCED


def test_c2_numbers(results):
    n = results["C2"].numbers
    for prob in ("ravine", "plateau", "saddle"):  # EMA at lr / (1 - b) is heavy ball at lr: the same runs
        assert n[prob]["EMA"]["steps"] == n[prob]["heavy ball"]["steps"]
        assert n[prob]["EMA"]["lr"] == pytest.approx(n[prob]["heavy ball"]["lr"] / (1 - n["beta"]))
    # with beta = 0.9 heavy ball converges at rate sqrt(0.9) per step at best: >= 150 steps to 1e-8 from f = 61
    assert min(n["ravine"]["heavy ball"]["steps"]) > 150 > max(n["ravine"]["GD"]["steps"])
    assert results["C2"].verdict.status == NOT_REPRODUCED


def test_c3_numbers(results):
    n = results["C3"].numbers
    assert np.max(n["AdaGrad"]["increase_share"]) == 0.0  # AdaGrad's accumulator only grows
    assert np.mean(n["AdaGrad"]["slope"]) == pytest.approx(-0.5, abs=0.1)  # s_t grows like t under persistent noise
    assert np.min(n["RMSProp"]["increase_share"]) > 0.5


def test_c4_numbers(results):
    n = results["C4"].numbers
    est, se = n["bias"]["m"]["1"]
    assert abs(est + 0.9) < 4 * se  # E[m_1] = (1 - b1) mu
    for t, (est, se) in n["bias"]["m_hat"].items():
        assert abs(est) < 4 * se, t  # E[m_hat_t] = mu
    assert n["deviation"]["Adam"]["1"] == 0.0 and max(n["deviation"]["Adam"].values()) < 1e-3
    assert math.isinf(n["deviation"]["SGD"]["10000"])  # lr 0.01 on curvature 1e4 diverges
    assert 0 < n["over"] / n["total"] < 0.05 and 1 < n["worst_step_over_lr"] < 1.5
    assert n["kingma_ba_bound"] == pytest.approx(0.1 / math.sqrt(0.001))
    assert np.mean(n["spearman"]) < -0.9


def test_c5_numbers(results):
    n = results["C5"].numbers
    assert n["notes"]["Adam"]["x_final"][0] > 0.99  # the notes' drift: +gamma per cycle from x = 1
    assert n["fig1"]["AMSGrad"]["x_final"][0] < -0.5
    for v in ("notes", "fig1", "stochastic"):
        assert n[v]["Adam"]["avg_regret"][0] > abs(n[v]["mean_coef"])


def test_c6_numbers(results):
    n = results["C6"].numbers
    assert n["Adam-L2"]["spearman"] == [-1.0]
    assert n["Adam-L2"]["slope"][0] == pytest.approx(-1.0, abs=0.02)  # r_i ~ 1 / sqrt(v_hat_i)
    assert max(n["AdamW"]["max_abs_rate_minus_1"]) < 1e-9  # decoupled decay: exactly lr * lam per step
    assert results["C6"].verdict.status == REPRODUCED


def test_c7_numbers(results):
    n = results["C7"].numbers
    assert n["GD"]["test_error"] == [0.0]
    for lab in ("AdaGrad", "RMSProp", "Adam"):
        assert n[lab]["test_error"] == n["neg_fraction"]  # sign(X^T y): +1 everywhere
    assert results["C7"].verdict.status == REPRODUCED
