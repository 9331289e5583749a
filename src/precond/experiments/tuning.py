"""The tuning protocol (as in DeepOBS, Schneider et al. 2019, and AlgoPerf, Dahl et al. 2023).

Per optimizer:

1. every hyperparameter setting is scored by the problem's validation metric
   (``val_metric``) at the end of the run, averaged over seeds; a diverged seed counts as
   the worst value (``+inf`` for losses, ``-inf`` when ``higher_is_better``), so a setting
   with any diverged seed loses to every setting without;
2. the best setting is chosen (ties: the first in grid order);
3. its test metric (``test_metric``) is reported as the mean over seeds with a 95%
   Student-t confidence interval, ``mean ± t_{0.975, n-1} · s / sqrt(n)`` with ``s`` the
   sample standard deviation (``ddof=1``); fewer than 5 seeds gives a warning;
4. a chosen value at the edge of its grid (the smallest or largest value tried, for a
   hyperparameter with at least 2 numeric values) is flagged: the optimum may lie outside.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

MIN_SEEDS = 5


@dataclass
class TunedResult:
    label: str
    optimizer: str
    hyperparameters: dict[str, Any]
    val_mean: float
    test_mean: float
    ci_low: float
    ci_high: float
    n_seeds: int
    n_diverged: int
    settings_tried: int
    edge: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def t_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the Student-t confidence interval of the mean (``nan`` bounds for n < 2)."""
    from scipy import stats

    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = statistics.fmean(values)
    if n < 2:
        return mean, math.nan, math.nan
    s = statistics.stdev(values)
    h = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * s / math.sqrt(n)
    return mean, mean - h, mean + h


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def tune(runs: list[dict[str, Any]], *, val_metric: str, test_metric: str, higher_is_better: bool,
         grids: dict[str, dict[str, list[Any]]] | None = None) -> list[TunedResult]:  # fmt: skip
    """Apply the protocol to store records (``Store.runs``) of one experiment; one result per label.

    ``grids`` (label -> hyperparameter -> values, as the spec expanded them) sets the grid
    edges; without it the edges are the smallest and largest values present in ``runs``.
    """
    worst = -math.inf if higher_is_better else math.inf
    by_label: dict[str, dict[str, list[dict[str, Any]]]] = {}
    order: dict[str, list[str]] = {}
    for r in runs:
        hid = json.dumps(r["hyperparameters"], sort_keys=True)
        by_label.setdefault(r["label"], {}).setdefault(hid, []).append(r)
        order.setdefault(r["label"], [])
        if hid not in order[r["label"]]:
            order[r["label"]].append(hid)
    results = []
    for label, settings in by_label.items():
        scored = []
        for hid in order[label]:
            rs = settings[hid]
            vals = []
            for r in rs:
                v = _num(r["final_metrics"].get(val_metric)) if r["status"] == "done" else worst
                vals.append(worst if not math.isfinite(v) else v)
            mean = statistics.fmean(vals) if vals else worst
            scored.append((mean, hid))
        key = (lambda m: -m[0]) if higher_is_better else (lambda m: m[0])
        best_mean, best_hid = min(scored, key=key)  # min is stable: ties keep grid order
        chosen = settings[best_hid]
        tests = [_num(r["final_metrics"].get(test_metric)) for r in chosen if r["status"] == "done"]
        tests = [t for t in tests if math.isfinite(t)]
        n_div = sum(r["status"] != "done" for r in chosen)
        mean, lo, hi = t_interval(tests)
        hp = json.loads(best_hid)
        warnings = []
        if len(chosen) < MIN_SEEDS:
            warnings.append(f"only {len(chosen)} seed(s); the protocol asks for at least {MIN_SEEDS}")
        if n_div:
            warnings.append(f"{n_div} of {len(chosen)} seeds of the chosen setting diverged (every setting had a diverged seed)")
        grid = (grids or {}).get(label) or {}
        edge = []
        for name, value in hp.items():
            values = grid.get(name)
            if values is None:
                values = sorted({json.dumps(json.loads(h)[name]) for h in order[label] if name in json.loads(h)})
                values = [json.loads(v) for v in values]
            nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if len(set(nums)) >= 2 and isinstance(value, (int, float)) and not isinstance(value, bool):
                if value == min(nums):
                    edge.append(f"{name}={value:g} is the smallest value of its grid")
                elif value == max(nums):
                    edge.append(f"{name}={value:g} is the largest value of its grid")
        results.append(TunedResult(
            label=label, optimizer=chosen[0]["optimizer"], hyperparameters=hp, val_mean=best_mean,
            test_mean=mean, ci_low=lo, ci_high=hi, n_seeds=len(chosen), n_diverged=n_div,
            settings_tried=len(scored), edge=edge, warnings=warnings,
        ))  # fmt: skip
    return results


def tune_store(store: Any, experiment: str) -> list[TunedResult]:
    meta = next((e["meta"] for e in store.experiments() if e["name"] == experiment), None)
    if meta is None:
        raise KeyError(f"experiment {experiment!r} is not in the store")
    runs = store.runs(experiment, history=False)
    res = tune(runs, val_metric=meta["val_metric"], test_metric=meta["test_metric"],
               higher_is_better=meta["higher_is_better"], grids=meta.get("grids"))  # fmt: skip
    labels = meta.get("labels") or []
    return sorted(res, key=lambda r: labels.index(r.label) if r.label in labels else len(labels))


def format_hp(hp: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(hp.items()))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_fmt(a) for a in v) + ")"
    return str(v)


def table(results: list[TunedResult], test_metric: str) -> list[list[str]]:
    """Rows for a text/Markdown table: header first."""
    rows = [["optimizer", "chosen hyperparameters", f"{test_metric} (mean)", "95% CI", "seeds", "diverged", "notes"]]
    for r in results:
        ci = "n/a" if math.isnan(r.ci_low) else f"[{r.ci_low:.4g}, {r.ci_high:.4g}]"
        notes = "; ".join(["edge: " + e for e in r.edge] + r.warnings)
        rows.append([r.label, format_hp(r.hyperparameters), f"{r.test_mean:.4g}", ci, str(r.n_seeds), str(r.n_diverged), notes])
    return rows


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
