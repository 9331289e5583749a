"""C11 (AGD against Adam, AdamW, SGD+momentum, AdaBound; AGD's switch over training): the rule's
three verdicts on synthetic numbers, and the tiny run's numbers against what they must be."""

from __future__ import annotations

import numpy as np
import pytest

from precond.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, get
from precond.claims.c11_generalization import OPTIMIZERS, paired_gap
from precond.claims.selection import selection_higher_is_better, selection_metric
from precond.problems import resolve
from precond.problems import get as problem

from ._helpers import changed, run_tiny


def _opt(test, lr=1e-3):
    return {"lr": lr, "edge": [], "seeds": [0, 1, 2], "test": test, "diverged": 0}


def _task(agd, adam, switch, hib=True):
    t = {lab: _opt([0.9, 0.91, 0.9]) for lab in OPTIMIZERS}
    t["AGD"] = {**_opt(agd), "switch": switch, "fraction_curve": [0.03, 0.04, 0.05]}
    t["Adam"] = _opt(adam)
    return {"test_metric": "test_acc" if hib else "test_loss", "selected_on": "val_acc", "higher_is_better": hib, **t}


GOOD = {"agd_delta": 1e-5, "skipped": [], "tasks": {
    "digits_mlp": _task([0.97, 0.98, 0.975], [0.97, 0.975, 0.97], [0.02, 0.015, 0.02]),
    "shakespeare_lstm": _task([1.50, 1.52, 1.51], [1.51, 1.52, 1.515], [0.01, 0.02, 0.015], hib=False)}}  # fmt: skip


def test_rule_gives_each_verdict():
    rule = get(["C11"])[0].verdict
    assert rule(GOOD).status == REPRODUCED
    # AGD's test loss 0.05 nats above Adam's on every seed: worse beyond the margin
    assert rule(changed(GOOD, ("tasks", "shakespeare_lstm", "AGD", "test"), [1.56, 1.57, 1.565])).status == NOT_REPRODUCED
    # the fraction falls over training on every seed
    assert rule(changed(GOOD, ("tasks", "digits_mlp", "AGD", "switch"), [-0.02, -0.01, -0.02])).status == NOT_REPRODUCED
    # AGD 1 point behind on one seed, 1 ahead on another: open
    assert rule(changed(GOOD, ("tasks", "digits_mlp", "AGD", "test"), [0.96, 0.985, 0.975])).status == INCONCLUSIVE
    assert paired_gap(GOOD["tasks"]["shakespeare_lstm"])[0] == pytest.approx(0.005)  # lower loss = better: positive


def test_each_task_selects_and_reports_in_its_handles_directions():
    # digits_mlp tunes on val_loss (lower) but reports test_acc (higher): C11 selects on val_acc (higher);
    # a language task selects on and reports losses (lower); the directions come from the handle, not the names
    digits, lm = resolve("digits_mlp", {}, "float32"), resolve("shakespeare_lstm", {}, "float32")
    runs = [{"final_metrics": {"val_acc": 0.9, "val_loss": 0.3}}]
    assert selection_metric(digits, runs) == "val_acc" and selection_higher_is_better(digits, "val_acc")
    assert selection_metric(digits, []) == "val_loss" and not selection_higher_is_better(digits, "val_loss")
    assert digits.test_higher_is_better and not lm.test_higher_is_better
    assert selection_metric(lm, runs) == lm.val_metric and not selection_higher_is_better(lm, lm.val_metric)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_tiny(["C11"], tmp_path_factory.mktemp("c11"), figures=True)[0]


def test_tiny_numbers(result):
    n = result.numbers
    t = n["tasks"]["digits_mlp"]
    assert result.figure.is_file() and t["selected_on"] == "val_acc" and t["higher_is_better"]
    n_test = len(problem("digits_mlp").data["test"][1])
    for lab in OPTIMIZERS:  # accuracies on the test split: multiples of 1 / n_test
        assert len(t[lab]["test"]) == 2 and all(abs(v * n_test - round(v * n_test)) < 1e-6 for v in t[lab]["test"])
    gap = [a - b for a, b in zip(t["AGD"]["test"], t["Adam"]["test"])]
    assert paired_gap(t)[0] == pytest.approx(float(np.mean(gap)))
    # with delta 1e-5 every coordinate with a gradient is adaptive from the first evaluation on: the fraction is the
    # share of weights not on constant input pixels, flat over training, so the switch is exactly 0
    X = problem("digits_mlp").data["train"][0]
    frac = 1 - int((X.std(0) == 0).sum()) * 64 / (64 * 64 + 64 + 64 * 10 + 10)
    assert t["AGD"]["fraction_curve"] == pytest.approx([frac] * 10, abs=1e-12) and t["AGD"]["switch"] == [0.0, 0.0]
    assert result.verdict.status == NOT_REPRODUCED  # the switch's check: 0 is not > 0


@pytest.mark.slow
def test_every_full_task_runs_end_to_end(tmp_path, monkeypatch):
    """The full size's five tasks (MLPs, the MNIST-1D CNN, the Shakespeare LSTM and transformer) at 6
    steps: each is planned, run, tuned and measured with the right metric (about 45 s)."""
    from precond.claims import c11_generalization as c11

    monkeypatch.setitem(c11.CLAIM.sizes, "tiny", c11._size({t: {"steps": 6} for t in c11.FULL_TASKS}, [0, 1], 2))
    (res,) = run_tiny(["C11"], tmp_path)
    tasks = res.numbers["tasks"]
    assert set(tasks) == set(c11.FULL_TASKS) and res.numbers["skipped"] == []
    for name, t in tasks.items():
        assert t["test_metric"] == ("test_loss" if name.startswith("shakespeare") else "test_acc"), name
        for lab in OPTIMIZERS:
            assert len(t[lab]["test"]) == 2 and all(np.isfinite(t[lab]["test"])), (name, lab)
        assert len(t["AGD"]["switch"]) == 2 and all(0 < f <= 1 for f in t["AGD"]["fraction_curve"]), name
    assert len(res.verdict.checks) == 4 * len(c11.FULL_TASKS)
