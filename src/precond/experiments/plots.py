"""Figures of a results store (matplotlib, Agg backend; every figure as PNG and SVG).

* :func:`metric_curves` - a metric over steps for each optimizer's tuned setting: the
  estimate over seeds with a 95% band, by the tables' method (:mod:`precond.experiments.stats`:
  geometric mean and log-t band for losses, mean and bootstrap band otherwise);
* :func:`trajectories` - iterates of 2-D problems over the objective's contour plot;
* :func:`adaptive_fraction` - AGD's fraction of coordinates on the adaptive branch over time
  (the paper's section 4.5);
* :func:`diagnostic_histograms` - histograms of per-coordinate diagnostics (e.g. the
  noise-to-signal ratio) at the end of the tuned runs;
* :func:`lr_sensitivity` - the validation metric against the learning rate, the other
  hyperparameters at their tuned values;
* :func:`performance_profile` - Dolan & More (2002) performance profiles across problems:
  ``rho_s(tau) = |{p : r_{p,s} <= tau}| / |P|`` with ``r_{p,s} = c_{p,s} / min_s c_{p,s}``
  (a solver that failed or did not run on ``p`` has ``r_{p,s} = inf``); drawn for at least 2
  problems and 2 solvers, the legend naming the problems a solver did not run on;
  :func:`profile_table` gives every ``r_{p,s}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import stats  # noqa: E402
from .tuning import TunedResult  # noqa: E402


def save(fig: Any, base: Path) -> Path:
    """Write ``base.png`` and ``base.svg``; returns the PNG path."""
    base.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(base.with_suffix(".png"), dpi=110, bbox_inches="tight")
    fig.savefig(base.with_suffix(".svg"), bbox_inches="tight")
    plt.close(fig)
    return base.with_suffix(".png")


def _chosen(runs: list[dict[str, Any]], res: TunedResult) -> list[dict[str, Any]]:
    hid = json.dumps(res.hyperparameters, sort_keys=True)
    return [r for r in runs if r["label"] == res.label and json.dumps(r["hyperparameters"], sort_keys=True) == hid]


def _estimates(groups: list[list[float]], method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimate, low and high of each group of values by ``method`` (a missing bound: the estimate)."""
    ivs = [stats.interval(g, method) for g in groups]
    est = np.array([iv.estimate for iv in ivs])
    lo = np.array([iv.estimate if math.isnan(iv.low) else iv.low for iv in ivs])
    hi = np.array([iv.estimate if math.isnan(iv.high) else iv.high for iv in ivs])
    return est, lo, hi


def _band(series: list[list[float]], method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = min(len(s) for s in series)
    a = np.array([s[:n] for s in series], dtype=float)
    return _estimates([list(a[:, j]) for j in range(n)], method)


def _method(groups: list[list[float]], higher_is_better: bool) -> str:
    return stats.choose_method([v for g in groups for v in g], higher_is_better=higher_is_better)


def metric_curves(runs: list[dict[str, Any]], tuned: list[TunedResult], metric: str, base: Path, *, title: str = "",
                  higher_is_better: bool = False) -> Path | None:  # fmt: skip
    curves = []
    for res in tuned:
        rs = [r for r in _chosen(runs, res) if r["status"] == "done" and metric in r["history"]]
        if rs:
            steps = rs[0]["history"]["step"][: min(len(r["history"][metric]) for r in rs)]
            curves.append((res.label, steps, [[float(v) for v in r["history"][metric]] for r in rs]))
    if not curves:
        return None
    method = _method([s for _, _, series in curves for s in series], higher_is_better)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, steps, series in curves:
        mean, lo, hi = _band(series, method)
        n = min(len(steps), len(mean))
        line = ax.plot(steps[:n], mean[:n], label=f"{label} (n={len(series)})")[0]
        ax.fill_between(steps[:n], lo[:n], hi[:n], color=line.get_color(), alpha=0.2, linewidth=0)
    if method == "log-t":  # geometric means and their bounds are > 0
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric}: tuned setting, {stats.ESTIMATE_NAME[method]} and 95% CI over seeds ({method})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, base)


