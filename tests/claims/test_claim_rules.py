"""Each claim's verdict rule on synthetic numbers: one set that reproduces the claim, one edit that
contradicts it and one that leaves it open, so no rule can only say "reproduced"."""

from __future__ import annotations

import pytest

from precond.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, get

from ._helpers import changed

# ---- synthetic numbers, shaped as each claim's measure() returns them ------------------------------

C1 = {"tol": 1e-8, "g": [10.0, 10.0], "P": [10.0, 1.0], "pinv_g": [1.0, 10.0], "pinv_g_error": 0.0,
      "newton_steps": [1, 1, 1], "gd_lr": 0.16, "gd_steps": [65, 66, 65], "gd_zigzag": [1.0, 0.98, 1.0], "gd_edge": [],
      "budget": 400}  # fmt: skip


def _c2_part(gd: list[int], hb: list[int]) -> dict:
    return {lab: {"lr": 0.1, "steps": s, "edge": []} for lab, s in (("GD", gd), ("heavy ball", hb), ("EMA", hb))}


C2 = {"beta": 0.9, "tol": 1e-8, "escape_lr": None, "budget": {"ravine": 500, "escape": 500},
      "ravine": _c2_part([30, 31, 29], [10, 11, 10]), "plateau": _c2_part([300, 310, 290], [30, 31, 30]),
      "saddle": _c2_part([90, 95, 92], [20, 21, 20])}  # fmt: skip


def _c3(slope: float, share: float) -> dict:
    return {"increase_share": [[share, share]] * 3, "slope": [[slope, slope - 0.01], [slope + 0.01, slope], [slope, slope]],
            "late_over_early": [[0.3, 0.3]] * 3}  # fmt: skip


C3 = {"lr": 0.05, "alpha": 0.99, "steps": 2000, "AdaGrad": _c3(-0.5, 0.0), "RMSProp": _c3(0.0, 0.5)}

C4 = {"eps_inside_sqrt": False, "nsr": 1.0, "streams": 4000,
      "deviation": {"Adam": {"0.0001": 2e-3, "1": 0.0, "10000": 1e-7}, "SGD": {"0.0001": 0.9, "1": 0.0, "10000": float("inf")}},
      "bias": {"m_hat": {"1": [0.01, 0.01], "10": [0.0, 0.005]}, "m": {"1": [-0.9, 0.01]}, "v_hat": {"100": [0.003, 0.002]}},
      "over": 3, "total": 400000, "worst_step_over_lr": 1.01, "sparse_worst_step_over_lr": 0.98, "kingma_ba_bound": 3.16,
      "spearman": [-0.99, -0.98, -0.99, -1.0]}  # fmt: skip


def _c5_version(mean_coef: float) -> dict:
    return {"mean_coef": mean_coef,
            "Adam": {"x_final": [0.99, 0.98], "avg_regret": [0.9, 0.91], "decay": [1.0, 1.0]},
            "AMSGrad": {"x_final": [-0.97, -0.96], "avg_regret": [0.2, 0.21], "decay": [0.5, 0.52]}}  # fmt: skip


C5 = {"b2": 0.99, "alpha": 1.0, "C": 3.0, "notes": _c5_version(1 / 3), "fig1": _c5_version(10 / 101),
      "stochastic": _c5_version(0.2)}


def _c6(spearman: float, spread: float) -> dict:
    return {"spearman": [spearman] * 3, "spread": [spread, spread * 1.001, spread], "slope": [-1.0] * 3,
            "max_abs_rate_minus_1": [1e-12] * 3, "final_shrink_spearman": [-0.9] * 3}  # fmt: skip


C6 = {"lam": 0.01, "lr": 1e-3, "Adam-L2": _c6(-1.0, 200.0), "AdamW": _c6(float("nan"), 1.0)}

C7 = {"batch_size": None, "neg_fraction": [0.4, 0.42, 0.38], "edge": [],
      **{lab: {"test_error": e, "lr": [0.1] * 3} for lab, e in
         (("GD", [0.0, 0.0, 0.0]), ("AdaGrad", [0.4, 0.42, 0.38]), ("RMSProp", [0.4, 0.42, 0.38]), ("Adam", [0.4, 0.42, 0.38]))}}  # fmt: skip

#: claim id -> (numbers that reproduce it, an edit that contradicts it, an edit that leaves it open)
CASES = {
    "C1": (C1, (("newton_steps",), [1, 4, 1]), (("gd_edge",), ["lr=0.25 is the largest value of its grid"])),
    "C2": (C2, (("ravine", "heavy ball", "steps"), [100, 110, 100]), (("plateau", "heavy ball", "steps"), [100, 310, 100])),
    "C3": (C3, (("AdaGrad", "increase_share"), [[0.0, 0.0], [0.01, 0.0], [0.0, 0.0]]),
           (("RMSProp", "slope"), [[-0.3, -0.3], [0.1, 0.1], [0.0, 0.0]])),
    "C4": (C4, (("over",), 40000), (("deviation", "SGD"), {"0.0001": 0.05, "1": 0.0, "10000": 0.02})),
    "C5": (C5, (("fig1", "Adam", "x_final"), [-0.5, -0.6]), (("stochastic", "AMSGrad", "x_final"), [-0.9, 0.2])),
    "C6": (C6, (("AdamW", "spread"), [50.0, 60.0, 55.0]), (("Adam-L2", "spread"), [5.0, 30.0, 12.0])),
    "C7": (C7, (("Adam", "test_error"), [0.0, 0.01, 0.0]), (("GD", "test_error"), [0.0, 0.2, 0.0])),
}


@pytest.mark.parametrize("cid", sorted(CASES))
def test_rule_gives_each_verdict(cid):
    claim = get([cid])[0]
    good, (bad_path, bad), (open_path, open_) = CASES[cid]
    v = claim.verdict(good)
    assert v.status == REPRODUCED, [c.text() for c in v.checks if c.status != REPRODUCED]
    assert claim.verdict(changed(good, bad_path, bad)).status == NOT_REPRODUCED
    assert claim.verdict(changed(good, open_path, open_)).status == INCONCLUSIVE
    assert v.measured and all(c.name for c in v.checks)


def test_c2_ema_enters_the_ravine_rule_only():
    """EMA momentum is held to the ravine's threshold; on the plateau only heavy ball is (EMA is reported)."""
    claim = get(["C2"])[0]
    slow_ema_plateau = changed(C2, ("plateau", "EMA", "steps"), [3000, 3100, 2900])
    assert claim.verdict(slow_ema_plateau).status == REPRODUCED
    assert claim.verdict(changed(C2, ("ravine", "EMA", "steps"), [60, 62, 58])).status == NOT_REPRODUCED


def test_c4_control_that_cannot_fail_makes_it_inconclusive():
    v = get(["C4"])[0].verdict(changed(C4, ("deviation", "SGD"), {"0.0001": 1e-3, "1": 0.0, "10000": 1e-3}))
    assert v.status == INCONCLUSIVE
    assert any("control" in c.name and c.status == INCONCLUSIVE for c in v.checks)
