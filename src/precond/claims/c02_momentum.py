"""C2 Momentum: in the ravine f = x^2 + 5y^2 momentum (heavy ball and the notes' EMA form) needs fewer
steps to a tolerance than gradient descent, each at its best learning rate; on a plateau and
at a saddle momentum carries the iterate through where gradient descent stalls.

Measured on the registry's ``ravine`` (start (4, 3)), ``plateau`` (f = 1 - exp(-r^2/2) from
(2.5, 2.5), gradient about 5e-3) and ``saddle`` (f = x^2 + y^4/4 - y^2/2 from (1, 1e-3), almost
on the saddle's stable manifold). Optimizers: ``SGD`` without momentum (GD), with heavy-ball
momentum ``v = b v + g`` (torch's form) and with the notes' EMA ``v = b v + (1 - b) g``
(``momentum_style="ema"``). Each is tuned over its learning-rate grid on its steps to the
target (the protocol: mean over seeds, a run that never reaches it counts ``steps + 1``);
the comparison is per seed (the same start): the ratio of GD's steps to momentum's, its
geometric mean over seeds with the log-t interval. The EMA form at lr equals heavy ball at
lr (1 - b), so its grid is heavy ball's divided by (1 - b).

On the plateau and the saddle the rule compares heavy ball with GD (the notes' "velocity"
mechanism); the EMA form's steps are reported beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import figures as F
from .base import Check, Claim, OpenSetting, Verdict, combine, flag, fmt
from .measure import geo_ci, trajectory_of, tuned_steps, values_along

#: problem, target level of f (the run "arrives" when f <= level), and the level's meaning
TARGETS = {"plateau": (0.5, "f <= 0.5 (off the plateau, into the bowl)"),
           "saddle": (-0.2, "f <= -0.2 (past the saddle, in a minimum's basin; f* = -0.25)")}  # fmt: skip
LABELS = ("GD", "heavy ball", "EMA")
STYLES = {"GD": "-", "heavy ball": "-", "EMA": "--"}  # EMA's runs are heavy ball's: dashed, so both show


def _optimizers(beta: float, gd: Any, hb: Any) -> dict[str, list[dict[str, Any]]]:
    """GD, heavy ball and EMA; ``gd``/``hb`` are ``[lo, hi, n]`` log grids, or one lr for all three."""
    if isinstance(gd, float):
        lrs = {"GD": gd, "heavy ball": gd, "EMA": gd}
    else:
        ema = [hb[0] / (1 - beta), hb[1] / (1 - beta), hb[2]]
        lrs = {"GD": {"logspace": list(gd)}, "heavy ball": {"logspace": list(hb)}, "EMA": {"logspace": ema}}
    return {
        "gd": [{"name": "SGD", "label": "GD", "hyperparameters": {"lr": lrs["GD"]}}],
        "momentum": [
            {"name": "SGD", "label": "heavy ball", "hyperparameters": {"lr": lrs["heavy ball"], "momentum": beta}},
            {"name": "SGD", "label": "EMA", "hyperparameters": {"lr": lrs["EMA"], "momentum": beta, "momentum_style": "ema"}},
        ],
    }


def experiments(p: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for prob, steps in (("ravine", p["steps"]), ("plateau", p["escape_steps"]), ("saddle", p["escape_steps"])):
        common = p["escape_lr"] if prob != "ravine" else None
        grids = (float(common), float(common)) if common is not None else (p[f"{prob}_gd_lr"], p[f"{prob}_hb_lr"])
        target = float(p["tol"]) if prob == "ravine" else TARGETS[prob][0]
        for part, o in _optimizers(p["beta"], *grids).items():
            out[f"{prob}-{part}"] = {
                "description": f"C2: {part} on {prob}", "seeds": list(p["seeds"]), "dtype": "float64", "trajectory": False,
                "problem": {"name": prob}, "budget": {"steps": steps, "eval_every": steps, "target": target},
                "tuning": {"metric": "steps_to_target"},
                "optimizers": o}  # fmt: skip
    return out


def _part(inputs: Any, prob: str) -> dict[str, dict[str, Any]]:
    out = {}
    for part in ("gd", "momentum"):
        for lab, r in tuned_steps(inputs, f"{prob}-{part}").items():
            out[lab] = {"lr": r["lr"], "steps": r["values"], "edge": r["edge"], "by_lr": r["by_lr"],
                        "traj": trajectory_of(inputs, f"{prob}-{part}", r["runs"][0]).tolist()}  # fmt: skip
    return out


def measure(inputs: Any, p: Mapping[str, Any]) -> dict[str, Any]:
    parts = {prob: _part(inputs, prob) for prob in ("ravine", *TARGETS)}
    out: dict[str, Any] = {"beta": p["beta"], "tol": p["tol"], "escape_lr": p["escape_lr"],
                           "budget": {"ravine": p["steps"], "escape": p["escape_steps"]}}
    for prob, res in parts.items():
        out[prob] = {lab: {k: v for k, v in r.items() if k not in ("traj", "by_lr")} for lab, r in res.items()}
    out["_plot"] = {prob: {lab: {"traj": r["traj"], "by_lr": r["by_lr"]} for lab, r in res.items()} for prob, res in parts.items()}
    return out


def _ratio(part: Mapping[str, Any], other: str) -> tuple[float, float, float]:
    """GD's steps over ``other``'s, per seed (the same start), geometric mean and log-t interval."""
    return geo_ci([g / m for g, m in zip(part["GD"]["steps"], part[other]["steps"])])


def verdict(n: Mapping[str, Any]) -> Verdict:
    checks = []
    for other in ("heavy ball", "EMA"):
        checks.append(Check.ci(f"ravine: GD steps / {other} steps to f <= {fmt(n['tol'])}", _ratio(n["ravine"], other), ">", 1))
    for prob, (_, what) in TARGETS.items():
        checks.append(Check.ci(f"{prob}: GD steps / heavy-ball steps to {what}", _ratio(n[prob], "heavy ball"), ">", 2))
    for prob in ("ravine", *TARGETS):
        for lab in LABELS:
            checks += [flag(f"{prob} {lab} lr grid", e) for e in n[prob][lab]["edge"]]
    rv = n["ravine"]
    ema = {prob: geo_ci(n[prob]["EMA"]["steps"])[0] for prob in TARGETS}
    measured = (f"beta {fmt(n['beta'])}; ravine steps GD {fmt(geo_ci(rv['GD']['steps'])[0])}, heavy ball "
                f"{fmt(geo_ci(rv['heavy ball']['steps'])[0])}, EMA {fmt(geo_ci(rv['EMA']['steps'])[0])}; GD/heavy-ball "
                + "; ".join(f"{prob} {fmt(_ratio(n[prob], 'heavy ball')[0])} [{fmt(_ratio(n[prob], 'heavy ball')[1])}, "
                            f"{fmt(_ratio(n[prob], 'heavy ball')[2])}]" for prob in ("ravine", *TARGETS))
                + f" (EMA steps: plateau {fmt(ema['plateau'])}, saddle {fmt(ema['saddle'])})")  # fmt: skip
    lr = "each at its best lr" if n["escape_lr"] is None else f"all at lr {fmt(n['escape_lr'])}"
    return combine(checks, measured, [
        "Ratios are per seed (same start), geometric mean over seeds with the log-t 95% interval; a run that "
        "never reaches the target counts budget + 1 steps (GD's ratio is then a lower bound).",
        f"Plateau and saddle: {lr}."])


def figure(n: Mapping[str, Any], base: Path) -> Path:
    from precond.problems import get

    pl = n["_plot"]
    fig, axes = F.figure(4, width=4.3)
    for ax, prob, bounds in ((axes[0], "ravine", ((-5, 5), (-4, 4))), (axes[2], "plateau", ((-3, 3), (-3, 3)))):
        F.contours(ax, get(prob, dtype="float64"), bounds)
        for lab in LABELS:
            t = np.array(pl[prob][lab]["traj"])
            ax.plot(t[:, 0], t[:, 1], STYLES[lab], marker=".", ms=1.5, lw=0.8, label=f"{lab} lr {fmt(n[prob][lab]['lr'])}")
        ax.set_title(f"{prob}: tuned runs, seed 0", fontsize=9)
        ax.legend(fontsize=7)
    for lab in LABELS:
        by = pl["ravine"][lab]["by_lr"]
        axes[1].loglog([float(k) for k in by], list(by.values()), STYLES[lab], marker="o", ms=2.5, label=lab)
    axes[1].set_xlabel("learning rate")
    axes[1].set_ylabel(f"ravine: mean steps to f <= {fmt(n['tol'])}")
    axes[1].legend(fontsize=7)
    saddle = get("saddle", dtype="float64")
    for lab in LABELS:
        t = np.array(pl["saddle"][lab]["traj"])
        axes[3].semilogx(np.arange(1, len(t) + 1), values_along(saddle, t), STYLES[lab], lw=1,
                         label=f"{lab} lr {fmt(n['saddle'][lab]['lr'])}")
    axes[3].axhline(TARGETS["saddle"][0], color="k", ls=":", lw=0.8)
    axes[3].set_xlabel("step + 1")
    axes[3].set_ylabel("saddle: f (seed 0)")
    axes[3].legend(fontsize=7)
    F.verdict_title(fig, "C2", f"momentum (beta = {fmt(n['beta'])}) against GD, each at its best lr")
    return F.done(fig, base)


_GRIDS = {"ravine_gd_lr": [1e-3, 0.25], "ravine_hb_lr": [1e-3, 0.5], "plateau_gd_lr": [1e-2, 30.0],
          "plateau_hb_lr": [1e-3, 30.0], "saddle_gd_lr": [1e-2, 3.0], "saddle_hb_lr": [1e-3, 3.0]}  # fmt: skip


def _size(seeds: list[int], steps: int, escape_steps: int, points: int) -> dict[str, Any]:
    return {"seeds": seeds, "steps": steps, "escape_steps": escape_steps, "beta": 0.9, "tol": 1e-8, "escape_lr": None,
            **{k: [lo, hi, points] for k, (lo, hi) in _GRIDS.items()}}  # fmt: skip


CLAIM = Claim(
    id="C2",
    title="Momentum",
    source="seed 003 (lecture notes), 'Challenge I: differential curvature', 'Challenge II: plateaus & saddle "
           "points', 'Gradient descent with momentum'",
    statement="Momentum (heavy ball and EMA forms) needs fewer steps than GD to a tolerance in the ravine x^2 + 5y^2, "
              "each at its best learning rate, and carries the iterate through the plateau and past the saddle where "
              "GD stalls.",
    expected="ravine: GD/momentum steps > 1 (both forms); plateau, saddle: GD/heavy-ball steps > 2",
    rule="Each optimizer tuned on its lr grid (steps to the target, mean over seeds). Reproduced iff, per seed, GD's "
         "steps / momentum's steps has its 95% CI (geometric mean, log-t) above 1 in the ravine for heavy ball and for "
         "EMA (target f <= tol), and above 2 (GD at least twice as slow: 'stalls') for heavy ball on the plateau "
         "(target f <= 0.5) and the saddle (target f <= -0.2); any CI below its threshold: not reproduced; a chosen lr "
         "at the edge of its grid: at most inconclusive. beta = 0.9 throughout.",
    sizes={"tiny": _size([0, 1], 200, 200, 7), "quick": _size([0, 1, 2, 3, 4], 500, 500, 17),
           "full": _size(list(range(10)), 2000, 5000, 61)},
    experiments=experiments,
    measure=measure,
    verdict=verdict,
    figure=figure,
    open_settings=(
        OpenSetting("momentum coefficient beta", "beta", 0.9, "the notes' example value ('e.g., 0.9'), the common "
                    "default; the claim tunes only the learning rate", (0.3, 0.5, 0.7, 0.9, 0.95)),
        OpenSetting("ravine tolerance on f", "tol", 1e-8, "the notes name none; 1e-8 is far below f(4, 3) = 61", (1e-4, 1e-8)),
        OpenSetting("plateau/saddle learning rate", "escape_lr", None, "None: each optimizer at its best lr, as in the ravine "
                    "(the claim's protocol, chosen before the runs); a number: GD, heavy ball and EMA at that common lr "
                    "(the notes' picture of a velocity that outlasts a vanishing gradient at equal step size)", (None, 0.03, 0.1)),
    ),
)
