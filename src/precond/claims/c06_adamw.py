"""C6 AdamW against Adam with L2: with L2 added to the gradient, Adam divides the decay term by
sqrt(v_hat), so coordinates with a large gradient history are regularized less; decoupled decay
(AdamW) shrinks every coordinate alike.

Measured (computed: the engine records no optimizer state) on seed 002's linear regression
(``linear_regression``, identity basis) with feature variances log-spaced over 1e-2..1e2
(features of very different scales), minibatches of 16, noise std 0.5, trained from the
problem's start by precond's ``Adam(weight_decay=lam)`` (L2) and ``AdamW(weight_decay=lam)``.
At 5 checkpoints over the second half of the run, the decay's share of one step is measured
by a counterfactual: from copies of the model and the optimizer (same state, same gradient),
the step with decay minus the step without, per coordinate, in units of ``lr * lam * theta_i``:
the shrinkage rate ``r_i`` (AdamW: 1 for every coordinate; Adam-L2: about
``(1 - b1) / (sqrt(v_hat_i) + eps)``, as its decay enters through the moment). The gradient
history is ``h_i = sqrt(v_hat_i)`` from the optimizer's state.

Also reported (not part of the rule): each coordinate's shrinkage at the end of training
against a twin run without decay (same batches), ``1 - theta_i(lam) / theta_i(0)``; over a long
run that one depends on the equilibrium of decay and data gradient for both optimizers.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import figures as F
from .base import Check, Claim, Computation, OpenSetting, Verdict, combine, fmt
from .measure import loglog_slope, mean_ci, spearman

OPTIMIZERS = {"Adam-L2": "Adam", "AdamW": "AdamW"}


def _problem(dim: int):
    from precond.problems import get

    return get("linear_regression", dim=dim, spectrum=np.logspace(2, -2, dim).tolist(), noise_std=0.5, batch_size=16,
               dtype="float64")  # fmt: skip


def _train(name: str, lam: float, lr: float, steps: int, seed: int, dim: int, checkpoints: list[int]) -> dict[str, Any]:
    import torch

    from precond.optim import get_optimizer

    problem = _problem(dim)
    model = problem.model(seed)
    (x,) = list(model.parameters())
    cls = get_optimizer(name)
    opt = cls([x], lr=lr, weight_decay=lam)
    batches = problem.batches(seed)
    rates, hist = [], []
    for t in range(1, steps + 1):
        batch = next(batches)
        opt.zero_grad()
        problem.loss(model, batch).backward()
        if t in checkpoints and lam > 0:
            steps_ = {}
            for wd in (lam, 0.0):  # the same state and gradient, with and without the decay
                o2 = copy.deepcopy(opt)  # copies the parameter and the state, not the gradient
                (x2,) = o2.param_groups[0]["params"]
                x2.grad = x.grad.clone()
                for g in o2.param_groups:
                    g["weight_decay"] = wd
                o2.step()
                steps_[wd] = x2.detach().clone()
            theta = x.detach()
            rates.append(((steps_[0.0] - steps_[lam]) / (lr * lam * theta)).tolist())
            b2 = opt.param_groups[0]["betas"][1]
            hist.append((opt.state[x]["exp_avg_sq"] / (1 - b2**t)).sqrt().tolist())
        opt.step()
    return {"theta": x.detach().tolist(), "rates": rates, "history": hist}


def shrinkage(name: str, lam: float, lr: float, steps: int, seeds: list[int], dim: int) -> dict[str, Any]:
    """Per seed: the counterfactual shrinkage rates and gradient histories at the checkpoints, and the
    final weights with and without decay."""
    checkpoints = [steps // 2 + k * (steps // 2) // 5 for k in range(1, 6)]
    out = []
    for seed in seeds:
        with_decay = _train(name, lam, lr, steps, seed, dim, checkpoints)
        without = _train(name, 0.0, lr, steps, seed, dim, [])
        out.append({"rate": np.mean(with_decay["rates"], 0).tolist(), "history": np.mean(with_decay["history"], 0).tolist(),
                    "theta": with_decay["theta"], "theta0": without["theta"]})  # fmt: skip
    return {"seeds": out, "feature_std": np.sqrt(np.logspace(2, -2, dim)).tolist()}


def computations(p: Mapping[str, Any]) -> dict[str, Computation]:
    return {lab: Computation(f"{__name__}:shrinkage", {"name": name, "lam": p["lam"], "lr": p["lr"], "steps": p["steps"],
                                                       "seeds": list(p["seeds"]), "dim": p["dim"]})
            for lab, name in OPTIMIZERS.items()}  # fmt: skip


def measure(inputs: Any, p: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"lam": p["lam"], "lr": p["lr"], "_plot": {}}
    for lab in OPTIMIZERS:
        res = inputs.computed(lab)
        seeds = res["seeds"]
        out[lab] = {
            "spearman": [spearman(s["history"], s["rate"]) for s in seeds],
            "spread": [float(np.max(s["rate"]) / np.min(s["rate"])) for s in seeds],
            "slope": [loglog_slope(s["history"], s["rate"]) for s in seeds],
            "max_abs_rate_minus_1": [float(np.max(np.abs(np.array(s["rate"]) - 1))) for s in seeds],
            "final_shrink_spearman": [spearman(res["feature_std"], 1 - np.array(s["theta"]) / np.array(s["theta0"]))
                                      for s in seeds],
        }  # fmt: skip
        s0 = seeds[0]
        out["_plot"][lab] = {"history": s0["history"], "rate": s0["rate"], "feature_std": res["feature_std"],
                             "final_shrink": (1 - np.array(s0["theta"]) / np.array(s0["theta0"])).tolist()}  # fmt: skip
    return out


def verdict(n: Mapping[str, Any]) -> Verdict:
    l2, w = n["Adam-L2"], n["AdamW"]
    rho, spread = mean_ci(l2["spearman"]), mean_ci(l2["spread"])
    w_spread = mean_ci(w["spread"])
    checks = [
        Check.ci("Adam-L2: Spearman(gradient history sqrt(v_hat_i), shrinkage rate r_i)", rho, "<", -0.9),
        Check.ci("Adam-L2: spread of the shrinkage rates, max r / min r", spread, ">", 10),
        Check.ci("AdamW: spread of the shrinkage rates, max r / min r (alike)", w_spread, "<", 1.01),
    ]
    measured = (f"Adam-L2: rate against history rank correlation {fmt(rho[0])}, log-log slope "
                f"{fmt(mean_ci(l2['slope'])[0])}, spread {fmt(spread[0])}x; AdamW: spread {fmt(w_spread[0])}x, "
                f"max |r - 1| {fmt(max(w['max_abs_rate_minus_1']))}; end-of-run shrinkage against feature scale: rank "
                f"correlation {fmt(mean_ci(l2['final_shrink_spearman'])[0])} (Adam-L2), "
                f"{fmt(mean_ci(w['final_shrink_spearman'])[0])} (AdamW)")  # fmt: skip
    return combine(checks, measured, [
        f"lr {fmt(n['lr'])}, lam {fmt(n['lam'])}; r_i is the decay's part of one step in units of lr * lam * theta_i "
        "(see the module); the end-of-run shrinkage is reported, not tested: it mixes in the data gradient's pull."])


def figure(n: Mapping[str, Any], base: Path) -> Path:
    pl = n["_plot"]
    fig, (a, b) = F.figure(2, width=5.4)
    for lab, mk in zip(OPTIMIZERS, ("o", "s")):
        a.loglog(pl[lab]["history"], pl[lab]["rate"], mk, ms=4, label=lab)
        b.semilogx(pl[lab]["feature_std"], pl[lab]["final_shrink"], mk + "-", ms=4, label=lab)
    a.set_xlabel("gradient history sqrt(v_hat_i)")
    a.set_ylabel("shrinkage rate per step / (lr lam)")
    a.set_title("the decay's part of one step (seed 0)", fontsize=9)
    a.legend(fontsize=7)
    b.set_xlabel("feature std of coordinate i")
    b.set_ylabel("1 - theta_i(lam) / theta_i(0) at the end")
    b.set_title("end-of-run shrinkage (reported, not tested)", fontsize=9)
    b.legend(fontsize=7)
    F.verdict_title(fig, "C6", f"Adam with L2 against AdamW (lam {fmt(n['lam'])}, lr {fmt(n['lr'])})")
    return F.done(fig, base)


CLAIM = Claim(
    id="C6",
    title="AdamW vs Adam with L2",
    source="seed 003 (lecture notes), 'AdamW' (naive L2 in Adam, decoupled decay)",
    statement="With L2 inside Adam, coordinates with a large gradient history are regularized less; decoupled weight "
              "decay (AdamW) shrinks all coordinates alike.",
    expected="Adam-L2: shrinkage falls with history (rank corr. ~ -1); AdamW: equal shrinkage",
    rule="On the regression (see the module), per seed: reproduced iff Adam-L2's shrinkage rate has a Spearman "
         "correlation with the gradient history whose CI (over seeds) lies below -0.9 and a spread (max/min over the "
         "coordinates) with CI above 10, while AdamW's spread has its CI below 1.01; a CI on the wrong side: not "
         "reproduced.",
    sizes={"tiny": {"seeds": [0], "steps": 100, "lr": 1e-3, "lam": 1e-2, "dim": 6},
           "quick": {"seeds": [0, 1, 2], "steps": 600, "lr": 1e-3, "lam": 1e-2, "dim": 10},
           "full": {"seeds": list(range(10)), "steps": 5000, "lr": 1e-3, "lam": 1e-2, "dim": 20}},
    computations=computations,
    measure=measure,
    verdict=verdict,
    figure=figure,
    open_settings=(
        OpenSetting("weight decay lam", "lam", 1e-2, "the notes' default lam = 0.01", (1e-2, 1e-1)),
        OpenSetting("learning rate", "lr", 1e-3, "the notes' default gamma = 1e-3", (1e-3, 1e-2)),
    ),
)
