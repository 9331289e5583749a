"""Measurements the claims share: quantities read off run records, intervals, rank correlations.

Intervals are those of the experiments engine (:mod:`precond.experiments.stats`) over seeds (a
single seed's value is its own interval: one exact measurement): a mean with
the expanded percentile bootstrap (:func:`mean_ci`), a geometric mean with the back-transformed
Student-t interval of the logarithm (:func:`geo_ci`, for positive quantities spread over
orders of magnitude, such as ratios of step counts), and the Clopper-Pearson interval of a
proportion (:func:`proportion_ci`).
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

import numpy as np

from precond.experiments import stats

Interval = tuple[float, float, float]  # (estimate, low, high)


def _single(values: list[float]) -> Interval | None:
    """One value is measured exactly once: its interval is the value itself (no spread to estimate)."""
    if not values:
        return math.nan, math.nan, math.nan
    return (values[0],) * 3 if len(values) == 1 else None


def mean_ci(values: Iterable[float]) -> Interval:
    """Mean and its 95% expanded percentile bootstrap interval."""
    vals = [float(v) for v in values]
    one = _single(vals)
    if one is not None:
        return one
    iv = stats.interval(vals, "bootstrap")
    return iv.estimate, iv.low, iv.high


def geo_ci(values: Iterable[float], floor: float = 1e-300) -> Interval:
    """Geometric mean of positive values and the back-transformed t-interval of their logarithm."""
    vals = [float(v) for v in values]
    one = _single(vals)
    if one is not None:
        return one
    iv = stats.log_t_interval(vals, floor)
    return iv.estimate, iv.low, iv.high


def geo_mean(values: Iterable[float], floor: float = 1e-300) -> float:
    """``exp(mean(log(max(x, floor))))``, the geometric mean (:func:`geo_ci`'s estimate without its
    interval; ``nan`` for no values)."""
    x = np.maximum(np.asarray(list(values), float), floor)
    return float(np.exp(np.mean(np.log(x)))) if x.size else math.nan


def proportion_ci(k: int, n: int, confidence: float = 0.95) -> Interval:
    """``k/n`` and its Clopper-Pearson (exact binomial) interval."""
    from scipy.stats import beta

    if n == 0:
        return math.nan, math.nan, math.nan
    a = (1 - confidence) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return k / n, lo, hi


def spearman(x: Iterable[float], y: Iterable[float]) -> float:
    """Spearman's rank correlation of ``x`` and ``y`` (``nan`` when either is constant)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(list(x), float), np.asarray(list(y), float)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def loglog_slope(x: Iterable[float], y: Iterable[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (positive values only)."""
    x, y = np.asarray(list(x), float), np.asarray(list(y), float)
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def first_at_or_below(values: Iterable[float], tol: float) -> int | None:
    """The first index ``t`` with ``values[t] <= tol`` (None if none)."""
    for t, v in enumerate(values):
        if v <= tol:
            return t
    return None


def trajectory(run: dict[str, Any]) -> np.ndarray:
    """The run's iterates ``(T+1, d)``: the start, then the point after each step."""
    traj = np.asarray(run["history"].get("trajectory", []), float)
    if traj.ndim == 1:
        traj = traj[:, None]
    return traj


def values_along(problem: Any, traj: np.ndarray) -> np.ndarray:
    """``problem.value`` at every iterate of a trajectory (float64)."""
    import torch

    with torch.no_grad():
        return problem.value(torch.as_tensor(traj, dtype=torch.float64)).numpy()


def hp_key(hp: dict[str, Any]) -> str:
    return json.dumps(hp, sort_keys=True)


