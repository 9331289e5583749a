"""What a claim is: data (id, source, statement, experiments at each size, open settings) and two
functions (the verdict rule and the figure), plus the vocabulary of verdicts.

A claim's verdict is one of :data:`REPRODUCED`, :data:`NOT_REPRODUCED`, :data:`INCONCLUSIVE`,
decided by its rule from the measured numbers only (``verdict(numbers) -> Verdict``, a pure
function, so it is unit-tested on synthetic numbers). A rule is a list of :class:`Check` s,
each a measured estimate with its 95% interval against a threshold fixed in the claim's
module before anything ran:

* the claim says ``estimate > threshold`` (``op=">"``): the interval lies above the
  threshold -> reproduced; below it -> not reproduced; it contains it -> inconclusive
  (``op="<"`` mirrors it). A check without an interval (an exact quantity) compares the
  estimate itself.
* :func:`combine`: all checks reproduced -> reproduced; any check not reproduced -> not
  reproduced; otherwise inconclusive. :func:`flag` adds a check that makes the verdict at
  most inconclusive (a tuned value at the edge of its grid, runs that failed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
STATUSES = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
SIZES = ("tiny", "quick", "full")


def fmt(v: Any) -> str:
    """A number in 4 significant digits (``nan`` as ``n/a``), anything else as ``str``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "n/a"
    return f"{v:.4g}"


@dataclass(frozen=True)
class Check:
    """One test of a rule: the claim says ``estimate <op> threshold``; ``low``/``high`` bound the
    estimate (95%), ``None`` for an exact quantity."""

    name: str
    estimate: float
    op: str
    threshold: float
    low: float | None = None
    high: float | None = None
    status: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.op not in (">", "<", ">=", "<="):
            raise ValueError(f"Check {self.name!r}: op must be one of >, <, >=, <=; got {self.op!r}")
        if not self.status:
            object.__setattr__(self, "status", decide(self.estimate, self.op, self.threshold, self.low, self.high))

    @classmethod
    def ci(cls, name: str, interval: tuple[float, float, float], op: str, threshold: float, note: str = "") -> "Check":
        """A check of ``(estimate, low, high)``."""
        est, lo, hi = interval
        return cls(name, est, op, threshold, lo, hi, note=note)

    def text(self) -> str:
        ci = "" if self.low is None else f" [{fmt(self.low)}, {fmt(self.high)}]"
        return f"{self.name}: {fmt(self.estimate)}{ci} (claim: {self.op} {fmt(self.threshold)}) -> {self.status}" + (
            f"; {self.note}" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "estimate": self.estimate, "ci95": None if self.low is None else [self.low, self.high],
                "op": self.op, "threshold": self.threshold, "status": self.status, "note": self.note}


def _holds(x: float, op: str, thr: float) -> bool:
    return {">": x > thr, "<": x < thr, ">=": x >= thr, "<=": x <= thr}[op]


def decide(estimate: float, op: str, threshold: float, low: float | None = None, high: float | None = None) -> str:
    """The status of ``estimate <op> threshold`` given its interval ``[low, high]`` (see the module)."""
    if low is None or high is None:
        if math.isnan(estimate):
            return INCONCLUSIVE
        return REPRODUCED if _holds(estimate, op, threshold) else NOT_REPRODUCED
    if math.isnan(low) or math.isnan(high):
        return INCONCLUSIVE
    if _holds(low, op, threshold) and _holds(high, op, threshold):
        return REPRODUCED
    mirror = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}[op]
    if _holds(low, mirror, threshold) and _holds(high, mirror, threshold):
        return NOT_REPRODUCED
    return INCONCLUSIVE


def flag(name: str, note: str) -> Check:
    """A check that holds the verdict at most at inconclusive (``note`` says why)."""
    return Check(name, math.nan, ">", 0.0, status=INCONCLUSIVE, note=note)


@dataclass
class Verdict:
    """The outcome of a rule: the status, its checks, and one line of what was measured."""

    status: str
    checks: list[Check]
    measured: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "measured": self.measured, "checks": [c.to_dict() for c in self.checks],
                "notes": list(self.notes)}


def combine(checks: list[Check], measured: str, notes: list[str] | None = None) -> Verdict:
    """All checks reproduced -> reproduced; any not reproduced -> not reproduced; else inconclusive."""
    statuses = [c.status for c in checks]
    if not checks:
        status = INCONCLUSIVE
    elif NOT_REPRODUCED in statuses:
        status = NOT_REPRODUCED
    elif all(s == REPRODUCED for s in statuses):
        status = REPRODUCED
    else:
        status = INCONCLUSIVE
    return Verdict(status, list(checks), measured, list(notes or []))


@dataclass(frozen=True)
class OpenSetting:
    """A setting the source leaves open: the value chosen and why, and the values of the small
    sweep that measures how the verdict depends on it (``param`` is the key of the claim's size
    parameters the sweep overrides)."""

    name: str
    param: str
    choice: Any
    why: str
    values: tuple[Any, ...] = ()

    def alternatives(self) -> list[Any]:
        return [v for v in self.values if v != self.choice]


@dataclass(frozen=True)
class Computation:
    """A quantity a claim computes itself, where the engine cannot (it records no optimizer state):
    the module-level function ``func`` (``"module:function"``) called with ``kwargs``, returning a
    JSON-able dict, deterministic (seeded). Its result is kept beside the store, keyed by the
    function, its arguments and its module's source (:func:`precond.claims.engine.cache_dir`)."""

    func: str
    kwargs: Mapping[str, Any]


#: params -> {tag: spec dict for the experiments engine (without ``name``)}
Experiments = Callable[[Mapping[str, Any]], "dict[str, dict[str, Any]]"]


@dataclass(frozen=True)
class Claim:
    """A claim of the literature, as data and two functions.

    * ``sizes``: parameters per size (``"tiny"`` for the test suite, ``"quick"``, ``"full"``);
      ``experiments(params)`` turns them into experiment specs (tag -> spec dict) and
      ``computations(params)`` into :class:`Computation` s (tag -> computation).
    * ``measure(inputs, params) -> numbers``: the measured numbers (JSON-able) from the runs and
      computations (:class:`precond.claims.engine.Inputs`); keys starting with ``_`` are data for
      the figure only (not printed by ``--json``).
    * ``verdict(numbers) -> Verdict``: the pre-registered rule (see the module).
    * ``figure(numbers, base) -> png path``: the figure (PNG and SVG).
    """

    id: str
    title: str
    source: str
    statement: str
    expected: str
    rule: str
    sizes: Mapping[str, Mapping[str, Any]]
    measure: Callable[[Any, Mapping[str, Any]], dict[str, Any]]
    verdict: Callable[[Mapping[str, Any]], Verdict]
    figure: Callable[[Mapping[str, Any], Path], Path | None]
    experiments: Experiments = lambda params: {}
    computations: Callable[[Mapping[str, Any]], "dict[str, Computation]"] = lambda params: {}
    open_settings: tuple[OpenSetting, ...] = ()

    def params(self, size: str, **overrides: Any) -> dict[str, Any]:
        if size not in self.sizes:
            raise KeyError(f"claim {self.id} has no size {size!r}; sizes: {', '.join(self.sizes)}")
        unknown = [k for k in overrides if k not in self.sizes[size]]
        if unknown:
            raise KeyError(f"claim {self.id}: {', '.join(unknown)} not among its parameters ({', '.join(self.sizes[size])})")
        return {**self.sizes[size], **overrides}