def trajectories(problem: Any, runs: list[dict[str, Any]], tuned: list[TunedResult], base: Path, *, seed: int | None = None) -> Path | None:
    paths = {}
    for res in tuned:
        rs = [r for r in _chosen(runs, res) if "trajectory" in r["history"]]
        if seed is not None:
            rs = [r for r in rs if r["seed"] == seed] or rs
        if rs:
            paths[res.label] = np.array(rs[0]["history"]["trajectory"], dtype=float)
    if not paths or problem is None or not hasattr(problem, "value"):
        return None
    if any(p.ndim != 2 or p.shape[1] != 2 for p in paths.values()):  # 1-D problems: the iterate against the step
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for label, p in paths.items():
            ax.plot(np.arange(len(p)), p.reshape(len(p), -1)[:, 0], lw=1.0, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel("x")
        ax.set_title("iterates of the tuned settings")
        ax.legend(fontsize=8)
        return save(fig, base)
    import torch

    allpts = np.concatenate([p[np.all(np.isfinite(p), axis=1)] for p in paths.values()])
    bounds = getattr(problem, "bounds", None)
    if bounds:
        (x0, x1), (y0, y1) = bounds
        x0, x1 = min(x0, allpts[:, 0].min()), max(x1, allpts[:, 0].max())
        y0, y1 = min(y0, allpts[:, 1].min()), max(y1, allpts[:, 1].max())
    else:
        x0, x1 = allpts[:, 0].min(), allpts[:, 0].max()
        y0, y1 = allpts[:, 1].min(), allpts[:, 1].max()
        pad = 0.15 * max(x1 - x0, y1 - y0, 1e-3)
        x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
    xs, ys = np.linspace(x0, x1, 200), np.linspace(y0, y1, 200)
    X, Y = np.meshgrid(xs, ys)
    with torch.no_grad():
        Z = problem.value(torch.tensor(np.stack([X, Y], -1), dtype=torch.float64)).numpy()
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    Zs = Z - np.nanmin(Z) + 1e-12
    ax.contour(X, Y, np.log10(Zs), levels=30, cmap="viridis", linewidths=0.6)
    for label, p in paths.items():
        ax.plot(p[:, 0], p[:, 1], ".-", ms=1.5, lw=1.0, label=label)
        ax.plot(p[0, 0], p[0, 1], "ko", ms=4)
    xstar = getattr(problem, "minimizer", None)
    if xstar is not None:
        xs_ = np.asarray(xstar, dtype=float).reshape(-1)
        if xs_.size == 2:
            ax.plot(xs_[0], xs_[1], "r*", ms=12, label="minimum")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title("trajectories of the tuned settings (contours: log10 f)")
    ax.legend(fontsize=8)
    return save(fig, base)


def adaptive_fraction(runs: list[dict[str, Any]], tuned: list[TunedResult], base: Path) -> Path | None:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    drawn = False
    for res in tuned:
        rs = [r for r in _chosen(runs, res) if r["history"].get("adaptive_fraction")]
        if not rs:
            continue
        steps = [s for s in rs[0]["history"]["step"] if s > 0]
        mean, lo, hi = _band([[float(v) for v in r["history"]["adaptive_fraction"]] for r in rs], "bootstrap")
        n = min(len(steps), len(mean))
        line = ax.plot(steps[:n], mean[:n], label=res.label)[0]
        ax.fill_between(steps[:n], lo[:n], hi[:n], color=line.get_color(), alpha=0.2, linewidth=0)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("step")
    ax.set_ylabel("fraction of coordinates adaptive")
    ax.set_title("AGD: coordinates with sqrt(b_hat) > delta (adaptive branch; mean, 95% bootstrap CI)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, base)


def diagnostic_histograms(runs: list[dict[str, Any]], tuned: list[TunedResult], base: Path) -> list[Path]:
    """One histogram per list-valued diagnostic (last recorded value, all seeds of the tuned setting)."""
    keys: set[str] = set()
    for r in runs:
        for k, v in r["history"].items():
            if k.startswith("diag.") and not k.endswith(".step") and v and isinstance(v[-1], list):
                keys.add(k)
    out = []
    for k in sorted(keys):
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        for res in tuned:
            vals = [x for r in _chosen(runs, res) for x in (r["history"].get(k) or [[]])[-1] if math.isfinite(x)]
            if vals:
                pos = [v for v in vals if v > 0]
                bins = np.logspace(np.log10(min(pos)), np.log10(max(pos)), 40) if len(pos) == len(vals) and pos else 40
                ax.hist(vals, bins=bins, alpha=0.5, label=res.label)
                if not isinstance(bins, int):
                    ax.set_xscale("log")
        name = k.removeprefix("diag.")
        ax.set_xlabel(name)
        ax.set_ylabel("coordinates")
        ax.set_title(f"{name} at the end of the tuned runs")
        ax.legend(fontsize=8)
        out.append(save(fig, base.with_name(f"{base.name}-{name.replace('/', '_')}")))
    return out


def lr_sensitivity(runs: list[dict[str, Any]], tuned: list[TunedResult], metric: str, base: Path, *, higher_is_better: bool) -> Path | None:
    lines = []  # (label, lrs, values per lr, lrs with a diverged seed)
    for res in tuned:
        if "lr" not in res.hyperparameters:
            continue
        others = {k: v for k, v in res.hyperparameters.items() if k != "lr"}
        pts: dict[float, list[float]] = {}
        div: set[float] = set()
        for r in runs:
            hp = r["hyperparameters"]
            if r["label"] != res.label or "lr" not in hp or {k: v for k, v in hp.items() if k != "lr"} != others:
                continue
            lr = float(hp["lr"])
            v = r["final_metrics"].get(metric)
            if r["status"] != "done" or v is None or not math.isfinite(v):
                div.add(lr)
                continue
            pts.setdefault(lr, []).append(float(v))
        lrs = sorted(lr for lr in pts if lr not in div)
        if lrs:
            lines.append((res.label, lrs, [pts[lr] for lr in lrs], div))
    if not lines:
        return None
    method = _method([g for _, _, groups, _ in lines for g in groups], higher_is_better)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, lrs, groups, div in lines:
        mean, lo, hi = _estimates(groups, method)
        line = ax.plot(lrs, mean, "o-", label=label)[0]
        ax.fill_between(lrs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        if div:
            ax.plot(sorted(div), [np.nanmax(mean)] * len(div), "x", color=line.get_color(), ms=8)
    ax.set_xscale("log")
    if method == "log-t":
        ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"final {metric}")
    ax.set_title(f"lr sensitivity ({stats.ESTIMATE_NAME[method]}, 95% CI over seeds ({method}); x: a seed diverged)"
                 f"{' - higher is better' if higher_is_better else ''}")  # fmt: skip
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return save(fig, base)


def profile_ratios(costs: dict[str, dict[str, float]]) -> tuple[list[str], list[str], dict[str, list[float | None]]]:
    """``(problems, solvers, ratios)``: ``ratios[s][i] = r_{p_i,s} = c_{p_i,s} / min_s c_{p_i,s}``;
    ``inf`` where ``s`` failed on ``p_i`` (cost ``inf``/``nan``) or no solver succeeded there,
    ``None`` where ``s`` did not run on ``p_i``. ``costs[problem][solver]``: lower is better, > 0."""
    problems = [p for p, c in costs.items() if c]
    solvers = sorted({s for c in costs.values() for s in c})
    ratios: dict[str, list[float | None]] = {s: [] for s in solvers}
    for p in problems:
        c = {s: (v if v is not None and math.isfinite(v) else math.inf) for s, v in costs[p].items()}
        best = min(c.values())
        for s in solvers:
            if s not in c:
                ratios[s].append(None)
            elif not math.isfinite(best) or not math.isfinite(c[s]):
                ratios[s].append(math.inf)
            else:
                ratios[s].append(c[s] / best if best > 0 else (1.0 if c[s] == best else math.inf))
    return problems, solvers, ratios


def profile_table(costs: dict[str, dict[str, float]]) -> list[list[str]]:
    """Rows (header first): one per problem, the ratio ``r_{p,s}`` of every solver, ``failed`` or ``not run``."""
    problems, solvers, ratios = profile_ratios(costs)
    rows = [["problem", *solvers]]
    for i, p in enumerate(problems):
        cells = [ratios[s][i] for s in solvers]
        rows.append([p, *("not run" if r is None else "failed" if math.isinf(r) else f"{r:.3g}" for r in cells)])
    return rows


def performance_profile(costs: dict[str, dict[str, float]], base: Path, *, what: str = "tuned test estimate") -> Path | None:
    """Dolan-More profiles, drawn for at least 2 problems and 2 solvers (else ``None``): a profile
    over one problem is only its ranking. A solver that did not run on a problem counts as
    failing there, and its legend entry names those problems."""
    problems, solvers, ratios = profile_ratios(costs)
    if len(problems) < 2 or len(solvers) < 2:
        return None
    finite = [r for rs in ratios.values() for r in rs if r is not None and math.isfinite(r)]
    tmax = max(2.0, max(finite) * 1.5 if finite else 2.0)
    taus = np.logspace(0, np.log10(tmax), 200)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s in solvers:
        r = np.array([math.inf if v is None else v for v in ratios[s]])
        missing = [p for p, v in zip(problems, ratios[s]) if v is None]
        label = s + (f" (not run on {', '.join(missing)})" if missing else "")
        ax.step(taus, [(r <= t).mean() for t in taus], where="post", label=label)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("tau (ratio to the best optimizer)")
    ax.set_ylabel("fraction of problems")
    names = ", ".join(problems) if len(problems) <= 6 else "see the table of ratios"
    ax.set_title(f"performance profile over {len(problems)} problems ({what}):\n{names}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return save(fig, base)


def profile_costs(value: float, higher_is_better: bool) -> float:
    """A positive cost from a metric: the metric for losses, ``1 - value`` for accuracies in [0, 1]."""
    if value is None or not math.isfinite(value):
        return math.inf
    if higher_is_better:
        return max(1.0 - value, 1e-300) if value <= 1 else 1.0 / value
    return max(value, 1e-300)
