"""Figures of a results store (matplotlib, Agg backend; every figure as PNG and SVG).

* :func:`metric_curves` - a metric over steps for each optimizer's tuned setting: mean over
  seeds with a 95% Student-t band;
* :func:`trajectories` - iterates of 2-D problems over the objective's contour plot;
* :func:`adaptive_fraction` - AGD's fraction of coordinates on the adaptive branch over time
  (the paper's section 4.5);
* :func:`diagnostic_histograms` - histograms of per-coordinate diagnostics (e.g. the
  noise-to-signal ratio) at the end of the tuned runs;
* :func:`lr_sensitivity` - the validation metric against the learning rate, the other
  hyperparameters at their tuned values;
* :func:`performance_profile` - Dolan & More (2002) performance profiles across problems:
  ``rho_s(tau) = |{p : r_{p,s} <= tau}| / |P|`` with ``r_{p,s} = c_{p,s} / min_s c_{p,s}``.
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

from .tuning import TunedResult, t_interval  # noqa: E402


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


def _band(series: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = min(len(s) for s in series)
    a = np.array([s[:n] for s in series], dtype=float)
    mean, lo, hi = [], [], []
    for j in range(n):
        col = [v for v in a[:, j] if math.isfinite(v)]
        m, low, high = t_interval(col) if col else (math.nan, math.nan, math.nan)
        mean.append(m)
        lo.append(m if math.isnan(low) else low)
        hi.append(m if math.isnan(high) else high)
    return np.array(mean), np.array(lo), np.array(hi)


def metric_curves(runs: list[dict[str, Any]], tuned: list[TunedResult], metric: str, base: Path, *, title: str = "") -> Path | None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    drawn = False
    positive = True
    bands = []
    for res in tuned:
        rs = [r for r in _chosen(runs, res) if r["status"] == "done" and metric in r["history"]]
        if not rs:
            continue
        steps = rs[0]["history"]["step"][: min(len(r["history"][metric]) for r in rs)]
        mean, lo, hi = _band([[float(v) for v in r["history"][metric]] for r in rs])
        n = min(len(steps), len(mean))
        line = ax.plot(steps[:n], mean[:n], label=f"{res.label} (n={len(rs)})")[0]
        bands.append((steps[:n], mean[:n], lo[:n], hi[:n], line.get_color()))
        positive &= bool(np.all(mean[np.isfinite(mean)] > 0))
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    for st, mean, lo, hi, color in bands:
        if positive:  # on a log axis a lower bound <= 0 is drawn at mean/10
            lo = np.where(lo > 0, lo, mean / 10)
        ax.fill_between(st, lo, hi, color=color, alpha=0.2, linewidth=0)
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric}: tuned setting, mean and 95% CI over seeds")
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
        mean, lo, hi = _band([[float(v) for v in r["history"]["adaptive_fraction"]] for r in rs])
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
    ax.set_title("AGD: coordinates with sqrt(b_hat) > delta (adaptive branch)")
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
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    drawn = False
    positive = True
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
        if not lrs:
            continue
        stats = [t_interval(pts[lr]) for lr in lrs]
        mean = np.array([s[0] for s in stats])
        lo = np.array([s[0] if math.isnan(s[1]) else s[1] for s in stats])
        hi = np.array([s[0] if math.isnan(s[2]) else s[2] for s in stats])
        line = ax.plot(lrs, mean, "o-", label=res.label)[0]
        if np.all(mean > 0):
            lo = np.where(lo > 0, lo, mean / 10)
        ax.fill_between(lrs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        if div:
            top = np.nanmax(mean)
            ax.plot(sorted(div), [top] * len(div), "x", color=line.get_color(), ms=8)
        positive &= bool(np.all(mean > 0))
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"final {metric}")
    ax.set_title(f"lr sensitivity (mean, 95% CI over seeds; x: a seed diverged){' - higher is better' if higher_is_better else ''}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return save(fig, base)


def performance_profile(costs: dict[str, dict[str, float]], base: Path, *, what: str = "tuned test metric") -> Path | None:
    """Dolan-More profiles. ``costs[problem][solver]``: lower is better, > 0; ``inf``/``nan`` = failed."""
    problems = [p for p, c in costs.items() if c]
    solvers = sorted({s for c in costs.values() for s in c})
    if len(problems) < 1 or len(solvers) < 2:
        return None
    ratios = {s: [] for s in solvers}
    for p in problems:
        c = {s: costs[p].get(s, math.inf) for s in solvers}
        c = {s: (v if v is not None and math.isfinite(v) else math.inf) for s, v in c.items()}
        best = min(c.values())
        for s in solvers:
            if not math.isfinite(best) or not math.isfinite(c[s]):
                ratios[s].append(math.inf)
            else:
                ratios[s].append(c[s] / best if best > 0 else (1.0 if c[s] == best else math.inf))
    finite = [r for rs in ratios.values() for r in rs if math.isfinite(r)]
    tmax = max(2.0, max(finite) * 1.5 if finite else 2.0)
    taus = np.logspace(0, np.log10(tmax), 200)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s in solvers:
        r = np.array(ratios[s])
        ax.step(taus, [(r <= t).mean() for t in taus], where="post", label=s)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("tau (ratio to the best optimizer)")
    ax.set_ylabel("fraction of problems")
    ax.set_title(f"performance profile over {len(problems)} problem(s) ({what})")
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
