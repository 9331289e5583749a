"""The tuning protocol (as in DeepOBS, Schneider et al. 2019, and AlgoPerf, Dahl et al. 2023).

Per optimizer:

1. every hyperparameter setting is scored by the problem's validation metric
   (``val_metric``) at the end of the run, averaged over seeds; a diverged seed counts as
   the worst value (``+inf`` for losses, ``-inf`` when ``higher_is_better``), so a setting
   with any diverged seed loses to every setting without;
2. the best setting is chosen (ties: the first in grid order);
3. its test metric (``test_metric``) over the seeds is reported with a 95% interval by one
   method for every optimizer of the experiment (:mod:`precond.experiments.stats`): for a
   lower-is-better metric whose values are all ``>= 0`` (losses) the geometric mean and the
   Student-t interval of ``log(value)`` back-transformed (values below the floating-point
   floor, the run dtype's machine epsilon, count as the floor), otherwise the mean and an
   expanded percentile bootstrap; fewer than 5 seeds gives a warning;
4. a chosen value at the edge of its grid (the smallest or largest value tried, for a
   hyperparameter with at least 2 numeric values) is flagged: the optimum may lie outside;
5. the optimizers are ranked by the estimate (fewer diverged seeds first); estimates within a
   relative 1e-6, or both at the floor, are tied (``"2="``), not ranked.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from precond.problems import test_direction

from . import stats

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
    #: the reported estimate (geometric mean or mean, per ``ci_method``); ``ci_low``/``ci_high`` bound it
    estimate: float = math.nan
    ci_method: str = ""
    #: competition rank among the experiment's optimizers, ``"2="`` when tied
    rank: str = ""
    #: the floating-point floor of the metric (``"log-t"`` only): values at or below it are zero
    floor: float | None = None

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def tune(runs: list[dict[str, Any]], *, val_metric: str, test_metric: str, higher_is_better: bool,
         grids: dict[str, dict[str, list[Any]]] | None = None,
         test_higher_is_better: bool | None = None) -> list[TunedResult]:  # fmt: skip
    """Apply the protocol to store records (``Store.runs``) of one experiment; one result per label.

    ``higher_is_better`` is the direction of ``val_metric`` (the selection); the test intervals
    and ranks use ``test_higher_is_better`` (default: :func:`~precond.problems.test_direction`,
    the same direction for the same metric, else read from the test metric's name).

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
    all_tests: list[list[float]] = []  # the chosen setting's finite test values, per result
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
        mean = statistics.fmean(tests) if tests else math.nan
        all_tests.append(tests)
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
            test_mean=mean, ci_low=math.nan, ci_high=math.nan, n_seeds=len(chosen), n_diverged=n_div,
            settings_tried=len(scored), edge=edge, warnings=warnings,
        ))  # fmt: skip
    if test_higher_is_better is None:
        test_higher_is_better = test_direction(val_metric, test_metric, higher_is_better)
    _intervals_and_ranks(results, all_tests, higher_is_better=test_higher_is_better, floor=_floor(runs))
    return results


def _floor(runs: list[dict[str, Any]]) -> float:
    """The floating-point floor of a metric of these runs: the machine epsilon of their dtype."""
    dtypes = {(r.get("config") or {}).get("dtype", "float64") for r in runs}
    return max(stats.DTYPE_FLOOR.get(d, stats.DTYPE_FLOOR["float64"]) for d in dtypes or {"float64"})


def _intervals_and_ranks(results: list[TunedResult], tests: list[list[float]], *, higher_is_better: bool,
                         floor: float) -> None:  # fmt: skip
    """One interval method for the whole experiment (comparable rows), then the ranks with ties."""
    method = stats.choose_method([t for ts in tests for t in ts], higher_is_better=higher_is_better)
    floor_or_none = floor if method == "log-t" else None
    for r, ts in zip(results, tests):
        iv = stats.interval(ts, method, floor=floor)
        r.estimate, r.ci_low, r.ci_high, r.ci_method, r.floor = iv.estimate, iv.low, iv.high, method, floor_or_none
    keys = [(r.n_diverged, r.estimate) for r in results]
    for r, rank in zip(results, stats.ranks(keys, higher_is_better=higher_is_better, floor=floor_or_none)):
        r.rank = rank


def test_higher_is_better(meta: dict[str, Any]) -> bool:
    """The direction of an experiment's test metric, from its stored meta (stores written before
    it was recorded: :func:`~precond.problems.test_direction` of its metric names)."""
    if meta.get("test_higher_is_better") is not None:
        return bool(meta["test_higher_is_better"])
    return test_direction(meta["val_metric"], meta["test_metric"], meta["higher_is_better"])


def tune_store(store: Any, experiment: str) -> list[TunedResult]:
    meta = next((e["meta"] for e in store.experiments() if e["name"] == experiment), None)
    if meta is None:
        raise KeyError(f"experiment {experiment!r} is not in the store")
    runs = store.runs(experiment, history=False)
    res = tune(runs, val_metric=meta["val_metric"], test_metric=meta["test_metric"],
               higher_is_better=meta["higher_is_better"], grids=meta.get("grids"),
               test_higher_is_better=test_higher_is_better(meta))  # fmt: skip
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
    """Rows for a text/Markdown table: header first. The headers name the estimate and the
    interval method (``"log-t"`` or ``"bootstrap"``, see :mod:`precond.experiments.stats`)."""
    methods = "/".join(sorted({r.ci_method for r in results if r.ci_method})) or "n/a"
    estimate = "/".join(stats.ESTIMATE_NAME.get(m, m) for m in methods.split("/"))
    rows = [["optimizer", "chosen hyperparameters", f"{test_metric} ({estimate})", f"95% CI ({methods})", "rank", "seeds",
             "diverged", "notes"]]  # fmt: skip
    for r in results:
        ci = "n/a" if math.isnan(r.ci_low) else f"[{stats.fmt_value(r.ci_low, r.floor)}, {stats.fmt_value(r.ci_high, r.floor)}]"
        notes = "; ".join(["edge: " + e for e in r.edge] + r.warnings)
        rows.append([r.label, format_hp(r.hyperparameters), stats.fmt_value(r.estimate, r.floor), ci, r.rank, str(r.n_seeds),
                     str(r.n_diverged), notes])  # fmt: skip
    return rows


def table_note(results: list[TunedResult]) -> str:
    """One sentence under a table: what the estimate and the interval are, and what a tie is."""
    methods = sorted({r.ci_method for r in results if r.ci_method})
    floors = {r.floor for r in results if r.floor is not None}
    parts = [stats.METHOD_DESCRIPTION[m] for m in methods]
    tie = f"rank: by the estimate, fewer diverged seeds first; '=' is a tie (within relative {stats.RTOL:g}"
    tie += f", or both <= {max(floors):.2g}, the floating-point floor)" if floors else ")"
    return "; ".join(parts + [tie]) + "."


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
