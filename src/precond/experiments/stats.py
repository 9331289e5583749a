"""Intervals over seeds and ranks with ties: the statistics of the tables and figures.

One value per seed, ``x_1..x_n``; two interval methods, chosen by :func:`choose_method`:

* ``"log-t"`` for a metric known to be non-negative where lower is better (losses, whose
  values over seeds often spread over orders of magnitude): the estimate is the geometric
  mean ``exp(mean(log y_i))`` of ``y_i = max(x_i, floor)``, and the interval is the
  Student-t interval of ``log y`` back-transformed,
  ``exp(mean(log y) ± t_{1-a/2, n-1} · sd(log y) / sqrt(n))``. It is exact when the
  values are log-normal, is never below 0 and scales with the values (a factor, not a
  difference). ``floor`` is the floating-point floor of the metric (the machine epsilon of
  the run's dtype): a value below it is zero to working precision, and 0 has no logarithm.
* ``"bootstrap"`` otherwise (accuracies in [0, 1], metrics that can be negative): the
  estimate is the mean and the interval the *expanded* percentile bootstrap of the mean
  (Hesterberg 2015, "What teachers should know about the bootstrap", The American
  Statistician 69(4), section 6.3): percentiles ``a'/2`` and ``1 - a'/2`` of the means of
  ``resamples`` resamples with replacement (a fixed seed: the same values give the same
  interval), with ``a'`` widened so that ``z_{1-a'/2} = sqrt(n/(n-1)) · t_{1-a/2, n-1}``,
  which corrects the plain percentile interval's undercoverage at few seeds. It lies
  inside ``[min x, max x]``, so inside the metric's range.

Measured coverage of 95% intervals (400 simulated sets, ``tests/experiments/test_exp_stats.py``):
log-t 94% of the geometric mean of log-normal values (exact for any n); the expanded
bootstrap of the mean 92% at n = 5 and 94% at n = 10 for normal values, 92-93% for skewed
accuracy-like beta(8, 2) values (the plain percentile bootstrap: 87% and 90% for normal
values, 78% at n = 5 for the beta ones).

Ranks (:func:`ranks`) are competition ranks of the estimates, ``"1", "2=", "2=", "4"``:
two estimates are tied when they agree within a relative tolerance (``rtol``, default
1e-6: equal to the precision the runs carry) or, for a ``"log-t"`` metric, are both at or
below the floor. An interval says how well an estimate is known; two overlapping
intervals are not a test of equality, and the rank is not one either.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
RTOL = 1e-6
DTYPE_FLOOR = {"float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps),
               "bfloat16": 2.0**-7, "float16": float(np.finfo(np.float16).eps)}  # fmt: skip

#: what the tables print in the estimate's header and the interval's header, per method
ESTIMATE_NAME = {"log-t": "geo. mean", "bootstrap": "mean"}
METHOD_DESCRIPTION = {
    "log-t": "geometric mean over seeds (a value below the floating-point floor counts as the floor); "
             "95% CI: Student-t interval of log(value), back-transformed",
    "bootstrap": f"mean over seeds; 95% CI: expanded percentile bootstrap of the mean ({RESAMPLES} resamples, seed {BOOTSTRAP_SEED})",
}


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    method: str
    n: int


def choose_method(values: list[float], *, higher_is_better: bool) -> str:
    """``"log-t"`` for a lower-is-better metric whose finite values are all ``>= 0``, else ``"bootstrap"``."""
    finite = [v for v in values if math.isfinite(v)]
    return "log-t" if not higher_is_better and all(v >= 0 for v in finite) else "bootstrap"


def t_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``(mean, low, high)``: ``mean ± t_{(1+c)/2, n-1} · s / sqrt(n)`` (``nan`` bounds for n < 2)."""
    from scipy import stats

    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = statistics.fmean(values)
    if n < 2:
        return mean, math.nan, math.nan
    h = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return mean, mean - h, mean + h


