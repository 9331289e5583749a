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


def test_selection_on_a_loss_ranks_the_test_accuracy_higher_is_better():
    """digits_mlp and MNIST-1D tune on val_loss and report test_acc: the selection minimises the
    loss, the ranks and the interval method follow the accuracy (was: the loss's direction,
    ranking the least accurate optimizer first)."""
    runs = []
    for s in range(5):
        for label, lr, val, acc in (("A", 0.1, 0.30, 0.90), ("A", 0.3, 0.20, 0.95), ("B", 0.1, 0.25, 0.80)):
            r = _run(label, lr, s, val, 0.0)
            r["final_metrics"] = {"val_loss": val + 0.01 * s, "test_acc": acc - 0.01 * s}
            runs.append(r)
    res = {r.label: r for r in tune(runs, val_metric="val_loss", test_metric="test_acc", higher_is_better=False)}
    assert res["A"].hyperparameters == {"lr": 0.3} and res["A"].test_mean == pytest.approx(0.93)
    assert (res["A"].rank, res["B"].rank) == ("1", "2")
    assert res["A"].ci_method == "bootstrap"  # an accuracy is no positive cost: no log-t
    forced = {r.label: r for r in tune(runs, val_metric="val_loss", test_metric="test_acc", higher_is_better=False,
                                       test_higher_is_better=False)}  # fmt: skip
    assert (forced["A"].rank, forced["B"].rank) == ("2", "1")


def test_test_direction_is_read_from_the_problem_and_the_meta():
    from precond.experiments.tuning import test_higher_is_better
    from precond.problems import resolve, test_direction

    assert resolve("digits_mlp").test_higher_is_better is True and resolve("digits_mlp").higher_is_better is False
    assert resolve("rosenbrock").test_higher_is_better is False
    assert test_direction("val_acc", "val_acc", True) is True and test_direction("val_loss", "steps_to_target", True) is False
    # a store written before the field existed: read from the names
    assert test_higher_is_better({"val_metric": "val_loss", "test_metric": "test_acc", "higher_is_better": False}) is True
    assert test_higher_is_better({"val_metric": "val_loss", "test_metric": "test_acc", "higher_is_better": False,
                                  "test_higher_is_better": False}) is False  # fmt: skip
