"""Intervals that respect a metric's scale and range, ties at the floating-point floor, and a
performance profile that says who ran where (issue 11, point 19)."""

import math

import matplotlib
import numpy as np
import pytest

from precond.experiments import plots, stats
from precond.experiments.report import build_report
from precond.experiments.spec import parse_spec
from precond.experiments.sweep import run_sweep
from precond.experiments.tuning import table, table_note, tune

SPREAD = [1e-12, 3e-9, 1e-5, 0.2, 1e2]  # final losses of 5 seeds over 14 orders of magnitude


def _runs(label, tests, metric="loss", dtype=None):
    out = []
    for s, t in enumerate(tests):
        r = {"label": label, "optimizer": label, "hyperparameters": {"lr": 0.1}, "seed": s, "status": "done",
             "final_metrics": {f"val_{metric}": t, f"test_{metric}": t}}  # fmt: skip
        if dtype:
            r["config"] = {"dtype": dtype}
        out.append(r)
    return out


def test_no_negative_lower_bound_on_losses_over_orders_of_magnitude():
    assert stats.t_interval(SPREAD)[1] < 0  # what the table printed before: a negative loss
    (r,) = tune(_runs("A", SPREAD), val_metric="val_loss", test_metric="test_loss", higher_is_better=False)
    assert r.ci_method == "log-t" and 0 < r.ci_low < r.estimate < r.ci_high
    logs = np.log(SPREAD)
    assert r.estimate == pytest.approx(math.exp(logs.mean()), rel=1e-12)  # the geometric mean
    # the interval is symmetric on the log scale: a factor either side
    assert math.log(r.estimate / r.ci_low) == pytest.approx(math.log(r.ci_high / r.estimate), rel=1e-9)
    rows = table([r], "test_loss")
    assert rows[0][2:5] == ["test_loss (geo. mean)", "95% CI (log-t)", "rank"]
    assert not rows[1][3].startswith("[-")
    assert "Student-t interval of log(value)" in table_note([r])


def test_log_t_interval_covers_the_geometric_mean_at_its_nominal_rate():
    """400 seeded sets of 5 log-normal values spread over orders of magnitude (sigma = 3 in log)."""
    rng = np.random.default_rng(0)
    mu = math.log(1e-6)
    hits = 0
    for _ in range(400):
        iv = stats.interval(list(rng.lognormal(mu, 3.0, 5)), "log-t")
        assert iv.low > 0
        hits += iv.low <= math.exp(mu) <= iv.high
    assert 0.92 <= hits / 400 <= 0.98, hits / 400


def test_bootstrap_interval_covers_the_mean_and_stays_in_range():
    """Accuracy-like values in [0, 1] (beta(8, 2), mean 0.8): 400 seeded sets of 10; the
    expanded percentile bootstrap covers the mean at about 95% and never leaves [0, 1]."""
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(400):
        iv = stats.interval(list(rng.beta(8, 2, 10)), "bootstrap")
        assert 0 <= iv.low <= iv.high <= 1
        hits += iv.low <= 0.8 <= iv.high
    assert 0.90 <= hits / 400 <= 0.98, hits / 400
    # the same values give the same interval (a fixed seed)
    x = list(rng.beta(8, 2, 5))
    assert stats.interval(x, "bootstrap") == stats.interval(x, "bootstrap")


def test_accuracies_get_a_bootstrap_interval_inside_0_1():
    accs = [1.0, 1.0, 0.9, 1.0, 0.6]
    assert stats.t_interval(accs)[2] > 1  # a t-interval would claim accuracies above 1
    (r,) = tune(_runs("A", accs, metric="acc"), val_metric="val_acc", test_metric="test_acc", higher_is_better=True)
    assert r.ci_method == "bootstrap" and r.estimate == pytest.approx(0.9)
    assert 0.6 <= r.ci_low < 0.9 < r.ci_high <= 1.0
    assert table([r], "test_acc")[0][2:4] == ["test_acc (mean)", "95% CI (bootstrap)"]


def test_a_metric_with_negative_values_gets_the_bootstrap():
    assert stats.choose_method([-1.0, 2.0], higher_is_better=False) == "bootstrap"
    assert stats.choose_method([0.0, 2.0, math.inf], higher_is_better=False) == "log-t"
    with pytest.raises(ValueError, match="unknown interval method"):
        stats.interval([1.0, 2.0], "wald")