def by_label(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        out.setdefault(r["label"], []).append(r)
    return out


def tune_on(runs: list[dict[str, Any]], metric: str, values: dict[str, float], grids: dict[str, Any] | None = None,
            *, higher_is_better: bool = False) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The tuning protocol (:func:`precond.experiments.tuning.tune`) on a quantity the claim measured.

    ``values`` maps a run key to the run's value of ``metric`` (a diverged run counts as the worst,
    as in the protocol). Returns, per label: the chosen ``hyperparameters``, the chosen runs by seed
    (``runs``), their values (``values``), and the grid-edge notes (``edge``).
    """
    from precond.experiments.tuning import tune

    recs = [dict(r, final_metrics={**r["final_metrics"], metric: values.get(r["key"], math.nan)}) for r in runs]
    out = {}
    for res in tune(recs, val_metric=metric, test_metric=metric, higher_is_better=higher_is_better, grids=grids):
        chosen = sorted((r for r in runs if r["label"] == res.label and hp_key(r["hyperparameters"]) == hp_key(res.hyperparameters)),
                        key=lambda r: r["seed"])  # fmt: skip
        edge = [] if _interior_tie(recs, res, metric, (grids or {}).get(res.label) or {}, higher_is_better) else list(res.edge)
        out[res.label] = {"hyperparameters": res.hyperparameters, "runs": chosen, "edge": edge,
                          "values": [values.get(r["key"], math.nan) for r in chosen]}  # fmt: skip
    return out


def _interior_tie(recs: list[dict[str, Any]], res: Any, metric: str, grid: dict[str, list[Any]], higher_is_better: bool) -> bool:
    """Whether a setting inside the grid scores as well as the chosen one at its edge: then the
    optimum is not beyond the edge (the protocol chose the edge only by grid order among ties)."""
    worst = -math.inf if higher_is_better else math.inf
    scores: dict[str, list[float]] = {}
    for r in recs:
        if r["label"] == res.label:
            v = float(r["final_metrics"][metric]) if r["status"] == "done" else worst
            scores.setdefault(hp_key(r["hyperparameters"]), []).append(v if math.isfinite(v) else worst)
    best = float(np.mean(scores[hp_key(res.hyperparameters)]))

    def inside(hp: dict[str, Any]) -> bool:
        return all(min(vals) < hp[k] < max(vals) for k, vals in grid.items()
                   if k in hp and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals) and len(set(vals)) > 1)

    return any(float(np.mean(v)) == best and inside(json.loads(h)) for h, v in scores.items())


def trajectory_of(inputs: Any, tag: str, run: dict[str, Any]) -> np.ndarray:
    """The trajectory of a run of experiment ``tag`` recorded without one: the same config run again
    with ``trajectory = true`` (:func:`precond.experiments.runner.run_one`; runs are deterministic)."""
    import dataclasses

    from precond.experiments.runner import run_one

    exp = inputs.experiment(tag)
    cfg = next(c for c in exp.runs() if c.key == run["key"])
    return trajectory(run_one(dataclasses.replace(cfg, trajectory=True), exp.problem))


def tuned_steps(inputs: Any, tag: str) -> dict[str, dict[str, Any]]:
    """Per label of experiment ``tag`` (a spec with ``budget.target``): the lr with the fewest steps to
    the target (``steps_to_target``, mean over seeds, :func:`tune_on`; a diverged run counts as the
    worst), its steps per seed (``values``), ``runs``, ``edge`` notes, and the mean steps at every lr
    of the grid (``by_lr``)."""
    runs = inputs.runs(tag, history=False)
    steps = {r["key"]: float(r["final_metrics"].get("steps_to_target", math.nan)) for r in runs}
    out = tune_on(runs, "steps_to_target", steps, inputs.grids(tag))
    for label, res in out.items():
        by_lr: dict[float, list[float]] = {}
        for r in runs:
            if r["label"] == label:
                by_lr.setdefault(float(r["hyperparameters"].get("lr", math.nan)), []).append(
                    steps[r["key"]] if r["status"] == "done" else r["steps"] + 1)
        res["lr"] = float(res["hyperparameters"].get("lr", math.nan))
        res["values"] = [int(v) if math.isfinite(v) else r["steps"] + 1 for v, r in zip(res["values"], res["runs"])]
        res["by_lr"] = {k: float(np.mean(v)) for k, v in sorted(by_lr.items())}
    return out


def normal_ci(estimate: float, standard_error: float) -> Interval:
    """``estimate +- z_{0.975} standard_error`` (a mean over many independent values)."""
    from scipy.stats import norm

    h = float(norm.ppf(0.975)) * standard_error
    return estimate, estimate - h, estimate + h


def fold(interval: Interval) -> Interval:
    """The interval of ``|x|`` from that of ``x``: ``[0, max]`` when it contains 0 (for claims that
    a quantity is near 0, or far from it, whatever its sign)."""
    est, lo, hi = interval
    inside = lo <= 0 <= hi
    return abs(est), (0.0 if inside else min(abs(lo), abs(hi))), max(abs(lo), abs(hi))
