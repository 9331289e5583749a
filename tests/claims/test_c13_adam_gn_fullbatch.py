"""C13 (Adam vs GN in full batch): the rule's three verdicts on synthetic numbers, and the tiny run
against closed forms (GD on the block problem reduces to four scalar recursions; GN^p = GD exactly;
Newton in the eigenbasis in one step)."""

from __future__ import annotations

import numpy as np
import pytest

from precond.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, get
from precond.claims.c13_adam_gn_fullbatch import BLOCKS, RHOS, block_args

from ._helpers import changed, run_tiny


def _summary(gd: int, gn: int, adam: int) -> dict:
    return {lab: {"lr": 0.1, "steps": [s], "edge": [], "by_lr": {"0.1": float(s)}}
            for lab, s in (("GD", gd), ("GN^-1", gn), ("GN^-1/2", gn), ("Adam", adam))}  # fmt: skip


GOOD = {"tol": 1e-6, "budget": 500, "scale_ratio": 8.0, "f0": 10.0, "f0_control": 5.0, "curvatures": [1, 8.2, 15.4, 22.6],
        "GN^-1 vs GD": {"max_dev": 1e-16, "mismatched": [], "lrs": 13},
        "GN^-1/2 vs GD": {"max_dev": 2e-16, "mismatched": [], "lrs": 13},
        "blocks": _summary(90, 90, 20), "control": _summary(300, 250, 260),
        "newton": {"steps": 1, "residual_after_1": 1e-28}}  # fmt: skip


def test_rule_gives_each_verdict():
    rule = get(["C13"])[0].verdict
    v = rule(GOOD)
    assert v.status == REPRODUCED, [c.text() for c in v.checks if c.status != REPRODUCED]
    assert rule(changed(GOOD, ("blocks", "Adam", "steps"), [113])).status == NOT_REPRODUCED  # the quick run's numbers
    assert rule(changed(GOOD, ("GN^-1 vs GD", "max_dev"), 1e-3)).status == NOT_REPRODUCED
    assert rule(changed(GOOD, ("control", "Adam", "steps"), [100])).status == NOT_REPRODUCED
    assert rule(changed(GOOD, ("blocks", "Adam", "edge"), ["lr=1 is the largest value of its grid"])).status == INCONCLUSIVE
    both_miss = changed(changed(GOOD, ("control", "Adam", "steps"), [501]), ("control", "GN^-1/2", "steps"), [501])
    assert rule(changed(both_miss, ("control", "GN^-1", "steps"), [501])).status == INCONCLUSIVE


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_tiny(["C13"], tmp_path_factory.mktemp("c13"), figures=True)[0]


def test_tiny_numbers(result):
    n = result.numbers
    assert result.figure.is_file()
    # GD on the block problem from 0 to w* constant in blocks: e_b(t) = (1 - lr l_b)^t s_b, loss 1/2 sum_b 25 l_b e_b^2
    lam = np.array([1 + (b - 1) * r for b, r in zip(BLOCKS, RHOS)])
    s = np.array(block_args(n["scale_ratio"])["w_star"])[np.cumsum([0] + BLOCKS[:-1])]
    assert n["f0"] == pytest.approx(0.5 * float(np.sum(25 * lam * s**2)), rel=1e-12)
    t = np.arange(n["budget"] + 1)[:, None]
    for lr, steps in n["blocks"]["GD"]["by_lr"].items():
        loss = 0.5 * np.sum(25 * lam * s**2 * (1 - float(lr) * lam) ** (2 * t), axis=1)
        hit = np.flatnonzero(loss <= n["tol"] * n["f0"])
        assert steps == (hit[0] if hit.size else n["budget"] + 1), lr
    for lab in ("GN^-1", "GN^-1/2"):  # the GN diagonal is exactly 1: GN^p is GD
        assert n[f"{lab} vs GD"]["max_dev"] < 1e-12 and not n[f"{lab} vs GD"]["mismatched"]
        assert n["blocks"][lab]["by_lr"] == n["blocks"]["GD"]["by_lr"]
    assert n["newton"]["steps"] == 1 and n["newton"]["residual_after_1"] < 1e-24
