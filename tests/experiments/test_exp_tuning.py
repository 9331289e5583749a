"""The tuning protocol on a synthetic store with a known answer, CI checked by hand."""

import math

import pytest

from precond.experiments.stats import t_interval
from precond.experiments.tuning import tune


def _run(label, lr, seed, val, test, status="done", extra=None):
    hp = {"lr": lr, **(extra or {})}
    fm = {"val_loss": val, "test_loss": test} if status == "done" else {}
    return {"label": label, "optimizer": label, "hyperparameters": hp, "seed": seed, "status": status, "final_metrics": fm}


def test_t_interval_by_hand():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    mean, lo, hi = t_interval(x)
    # mean 3, s = sqrt(2.5), t_{0.975, 4} = 2.7764451051977987
    h = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert mean == 3.0 and lo == pytest.approx(3 - h, rel=1e-12) and hi == pytest.approx(3 + h, rel=1e-12)


def test_choice_edge_and_ci():
    runs = []
    tests_mid = [0.50, 0.52, 0.49, 0.55, 0.47]
    for s in range(5):
        runs.append(_run("A", 1e-3, s, 1.0 + 0.01 * s, 9.0))
        runs.append(_run("A", 1e-2, s, 0.2 + 0.01 * s, tests_mid[s]))  # best: interior of the grid
        # 1e-1 has a better mean on 4 seeds but one diverged seed: it must lose
        runs.append(_run("A", 1e-1, s, 0.01, 0.0) if s else _run("A", 1e-1, s, 0, 0, status="diverged"))
        runs.append(_run("B", 1e-3, s, 0.9, 2.0))
        runs.append(_run("B", 1e-2, s, 0.3 - 0.01 * s, 1.0 + s))  # best: the largest lr -> edge flag
    res = {r.label: r for r in tune(runs, val_metric="val_loss", test_metric="test_loss", higher_is_better=False)}
    a, b = res["A"], res["B"]
    assert a.hyperparameters == {"lr": 1e-2} and a.edge == [] and a.n_seeds == 5 and a.n_diverged == 0
    assert a.val_mean == pytest.approx(0.22)
    assert a.test_mean == pytest.approx(sum(tests_mid) / 5)
    # a loss (all values >= 0): geometric mean, t-interval of the logs back-transformed
    logs = [math.log(t) for t in tests_mid]
    m = sum(logs) / 5
    s = math.sqrt(sum((t - m) ** 2 for t in logs) / 4)
    h = 2.7764451051977987 * s / math.sqrt(5)
    assert a.ci_method == "log-t" and a.estimate == pytest.approx(math.exp(m), rel=1e-12)
    assert a.ci_low == pytest.approx(math.exp(m - h), rel=1e-12) and a.ci_high == pytest.approx(math.exp(m + h), rel=1e-12)
    assert (a.rank, b.rank) == ("1", "2")
    assert b.hyperparameters == {"lr": 1e-2} and b.edge == ["lr=0.01 is the largest value of its grid"]
    assert b.test_mean == pytest.approx(3.0)
    assert b.warnings == []


def test_higher_is_better_and_few_seeds_warning():
    runs = [_run("A", lr, s, acc, acc) for s in range(3) for lr, acc in ((0.1, 0.9), (0.3, 0.95), (1.0, 0.5))]
    runs = [dict(r, final_metrics={"val_acc": r["final_metrics"]["val_loss"], "test_acc": r["final_metrics"]["test_loss"]}) for r in runs]
    (r,) = tune(runs, val_metric="val_acc", test_metric="test_acc", higher_is_better=True,
                grids={"A": {"lr": [0.03, 0.1, 0.3, 1.0]}})
    assert r.hyperparameters == {"lr": 0.3} and r.edge == []
    assert any("at least 5" in w for w in r.warnings)
    (r,) = tune(runs, val_metric="val_acc", test_metric="test_acc", higher_is_better=True, grids={"A": {"lr": [0.1, 0.3]}})
    assert r.edge == ["lr=0.3 is the largest value of its grid"]


def test_all_settings_diverged_reports_it():
    runs = [_run("A", lr, s, 0, 0, status="diverged") for lr in (0.1, 1.0) for s in range(5)]
    (r,) = tune(runs, val_metric="val_loss", test_metric="test_loss", higher_is_better=False)
    assert r.n_diverged == 5 and math.isnan(r.test_mean) and any("diverged" in w for w in r.warnings)
