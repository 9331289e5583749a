"""CurvatureSchedule: which curvature a :class:`precond.curvature.CurvatureFeeder` computes, and when.

A frozen record, validated on construction::

    CurvatureSchedule("gnb", every=10, n_samples=1, first=10)   # the official Sophia loop
    CurvatureSchedule.of(optimizer)                               # what the optimizer asks for

The feeder refreshes the curvature on its calls ``first, first + every, first + 2 every, ...``
(:meth:`CurvatureSchedule.due`), each time with the estimator ``estimator``
(:data:`precond.curvature.estimators.CURVATURE_ESTIMATORS`, aliases resolved) averaged over
``n_samples`` draws. :meth:`CurvatureSchedule.of` reads a curvature optimizer's settings, the
properties ``curvature_estimator``, ``curvature_every`` and ``curvature_samples`` of
:class:`precond.optim.curvature_base.CurvatureOptimizer` (and of a
:class:`precond.curvature.RotatedOptimizer` wrapping one); this is where an optimizer's
``estimator=`` name is checked against the names, which the optimizer layer does not know.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .estimators import CURVATURE_ESTIMATORS, canonical_estimator

#: schedule field -> the optimizer property :meth:`CurvatureSchedule.of` reads it from
OPTIMIZER_SETTINGS = {"estimator": "curvature_estimator", "every": "curvature_every", "n_samples": "curvature_samples"}


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"invalid {name}={value!r}: must be an integer >= {low}")


@dataclass(frozen=True)
class CurvatureSchedule:
    """Refresh with ``estimator`` (canonical name) on feeder calls ``first + j*every``, ``j >= 0``,
    each estimate averaged over ``n_samples`` draws (GNB labels, Hutchinson probes)."""

    estimator: str
    every: int = 1
    n_samples: int = 1
    first: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "estimator", canonical_estimator(self.estimator))
        _check_int("every", self.every, 1)
        _check_int("n_samples", self.n_samples, 1)
        _check_int("first", self.first, 0)

    def due(self, call: int) -> bool:
        """Whether the feeder's call number ``call`` (0 for the first) refreshes the curvature."""
        return call >= self.first and (call - self.first) % self.every == 0

    @classmethod
    def of(cls, optimizer: Any, **overrides: Any) -> CurvatureSchedule:
        """The schedule ``optimizer`` asks for (:data:`OPTIMIZER_SETTINGS`), with the fields in
        ``overrides`` (``None`` values ignored) taking precedence. An optimizer without
        ``curvature_every``/``curvature_samples`` gets 1; one without ``curvature_estimator``
        needs ``estimator=``."""
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"CurvatureSchedule has no field {unknown[0]!r}: the fields are estimator, every, n_samples, first")
        fields = {k: v for k, v in overrides.items() if v is not None}
        for name, attr in OPTIMIZER_SETTINGS.items():
            if name not in fields and (value := getattr(optimizer, attr, None)) is not None:
                fields[name] = value
        if "estimator" not in fields:
            raise ValueError(
                f"{type(optimizer).__name__} has no curvature_estimator: pass estimator= "
                f"({', '.join(map(repr, CURVATURE_ESTIMATORS))})"
            )
        return cls(**fields)
