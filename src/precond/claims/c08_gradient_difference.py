"""C8 AGD's stepwise gradient difference approximates ``H(w_t)(w_t - w_{t-1})`` (Yue et al. 2023,
section 3.1): by Taylor's theorem ``grad f(w_t) - grad f(w_{t-1}) = H(w_t) dw + O(|dw|^2)``,
``dw = w_t - w_{t-1}``, so the difference is exact on a quadratic and its relative error grows
with the step elsewhere (seed 000, mechanism 1 and "next check 1").

Measured along real AGD trajectories (the experiments engine's runs, float64, full batch) by
the diagnostic ``gradient_difference`` (:class:`precond.curvature.diagnostics.GradientDifference`)
at every step: AGD's own ``s_t``, read from the optimizer state before the step
(``s_t = (1-b1)/(1-b1^t) (g_t - m_hat_{t-1})``, which is ``g_t - g_{t-1}`` when ``b1 = 0``),
against the exact Hessian-vector product ``H(w_t) dw`` (autograd), as the relative error
``|s_t - H dw| / |H dw|``; ``|dw|`` from the run's trajectory. Problems: a rotated 2-D
quadratic (condition number 100, ``b1 = 0``: the exact case), Beale and Rosenbrock (the
trajectories' ``b1`` is an open setting), each over a learning-rate grid (so that the steps
span several decades) and seeds (perturbed starts). Steps with ``|dw|`` at or below a floor are
left out: there the difference of two float64 gradients is rounding, not curvature.

Per seed (its lrs pooled) the least-squares slope of ``log(error)`` against ``log|dw|``:
Taylor's remainder predicts slope 1 (the error is ``|T[dw, dw]| / (2 |H dw|)``, ``T`` the third
derivative).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import figures as F
from .base import Check, Claim, OpenSetting, Verdict, combine, flag, fmt
from .measure import geo_ci, geo_mean, loglog_slope, mean_ci, trajectory

PROBLEMS = {"quadratic": {"dim": 2, "condition_number": 100.0, "basis": "random"}, "beale": {}, "rosenbrock": {}}
CURVED = ("beale", "rosenbrock")
DIAG = "diag.gradient_difference/"
QUADRATIC_TOL = 1e-8  # exact up to float64 rounding
SMALL_STEP = 1e-2  # "small" |dw| for the approximation check
SMALL_STEP_ERROR = 0.1  # the approximation is good: relative error below 10% there


def experiments(p: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for prob, args in PROBLEMS.items():
        b1 = 0.0 if prob == "quadratic" else float(p["beta1"])
        out[prob] = {
            "description": f"C8: AGD (b1 = {b1}) on {prob}, AGD's s_t against H(w_t) dw at every step",
            "seeds": list(p["seeds"]), "dtype": "float64", "trajectory": True, "diagnostics": ["gradient_difference"],
            "problem": {"name": prob, "args": dict(args)}, "budget": {"steps": int(p["steps"]), "eval_every": 1},
            "optimizers": [{"name": "AGD", "label": "AGD", "hyperparameters": {"lr": list(p["lrs"]), "betas": [[b1, 0.999]]}}],
        }  # fmt: skip
    return out


def points(run: dict[str, Any], floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(|dw|, relative error of AGD's s_t, relative error of g_t - g_{t-1})`` at every measured
    step of a run with ``|dw| > floor``. The diagnostic's value recorded after step ``t`` compares
    the gradients at ``w_{t-1}`` and ``w_{t-2}`` (the points before steps ``t`` and ``t-1``)."""
    h = run["history"]
    traj = trajectory(run)
    steps = np.asarray(h.get(DIAG + "agd_rel_err.step", []), int)
    agd = np.asarray(h.get(DIAG + "agd_rel_err", []), float)
    gd = np.asarray(h.get(DIAG + "grad_diff_rel_err", []), float)
    if steps.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    dw = np.linalg.norm(traj[steps - 1] - traj[steps - 2], axis=1)
    ok = (dw > floor) & np.isfinite(agd) & np.isfinite(gd)
    return dw[ok], agd[ok], gd[ok]


def measure(inputs: Any, p: Mapping[str, Any]) -> dict[str, Any]:
    floor = float(p["dw_floor"])
    out: dict[str, Any] = {"beta1": float(p["beta1"]), "dw_floor": floor, "_plot": {}}
    for prob in PROBLEMS:
        every = inputs.runs(prob)
        runs = [r for r in every if r["status"] == "done"]
        per_seed: dict[int, list[np.ndarray]] = {}
        plot: list[list[float]] = []
        diverged = len(every) - len(runs)
        for r in runs:
            dw, agd, gd = points(r, floor)
            per_seed.setdefault(r["seed"], []).append(np.stack([dw, agd, gd]))
            plot += [[float(a), float(b), float(r["hyperparameters"]["lr"])] for a, b in zip(dw[::3], agd[::3])]
        slopes, small, n_points, max_err, max_gd_err = [], [], 0, 0.0, 0.0
        for seed in sorted(per_seed):
            dw, agd, gd = np.concatenate(per_seed[seed], axis=1)
            n_points += dw.size
            slopes.append(loglog_slope(dw, agd))
            sel = agd[dw <= SMALL_STEP]
            small.append(geo_mean(sel))
            if agd.size:
                max_err, max_gd_err = max(max_err, float(agd.max())), max(max_gd_err, float(gd.max()))
        out[prob] = {"slope": slopes, "small_step_error": small, "points": n_points, "max_rel_err": max_err,
                     "max_grad_diff_rel_err": max_gd_err, "diverged": diverged, "runs": len(runs) + diverged}  # fmt: skip
        out["_plot"][prob] = plot
    return out


