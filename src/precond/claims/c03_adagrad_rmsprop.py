"""C3 AdaGrad against RMSProp: AdaGrad's effective learning rate lr / (sqrt(s_t) + eps) decays
monotonically and stalls (its accumulator s_t = s_{t-1} + g_t^2 only grows), RMSProp's
(s_t = a s_{t-1} + (1 - a) g_t^2) does not.

Measured per coordinate on a problem whose gradient persists: seed 002's stochastic linear
regression (``linear_regression``, batch size 1, noise std 1), in 2 dimensions with feature
variances 1 and 0.01 (coordinates with different gradient scales). At the optimum the
gradient is the noise's, so it never vanishes. The effective learning rate is measured from
the runs themselves: ``eff_{t,i} = -(theta_{t,i} - theta_{t-1,i}) / g_{t,i}`` from the
recorded iterates and the gradient of the step's batch, replayed from the problem's seeded
batch stream (``problem.batches(seed)``, the t-th batch at step t; steps with
``|g_{t,i}| < 1e-12`` are skipped). Both optimizers run without momentum or weight decay, so
the step is exactly ``eff * g``.

Per coordinate and seed: the share of steps at which ``eff`` increases (by more than the
measurement's rounding error: see :func:`effective_lr`), and the log-log slope of ``eff`` against t over the last three quarters of the
run (-1/2 when s_t grows linearly, as AdaGrad's does under persistent noise; 0 for a
stationary EMA).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import figures as F
from .base import Check, Claim, OpenSetting, Verdict, combine, fmt
from .measure import loglog_slope, mean_ci, trajectory

PROBLEM_ARGS = {"dim": 2, "spectrum": [1.0, 0.01], "noise_std": 1.0, "batch_size": 1}
OPTIMIZERS = ("AdaGrad", "RMSProp")


def experiments(p: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    hps = {"AdaGrad": {"lr": p["lr"]}, "RMSProp": {"lr": p["lr"], "alpha": p["alpha"]}}
    return {lab: {  # one experiment each: a sweep of alpha leaves AdaGrad's runs as they are
        "description": f"C3: {lab} on a stochastic 2-D linear regression", "seeds": list(p["seeds"]), "dtype": "float64",
        "trajectory": True, "problem": {"name": "linear_regression", "args": PROBLEM_ARGS},
        "budget": {"steps": p["steps"], "eval_every": max(1, p["steps"] // 20)},
        "optimizers": [{"name": lab, "hyperparameters": hp}]} for lab, hp in hps.items()}  # fmt: skip


def replay_gradients(problem: Any, seed: int, traj: np.ndarray) -> np.ndarray:
    """``g_t`` (T, d): the gradient of step t's batch (``problem.batches(seed)``) at ``theta_{t-1}``."""
    import torch

    model = problem.model(seed).double()
    (x,) = [q for q in model.parameters() if q.requires_grad]
    out = np.empty((len(traj) - 1, traj.shape[1]))
    batches = problem.batches(seed)
    for t in range(1, len(traj)):
        batch = next(batches)
        with torch.no_grad():
            x.copy_(torch.as_tensor(traj[t - 1]))
        (g,) = torch.autograd.grad(problem.loss(model, batch), [x])
        out[t - 1] = g.numpy()
    return out


