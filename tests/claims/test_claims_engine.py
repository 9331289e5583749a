"""The claims engine: decisions from intervals, specs as TOML, experiments named by their spec, shared
runs across sensitivity variants, verdicts only from complete runs of the named spec, the
computation cache, and the tuning helper's grid-edge notes."""

from __future__ import annotations

import json
import math
import sqlite3
import sys

import pytest

from precond.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Check, combine, engine, flag, get
from precond.claims.base import decide
from precond.claims.measure import fold, geo_ci, mean_ci, proportion_ci, tune_on

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize("est, op, thr, lo, hi, status", [
    (2.0, ">", 1.0, 1.5, 2.5, REPRODUCED), (0.5, ">", 1.0, 0.2, 0.8, NOT_REPRODUCED), (1.1, ">", 1.0, 0.9, 1.3, INCONCLUSIVE),
    (0.5, "<", 1.0, 0.2, 0.8, REPRODUCED), (2.0, "<", 1.0, 1.5, 2.5, NOT_REPRODUCED), (1.0, "<=", 1.0, None, None, REPRODUCED),
    (1.0, "<", 1.0, None, None, NOT_REPRODUCED), (math.nan, ">", 0.0, None, None, INCONCLUSIVE),
    (1.0, ">", 0.0, math.nan, math.nan, INCONCLUSIVE),
])  # fmt: skip
def test_decide(est, op, thr, lo, hi, status):
    assert decide(est, op, thr, lo, hi) == status


def test_combine_and_flag():
    ok, bad = Check("a", 2.0, ">", 1.0), Check("b", 0.0, ">", 1.0)
    assert combine([ok, ok], "m").status == REPRODUCED
    assert combine([ok, bad, flag("grid", "edge")], "m").status == NOT_REPRODUCED
    assert combine([ok, flag("grid", "edge")], "m").status == INCONCLUSIVE
    assert combine([], "m").status == INCONCLUSIVE


def test_intervals():
    assert mean_ci([3.0]) == (3.0, 3.0, 3.0)  # one measurement: its own interval
    est, lo, hi = geo_ci([1.0, 2.0, 4.0])
    assert est == pytest.approx(2.0) and lo < 2.0 < hi
    assert fold((-0.1, -0.3, 0.1)) == (0.1, 0.0, 0.3) and fold((-2.0, -3.0, -1.0)) == (2.0, 1.0, 3.0)
    k, lo, hi = proportion_ci(0, 1000)
    assert (k, lo) == (0.0, 0.0) and hi == pytest.approx(1 - 0.025 ** (1 / 1000), rel=1e-6)  # exact binomial


def test_spec_dict_as_toml_round_trips():
    spec = {"name": "x", "seeds": [0, 1], "dtype": "float64", "trajectory": True,
            "problem": {"name": "reddi", "args": {"C": 3.0}}, "budget": {"steps": 10, "divergence_bound": 1e30},
            "optimizers": [{"name": "Adam", "label": "AMSGrad", "lr_schedule": "inverse_sqrt",
                            "hyperparameters": {"lr": {"logspace": [1e-3, 1.0, 4]}, "betas": [[0.0, 0.1]], "amsgrad": True}}]}  # fmt: skip
    assert tomllib.loads(engine.to_toml(spec)) == spec
    a = engine.experiment_name("C9", "t", spec)
    assert a == engine.experiment_name("C9", "t", {**spec, "name": "other"}) and a.startswith("claims.C9.t.")
    assert a != engine.experiment_name("C9", "t", {**spec, "seeds": [0, 2]})


def test_sensitivity_variants_share_unchanged_experiments():
    p = engine.plan(get(["C2"]), "quick")
    main, *variants = p.claims[0].variants
    tol = next(v for v in variants if v.setting.param == "tol")  # the ravine's target: the other problems' runs are shared
    assert {t: n == main.sweeps[t] for t, n in tol.sweeps.items()} == {
        "ravine-gd": False, "ravine-momentum": False, "plateau-gd": True, "plateau-momentum": True, "saddle-gd": True,
        "saddle-momentum": True}
    beta = next(v for v in variants if v.setting.param == "beta")
    assert beta.sweeps["ravine-gd"] == main.sweeps["ravine-gd"] and beta.sweeps["ravine-momentum"] != main.sweeps["ravine-momentum"]


def test_a_missing_run_makes_the_claim_inconclusive(tmp_path):
    store = str(tmp_path / "s.sqlite")
    p = engine.plan(get(["C7"]), "tiny", sensitivity=False)
    outcome = engine.execute(p, store, workers=1, progress=False)
    assert engine.evaluate(p, outcome, store, None)[0].verdict.status == REPRODUCED
    con = sqlite3.connect(store)
    con.execute("DELETE FROM runs WHERE rowid = (SELECT min(rowid) FROM runs)")
    con.commit()
    con.close()
    (r,) = engine.evaluate(p, outcome, store, None)
    assert r.verdict.status == INCONCLUSIVE and "1 of 12 runs missing" in r.verdict.measured


def test_runs_of_another_spec_are_not_read(tmp_path):
    store = str(tmp_path / "s.sqlite")
    p = engine.plan(get(["C7"]), "tiny", sensitivity=False)
    outcome = engine.execute(p, store, workers=1, progress=False)
    con = sqlite3.connect(store)
    con.execute("UPDATE runs SET spec_hash = 'another' WHERE rowid = (SELECT min(rowid) FROM runs)")
    con.commit()
    con.close()
    assert "1 of 12 runs missing" in engine.evaluate(p, outcome, store, None)[0].verdict.measured


def test_computations_are_cached_beside_the_store(tmp_path):
    store = str(tmp_path / "s.sqlite")
    p = engine.plan(get(["C6"]), "tiny", sensitivity=False)
    first = engine.execute(p, store, workers=1, progress=False)
    files = sorted(engine.cache_dir(store).glob("*.json"))
    assert len(files) == len(p.computations) == 2
    data = json.loads(files[0].read_text())
    data["marker"] = 1
    files[0].write_text(json.dumps(data))
    again = engine.execute(p, store, workers=1, progress=False)
    assert again.computed[files[0].stem]["marker"] == 1  # read, not recomputed
    assert {k: v for k, v in again.computed[files[0].stem].items() if k != "marker"} == first.computed[files[0].stem]


def _run(label: str, lr: float, seed: int, key: str) -> dict:
    return {"key": key, "label": label, "optimizer": "SGD", "hyperparameters": {"lr": lr}, "seed": seed, "status": "done",
            "final_metrics": {}, "config": {"dtype": "float64"}}  # fmt: skip


def test_grid_edge_is_noted_unless_an_interior_value_ties():
    grid = {"GD": {"lr": [0.1, 0.2, 0.3]}}
    runs = [_run("GD", lr, s, f"{lr}-{s}") for lr in (0.1, 0.2, 0.3) for s in (0, 1)]
    improving = {r["key"]: 10.0 - 10 * r["hyperparameters"]["lr"] for r in runs}  # best at the largest lr
    res = tune_on(runs, "steps", improving, grid)["GD"]
    assert res["hyperparameters"] == {"lr": 0.3} and res["edge"] == ["lr=0.3 is the largest value of its grid"]
    flat = {r["key"]: 5.0 for r in runs}  # every lr alike: grid order picks 0.1, but 0.2 is as good
    res = tune_on(runs, "steps", flat, grid)["GD"]
    assert res["hyperparameters"] == {"lr": 0.1} and res["edge"] == []