def verdict(n: Mapping[str, Any]) -> Verdict:
    q = n["quadratic"]
    checks = [Check("quadratic (b1 = 0): max relative error of s_t against H dw", q["max_rel_err"] if q["points"] else float("nan"),
                    "<=", QUADRATIC_TOL)]  # fmt: skip
    for prob in CURVED:
        c = n[prob]
        checks.append(Check.ci(f"{prob}: log-log slope of the relative error against |dw| (mean over seeds)",
                               mean_ci(c["slope"]), ">", 0.0))  # fmt: skip
        checks.append(Check.ci(f"{prob}: relative error at steps |dw| <= {SMALL_STEP:g} (geometric mean over seeds)",
                               geo_ci(c["small_step_error"]), "<", SMALL_STEP_ERROR))  # fmt: skip
        if c["diverged"] == c["runs"]:
            checks.append(flag(f"{prob}: runs", "every run diverged"))
    measured = (f"quadratic: max error {fmt(q['max_rel_err'])}; slopes "
                + ", ".join(f"{prob} {fmt(mean_ci(n[prob]['slope'])[0])}" for prob in CURVED)
                + " (Taylor: 1); error at |dw| <= 0.01: "
                + ", ".join(f"{prob} {fmt(geo_ci(n[prob]['small_step_error'])[0])}" for prob in CURVED)
                + f" (b1 = {fmt(n['beta1'])})")  # fmt: skip
    notes = [f"Steps with |dw| <= {n['dw_floor']:g} are left out (float64 rounding of the gradient difference)."]
    if n["beta1"] != 0.0:
        notes.append("With b1 > 0, s_t is the difference of bias-corrected momenta, not of gradients: the Taylor "
                     "argument applies to it only through the momentum's lag.")  # fmt: skip
    return combine(checks, measured, notes)


def figure(n: Mapping[str, Any], base: Path) -> Path:
    fig, axes = F.figure(3, width=4.6)
    for ax, prob in zip(axes, PROBLEMS):
        pts = np.asarray(n["_plot"][prob], float).reshape(-1, 3)
        if len(pts):
            err = np.maximum(pts[:, 1], 1e-17)
            sc = ax.scatter(pts[:, 0], err, c=np.log10(pts[:, 2]), s=4, cmap="viridis", alpha=0.6)
            slope = mean_ci(n[prob]["slope"])[0] if prob in CURVED else float("nan")
            if np.isfinite(slope):
                xs = np.geomspace(pts[:, 0].min(), pts[:, 0].max(), 20)
                c = np.exp(np.mean(np.log(err)) - slope * np.mean(np.log(pts[:, 0])))
                ax.plot(xs, c * xs**slope, "r-", lw=1.2, label=f"fitted slope {slope:.2f}")
                ax.legend(fontsize=7)
            fig.colorbar(sc, ax=ax, label="log10 lr")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("|w_t - w_{t-1}|")
        ax.set_ylabel("|s_t - H(w_t) dw| / |H(w_t) dw| (floored at 1e-17)")
        ax.set_title(f"{prob}" + (" (b1 = 0)" if prob == "quadratic" else f" (b1 = {n['beta1']:g})"), fontsize=9)
    F.verdict_title(fig, "C8", "AGD's s_t against the exact Hessian-vector product, along AGD's trajectories")
    return F.done(fig, base)


def _size(seeds: list[int], lrs: list[float], steps: int) -> dict[str, Any]:
    return {"seeds": seeds, "lrs": lrs, "steps": steps, "beta1": 0.0, "dw_floor": 1e-6}


CLAIM = Claim(
    id="C8",
    title="Gradient difference ~ H dw",
    source="seed 000 (AGD, arXiv 2312.01658), section 3.1 (Taylor argument) and 'next check 1'",
    statement="AGD's stepwise gradient difference approximates H(w_t)(w_t - w_{t-1}): exactly on a quadratic with "
              "b1 = 0; on Beale and Rosenbrock its relative error grows with the step size.",
    expected="quadratic: error at rounding level; Beale, Rosenbrock: error grows with |dw| (Taylor: slope 1)",
    rule=f"Along AGD's trajectories (lr grid x seeds, every step, |dw| > dw_floor): reproduced iff on the rotated "
         f"quadratic with b1 = 0 the largest relative error |s_t - H dw| / |H dw| is <= {QUADRATIC_TOL:g}, and on Beale "
         f"and Rosenbrock the log-log slope of the error against |dw| (per seed, lrs pooled; mean over seeds) has its "
         f"95% CI above 0 and the geometric-mean error at |dw| <= {SMALL_STEP:g} has its CI below {SMALL_STEP_ERROR:g}; "
         f"a CI on the other side: not reproduced; straddling: inconclusive.",
    sizes={"tiny": _size([0], [0.01, 0.1], 40), "quick": _size([0, 1, 2], [0.001, 0.01, 0.1], 200),
           "full": _size(list(range(5)), [0.001, 0.003, 0.01, 0.03, 0.1, 0.3], 1000)},
    experiments=experiments,
    measure=measure,
    verdict=verdict,
    figure=figure,
    open_settings=(
        OpenSetting("b1 of the Beale and Rosenbrock runs", "beta1", 0.0, "the claim's s_t is the gradient difference "
                    "only at b1 = 0; AGD's default 0.9 makes it a difference of momenta", (0.0, 0.9)),
        OpenSetting("step floor |dw|", "dw_floor", 1e-6, "below it the float64 difference of two gradients is mostly "
                    "rounding; the paper names none", (1e-8, 1e-6, 1e-4)),
    ),
)