def test_ranks_with_ties():
    keys = [(0, 1e-30), (0, 3e-31), (0, 1e-3), (0, 1e-3 * (1 + 1e-8)), (0, 5.0), (1, 1e-31), (0, math.nan)]
    floor = stats.DTYPE_FLOOR["float64"]
    assert stats.ranks(keys, higher_is_better=False, floor=floor) == ["1=", "1=", "3=", "3=", "5", "6", "-"]
    # without a floor 1e-30 and 3e-31 are different numbers
    assert stats.ranks(keys[:2], higher_is_better=False) == ["2", "1"]
    assert stats.ranks([(0, 0.9), (0, 0.95), (0, 0.95)], higher_is_better=True) == ["3", "1=", "1="]
    assert not stats.tied(1.0, 1.0 + 1e-5) and stats.tied(1.0, 1.0 + 1e-7)


def test_two_optimizers_at_the_floor_are_tied_in_the_table():
    runs = _runs("Adam", [1e-30, 2e-31, 0.0, 5e-32, 1e-29]) + _runs("AGD", [3e-31, 1e-33, 2e-30, 0.0, 1e-31])
    runs += _runs("SGD", [1e-4, 2e-4, 3e-4, 1e-4, 2e-4])
    res = {r.label: r for r in tune(runs, val_metric="val_loss", test_metric="test_loss", higher_is_better=False)}
    assert (res["Adam"].rank, res["AGD"].rank, res["SGD"].rank) == ("1=", "1=", "3")
    assert res["Adam"].estimate >= stats.DTYPE_FLOOR["float64"]  # zeros count as the floor: a finite log
    row = {r[0]: r for r in table(list(res.values()), "test_loss")}["AGD"]
    assert row[2] == "<=2.2e-16" and row[4] == "1="
    assert "both <= 2.2e-16" in table_note(list(res.values()))
    # float32 runs: the floor is float32's epsilon, so 1e-8 and 3e-9 are tied too
    runs32 = _runs("A", [1e-8] * 5, dtype="float32") + _runs("B", [3e-9] * 5, dtype="float32")
    assert [r.rank for r in tune(runs32, val_metric="val_loss", test_metric="test_loss", higher_is_better=False)] == ["1=", "1="]


def _svg_text(path):
    return path.with_suffix(".svg").read_text()


def test_performance_profile_names_solvers_and_needs_two_problems(tmp_path):
    one = {"quad": {"AGD": 1e-3, "Adam": 2e-3}}
    assert plots.performance_profile(one, tmp_path / "p1") is None
    assert not (tmp_path / "p1.png").exists()
    costs = {"quad": {"AGD": 1e-3, "Adam": 2e-3}, "rosen": {"AGD": 4.0, "Adam": math.inf, "SGD": 2.0}}
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as text, to read the legend back
        path = plots.performance_profile(costs, tmp_path / "p2")
    svg = _svg_text(path)
    assert "SGD (not run on quad)" in svg and "AGD" in svg and "quad, rosen" in svg
    assert plots.profile_table(costs) == [["problem", "AGD", "Adam", "SGD"], ["quad", "1", "2", "not run"],
                                          ["rosen", "2", "failed", "1"]]  # fmt: skip


SPEC = """
name = "{name}"
seeds = [0, 1]
[problem]
name = "exp_toys:Quad"
[budget]
steps = 6
eval_every = 3
[[optimizers]]
name = "Adam"
[optimizers.hyperparameters]
lr = [0.1]
[[optimizers]]
name = "SGD"
[optimizers.hyperparameters]
lr = [0.1]
"""


def test_report_draws_no_profile_for_one_problem_and_names_the_method(tmp_path):
    store = tmp_path / "s.sqlite"
    run_sweep(parse_spec(SPEC.format(name="only")), store, workers=1, progress=False)
    html = build_report(store, tmp_path / "one").read_text()
    assert "performance_profile" not in html and "No performance profile" in html
    assert "95% CI (log-t)" in html and "Student-t interval of log(value)" in html
    # (two problems: tests/experiments/test_exp_report.py checks the profile's caption and table)
