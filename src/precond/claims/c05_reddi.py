"""C5 Reddi, Kale and Kumar's counterexample: on a linear online problem on [-1, 1] whose best point is
-1, Adam drifts to +1 with non-vanishing average regret while AMSGrad goes to -1; and for which
b2 this holds.

Three versions, each on the registry's online problem, played from x_1 = 1 (other seeds:
``1 - 0.1 |N(0, 1)|``), with projection onto [-1, 1]:

* ``notes``: the lecture notes' 3-step sequence ``f_t = C x`` every third step, else ``-x``
  (``reddi``), with b1 = 0, b2 = 1 / (1 + C^2) and a constant lr (the notes' gamma);
* ``fig1``: the paper's Figure 1 online sequence ``1010 x`` every 101st step, else ``-10 x``
  (``reddi_fig1``), b1 = 0.9, b2 = 0.99, lr ``alpha / sqrt(t)`` (the paper's schedule);
* ``stochastic``: ``1010 x`` with probability 0.01, else ``-10 x`` (``reddi_stochastic``),
  same optimizer settings as ``fig1``.

Optimizers: precond's ``Adam`` and ``Adam(amsgrad=True)`` (both bias-corrected, eps 1e-8; the
paper's have neither, which changes no sign of the argument). Measured per run from the
iterate at about 100 evaluations (every k steps, k coprime with the periods 3 and 101):
``x_final``, its mean over the last 10% of the steps; the average
regret ``R_T / T`` of the points played (recorded by the engine for online problems), and its
decay ``(R_T / T) / (R_{T/2} / (T/2))`` (1: not vanishing; 1/2: R_T stopped growing).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import figures as F
from .base import Check, Claim, OpenSetting, Verdict, combine, fmt
from .measure import by_label, mean_ci

VERSIONS = ("notes", "fig1", "stochastic")
EVALUATIONS = 100  # the iterate is recorded at about 100 evenly spaced steps
OPTIMIZERS = ("Adam", "AMSGrad")


def _mean_coef(version: str, p: Mapping[str, Any]) -> float:
    """The average loss coefficient: the best fixed point -1 beats +1 by 2 |mean c| per step."""
    return {"notes": (p["C"] - 2) / 3, "fig1": (1010 - 100 * 10) / 101, "stochastic": 0.01 * 1010 - 0.99 * 10}[version]


def _every(steps: int) -> int:
    """About ``steps / EVALUATIONS``, coprime with the periods 3 and 101, so that the recorded iterates do
    not all fall on one phase of the sequence."""
    n = max(1, steps // EVALUATIONS)
    while n > 1 and math.gcd(n, 3 * 101) != 1:
        n -= 1
    return n


def experiments(p: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for version in VERSIONS:
        if version == "notes":
            problem = {"name": "reddi", "args": {"C": float(p["C"])}}
            betas, lr, schedule, steps = [0.0, 1.0 / (1.0 + p["C"] ** 2)], p["notes_lr"], "constant", p["notes_steps"]
        else:
            problem = {"name": "reddi_fig1"} if version == "fig1" else \
                {"name": "reddi_stochastic", "args": {"sequence_seed": p["sequence_seed"]}}
            betas, lr, schedule, steps = [0.9, p["b2"]], p["alpha"], "inverse_sqrt", p["steps"]
        hp = {"lr": lr, "betas": [betas]}
        out[version] = {
            "description": f"C5: Adam and AMSGrad on Reddi et al.'s counterexample ({version})",
            "seeds": list(p["seeds"]), "dtype": "float64", "trajectory": False, "problem": problem,
            "budget": {"steps": steps, "eval_every": _every(steps)},
            "optimizers": [{"name": "Adam", "lr_schedule": schedule, "hyperparameters": hp},
                           {"name": "Adam", "label": "AMSGrad", "lr_schedule": schedule, "hyperparameters": {**hp, "amsgrad": True}}],
        }  # fmt: skip
    return out


def _run_numbers(run: dict[str, Any]) -> dict[str, float]:
    h = run["history"]
    steps, avg, x = np.array(h["step"]), h["average_regret"], np.array(h["x"])
    half = int(np.argmin(np.abs(steps - steps[-1] / 2)))
    return {"x_final": float(np.mean(x[steps > 0.9 * steps[-1]])), "avg_regret": float(run["final_metrics"]["average_regret"]),
            "decay": float(avg[-1] / avg[half]) if avg[half] > 0 else float("nan")}  # fmt: skip


def measure(inputs: Any, p: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"b2": p["b2"], "alpha": p["alpha"], "C": p["C"], "_plot": {}}
    for version in VERSIONS:
        runs = by_label(inputs.runs(version))
        res: dict[str, Any] = {"mean_coef": _mean_coef(version, p)}
        plot = {}
        for lab in OPTIMIZERS:
            rs = sorted(runs[lab], key=lambda r: r["seed"])
            nums = [_run_numbers(r) for r in rs]
            res[lab] = {k: [v[k] for v in nums] for k in nums[0]}
            h = rs[0]["history"]
            plot[lab] = {"step": h["step"], "x": h["x"], "avg_regret": h["average_regret"]}
        out[version] = res
        out["_plot"][version] = plot
    return out


def verdict(n: Mapping[str, Any]) -> Verdict:
    checks = []
    for v in VERSIONS:
        adam, ams = n[v]["Adam"], n[v]["AMSGrad"]
        checks += [
            Check.ci(f"{v}: Adam's final iterate (mean of the last 10%)", mean_ci(adam["x_final"]), ">", 0.5),
            Check.ci(f"{v}: AMSGrad's final iterate", mean_ci(ams["x_final"]), "<", -0.5),
            Check.ci(f"{v}: Adam's average regret R_T/T (claim: > |mean c| = {fmt(n[v]['mean_coef'])}, half of "
                     f"sitting at +1)", mean_ci(adam["avg_regret"]), ">", abs(n[v]["mean_coef"])),
            Check.ci(f"{v}: AMSGrad's (R_T/T) / (R_T/2 / (T/2)) (decaying)", mean_ci(ams["decay"]), "<", 0.8),
        ]
    measured = "; ".join(
        f"{v}: x_T Adam {fmt(mean_ci(n[v]['Adam']['x_final'])[0])}, AMSGrad {fmt(mean_ci(n[v]['AMSGrad']['x_final'])[0])}, "
        f"R_T/T {fmt(mean_ci(n[v]['Adam']['avg_regret'])[0])} vs {fmt(mean_ci(n[v]['AMSGrad']['avg_regret'])[0])}"
        for v in VERSIONS)  # fmt: skip
    return combine(checks, f"b2 {fmt(n['b2'])} (fig1, stochastic): " + measured,
                   [f"notes: C = {fmt(n['C'])}, b1 = 0, b2 = 1/(1+C^2), constant lr; fig1 and stochastic: b1 = 0.9, "
                    f"b2 = {fmt(n['b2'])}, lr {fmt(n['alpha'])}/sqrt(t)."])


def figure(n: Mapping[str, Any], base: Path) -> Path:
    pl = n["_plot"]
    fig, axes = F.figure(len(VERSIONS) + 1, width=4.2)
    for ax, v in zip(axes, VERSIONS):
        for lab in OPTIMIZERS:
            ax.plot(pl[v][lab]["step"], pl[v][lab]["x"], lw=0.8, label=lab)
        ax.axhline(-1, color="k", ls=":", lw=0.8)
        ax.set_ylim(-1.1, 1.1)
        ax.set_xlabel("step t")
        ax.set_ylabel(f"x_t (seed 0, {EVALUATIONS} evaluations); best point -1")
        ax.set_title(v, fontsize=9)
        ax.legend(fontsize=7)
    for v, ls in zip(VERSIONS, ("-", "--", ":")):
        for lab, color in zip(OPTIMIZERS, ("C0", "C1")):
            ax = axes[-1]
            s, r = pl[v][lab]["step"][1:], pl[v][lab]["avg_regret"][1:]
            ax.loglog(s, np.maximum(r, 1e-6), ls, color=color, lw=1, label=f"{lab} {v}")
    axes[-1].set_xlabel("step t")
    axes[-1].set_ylabel("average regret R_t / t")
    axes[-1].legend(fontsize=6)
    F.verdict_title(fig, "C5", f"Reddi et al.'s counterexample (b2 = {fmt(n['b2'])} in fig1/stochastic)")
    return F.done(fig, base)


def _size(seeds: list[int], notes_steps: int, steps: int) -> dict[str, Any]:
    return {"seeds": seeds, "C": 3.0, "notes_lr": 0.01, "notes_steps": notes_steps, "b2": 0.99, "alpha": 1.0,
            "steps": steps, "sequence_seed": 0}  # fmt: skip


CLAIM = Claim(
    id="C5",
    title="Reddi et al.'s counterexample",
    source="seed 003 (lecture notes), 'AMSGrad' (the 3-step example) and Reddi, Kale, Kumar (ICLR 2018), Figure 1 "
           "(references.md)",
    statement="On Reddi et al.'s online problems (the notes' 3-step version and the paper's Figure 1 setting, online "
              "and stochastic) Adam drifts to +1 with non-vanishing average regret while AMSGrad goes to -1; and "
              "for which b2 this holds.",
    expected="Adam x_T -> +1, R_T/T stays; AMSGrad x_T -> -1, R_T/T decays",
    rule="For each version, over seeds: reproduced iff Adam's final iterate (mean of the last 10% of steps) has its CI "
         "above 0.5, AMSGrad's below -0.5, Adam's average regret R_T/T its CI above |mean c| (half the regret of "
         "sitting at +1) and AMSGrad's R_T/T over R_{T/2}/(T/2) its CI below 0.8 (still falling); any CI on the wrong "
         "side: not reproduced. The b2 sweep (fig1 and stochastic) reports the same rule at each b2.",
    # the problems are deterministic: seeds only move the start within [0.9, 1], so quick runs one, full three
    sizes={"tiny": _size([0], 300, 1010), "quick": _size([0], 3000, 10100), "full": _size([0, 1, 2], 30000, 101000)},
    experiments=experiments,
    measure=measure,
    verdict=verdict,
    figure=figure,
    open_settings=(
        OpenSetting("b2 of the Figure 1 versions", "b2", 0.99, "the paper's Figure 1 value; the claim asks for which "
                    "b2 the verdict holds (references.md: with b2 = 0.9999 Adam escapes)", (0.9, 0.99, 0.999, 0.9999)),
        OpenSetting("step size alpha of alpha/sqrt(t)", "alpha", 1.0, "the paper's schedule alpha/sqrt(t); alpha is "
                    "not given here: 1 moves across the domain [-1, 1] early and decays", (0.1, 1.0)),
        OpenSetting("the notes' C", "C", 3.0, "the notes: 'a large constant C > 2'; the registry's default", (3.0, 10.0)),
    ),
)