def effective_lr(traj: np.ndarray, grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``eff = -(theta_t - theta_{t-1}) / g_t`` (T, d), ``nan`` where ``|g_t| < 1e-12``, and its relative
    rounding error: the difference of two float64 iterates is known to ``eps (|theta_t| + |theta_{t-1}|)``
    and the replayed gradient to a few ``eps`` relative."""
    eps = np.finfo(np.float64).eps
    g = np.where(np.abs(grads) < 1e-12, np.nan, grads)
    step = traj[1:] - traj[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = eps * (np.abs(traj[1:]) + np.abs(traj[:-1])) / np.abs(step) + 4 * eps
    return -step / g, rel


def _summaries(eff: np.ndarray, rel: np.ndarray) -> dict[str, list[float]]:
    T = len(eff)
    t = np.arange(1, T + 1)
    late = t >= T // 4
    out: dict[str, list[float]] = {"increase_share": [], "slope": [], "late_over_early": []}
    for i in range(eff.shape[1]):
        e, r = eff[:, i], rel[:, i]
        ok = np.isfinite(e[1:]) & np.isfinite(e[:-1])
        up = e[1:] > e[:-1] * (1 + r[1:] + r[:-1])  # beyond the measurement's rounding error
        out["increase_share"].append(float(np.mean(up[ok])))
        out["slope"].append(loglog_slope(t[late], e[late]))
        out["late_over_early"].append(float(np.nanmean(e[-max(1, T // 20):]) / np.nanmean(e[T // 10: T // 10 + max(1, T // 20)])))
    return out


def measure(inputs: Any, p: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"lr": p["lr"], "alpha": p["alpha"], "steps": p["steps"], "_plot": {}}
    for lab in OPTIMIZERS:
        problem = inputs.problem(lab)
        per_seed = []
        for r in sorted(inputs.runs(lab), key=lambda r: r["seed"]):
            traj = trajectory(r)
            if "_claims_grads" not in r:  # the run records are shared by the claim's variants: replay once
                r["_claims_grads"] = replay_gradients(problem, r["seed"], traj)
            eff, rel = effective_lr(traj, r["_claims_grads"])
            per_seed.append(_summaries(eff, rel))
            if not out["_plot"].get(lab):
                keep = np.unique(np.geomspace(1, len(eff), 300).astype(int)) - 1
                out["_plot"][lab] = {"t": (keep + 1).tolist(), "eff": eff[keep].tolist(),
                                     "dist": r["history"].get("dist_to_opt", []), "step": r["history"]["step"]}  # fmt: skip
        out[lab] = {k: [s[k] for s in per_seed] for k in per_seed[0]}  # metric -> [seed][coordinate]
    return out


def verdict(n: Mapping[str, Any]) -> Verdict:
    ada, rms = n["AdaGrad"], n["RMSProp"]
    d = len(ada["slope"][0])
    checks = [Check("AdaGrad: largest share of steps whose effective lr increases (any seed, coordinate)",
                    float(np.max(ada["increase_share"])), "<=", 0.0)]
    for i in range(d):
        col = lambda m, o=ada: [s[i] for s in o[m]]  # noqa: E731
        checks.append(Check.ci(f"AdaGrad coordinate {i + 1}: log-log slope of the effective lr", mean_ci(col("slope")), "<", -0.25))
        checks.append(Check.ci(f"RMSProp coordinate {i + 1}: share of steps whose effective lr increases",
                               mean_ci(col("increase_share", rms)), ">", 0.1))
        checks.append(Check.ci(f"RMSProp coordinate {i + 1}: log-log slope of the effective lr", mean_ci(col("slope", rms)), ">", -0.1))
    slopes = {lab: [mean_ci([s[i] for s in n[lab]["slope"]])[0] for i in range(d)] for lab in OPTIMIZERS}
    ratio = {lab: [mean_ci([s[i] for s in n[lab]["late_over_early"]])[0] for i in range(d)] for lab in OPTIMIZERS}
    measured = "; ".join(f"{lab}: slope {', '.join(fmt(v) for v in slopes[lab])}, last/early eff lr "
                         f"{', '.join(fmt(v) for v in ratio[lab])}" for lab in OPTIMIZERS)  # fmt: skip
    measured += f"; AdaGrad increases on {fmt(100 * float(np.max(ada['increase_share'])))}% of steps, RMSProp on " + \
        f"{fmt(100 * float(np.mean(rms['increase_share'])))}%"
    return combine(checks, measured, ["slope: of log(effective lr) against log(t) over the last 3/4 of the run "
                                      "(per coordinate, mean over seeds with the bootstrap 95% CI)"])


def figure(n: Mapping[str, Any], base: Path) -> Path:
    pl = n["_plot"]
    fig, (a, b) = F.figure(2, width=5.6)
    for lab, ls in zip(OPTIMIZERS, ("-", "--")):
        eff = np.array(pl[lab]["eff"])
        for i in range(eff.shape[1]):
            a.loglog(pl[lab]["t"], eff[:, i], ls, lw=1, label=f"{lab}, coordinate {i + 1}")
        b.semilogy(pl[lab]["step"], pl[lab]["dist"], ls, label=lab)
    t = np.array(pl["AdaGrad"]["t"], float)
    e0 = np.array(pl["AdaGrad"]["eff"])[-1, 0]
    a.loglog(t, e0 * (t / t[-1]) ** -0.5, "k:", lw=0.8, label="t^-1/2")
    a.set_xlabel("step t")
    a.set_ylabel("effective lr  -dtheta_i / g_i  (seed 0)")
    a.legend(fontsize=7)
    b.set_xlabel("step")
    b.set_ylabel("distance to w* (seed 0)")
    b.legend(fontsize=7)
    F.verdict_title(fig, "C3", f"effective learning rates at lr {fmt(n['lr'])} (RMSProp alpha {fmt(n['alpha'])})")
    return F.done(fig, base)


CLAIM = Claim(
    id="C3",
    title="AdaGrad vs RMSProp effective lr",
    source="seed 003 (lecture notes), 'AdaGrad' (limitation) and 'RMSProp'",
    statement="AdaGrad's effective learning rate decays monotonically and stalls; RMSProp's does not (per coordinate, "
              "on a problem with a persistent gradient).",
    expected="AdaGrad: never increases, slope ~ -1/2; RMSProp: increases often, slope ~ 0",
    rule="Per coordinate, measured from the runs (see the module): reproduced iff AdaGrad's effective lr never increases "
         "(share of increasing steps = 0 on every seed and coordinate) and its log-log slope has its 95% CI below -0.25 "
         "(decaying to 0, like t^-1/2), while RMSProp's increases on more than 10% of steps (CI above 0.1) and its slope "
         "has its CI above -0.1 (no decay); a CI on the wrong side of any threshold: not reproduced.",
    sizes={"tiny": {"seeds": [0, 1], "steps": 300, "lr": 0.05, "alpha": 0.99},
           "quick": {"seeds": [0, 1, 2, 3, 4], "steps": 2000, "lr": 0.05, "alpha": 0.99},
           "full": {"seeds": list(range(10)), "steps": 10000, "lr": 0.05, "alpha": 0.99}},
    experiments=experiments,
    measure=measure,
    verdict=verdict,
    figure=figure,
    open_settings=(
        OpenSetting("learning rate (both)", "lr", 0.05, "the notes give none; the same lr for both, so only the "
                    "accumulator differs", (0.01, 0.05, 0.2)),
        OpenSetting("RMSProp decay rate alpha (the notes' rho)", "alpha", 0.99, "the notes: 'typically 0.9 or 0.99'; "
                    "torch's default", (0.9, 0.99)),
    ),
)