def log_t_interval(values: list[float], floor: float, confidence: float = CONFIDENCE) -> Interval:
    """The geometric mean of ``max(x, floor)`` and its back-transformed t-interval (see the module)."""
    if floor <= 0:
        raise ValueError(f"floor must be > 0 for a log-scale interval, got {floor!r}")
    logs = [math.log(max(v, floor)) for v in values]
    m, lo, hi = (max(math.exp(v), floor) if math.isfinite(v) else math.nan for v in t_interval(logs, confidence))
    return Interval(m, lo, hi, "log-t", len(values))


def at_floor(v: float, floor: float | None) -> bool:
    """``0 <= v <= floor`` up to the rounding of ``exp(log(floor))`` (a relative ``RTOL``)."""
    return floor is not None and 0 <= v <= floor * (1 + RTOL)


def bootstrap_interval(values: list[float], confidence: float = CONFIDENCE, *, resamples: int = RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> Interval:  # fmt: skip
    """The mean and its expanded percentile bootstrap interval (see the module)."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return Interval(values[0] if n else math.nan, math.nan, math.nan, "bootstrap", n)
    x = np.asarray(values, dtype=float)
    means = x[np.random.default_rng(seed).integers(0, n, size=(resamples, n))].mean(axis=1)
    z = math.sqrt(n / (n - 1)) * float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    tail = float(stats.norm.sf(z))
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return Interval(float(x.mean()), float(lo), float(hi), "bootstrap", n)


def interval(values: list[float], method: str, *, floor: float = DTYPE_FLOOR["float64"],
             confidence: float = CONFIDENCE) -> Interval:  # fmt: skip
    """The interval of ``method`` (``"log-t"`` or ``"bootstrap"``) over the finite ``values``."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if method == "log-t":
        return log_t_interval(finite, floor, confidence)
    if method == "bootstrap":
        return bootstrap_interval(finite, confidence)
    raise ValueError(f"unknown interval method {method!r}: choose 'log-t' or 'bootstrap'")


def tied(a: float, b: float, *, rtol: float = RTOL, floor: float | None = None) -> bool:
    """``|a - b| <= rtol · max(|a|, |b|)``, or both at the floor (:func:`at_floor`) when a floor is given."""
    if at_floor(a, floor) and at_floor(b, floor):
        return True
    return abs(a - b) <= rtol * max(abs(a), abs(b))


def ranks(keys: list[tuple[float, ...]], *, higher_is_better: bool, rtol: float = RTOL,
          floor: float | None = None) -> list[str]:  # fmt: skip
    """Competition ranks of ``keys`` (``(group, estimate)``: a lower group ranks first, e.g. the
    number of diverged seeds; then the estimate), ``"="`` marking a tie; ``"-"`` for a ``nan``
    estimate. Tied entries (same group, :func:`tied` estimates) share the best rank of their run:
    walking from the best, an entry joins the current tie when it is tied with its first entry."""
    sign = -1.0 if higher_is_better else 1.0
    order = sorted((i for i, k in enumerate(keys) if not math.isnan(k[-1])), key=lambda i: (keys[i][:-1], sign * keys[i][-1]))
    out = ["-"] * len(keys)
    groups: list[list[int]] = []
    for i in order:
        head = groups[-1][0] if groups else None
        if head is not None and keys[head][:-1] == keys[i][:-1] and tied(keys[head][-1], keys[i][-1], rtol=rtol, floor=floor):
            groups[-1].append(i)
        else:
            groups.append([i])
    place = 1
    for g in groups:
        for i in g:
            out[i] = f"{place}=" if len(g) > 1 else str(place)
        place += len(g)
    return out


def fmt_value(v: float, floor: float | None = None) -> str:
    """``4 significant digits``; a value at or below the floor prints as ``<=floor``."""
    if at_floor(v, floor):
        return f"<={floor:.2g}"
    return f"{v:.4g}"
