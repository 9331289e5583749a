"""Which validation metric the AGD claims (C10, C11) tune on, and which way a metric is better.

The engine's protocol selects on the problem's ``val_metric``, which is the validation *loss*
for ``digits_mlp`` and MNIST-1D although they report test *accuracy*; a claim about
generalization selects on the validation counterpart of the metric it reports (``val_acc``
for ``test_acc``), as the paper reports accuracy. The handle's ``higher_is_better`` is its
validation metric's and its ``test_higher_is_better`` its test metric's
(:func:`precond.problems.test_direction`); each selection goes the way of the metric it selects on.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from .measure import tune_on

__all__ = ["Selected", "selection_metric", "selection_higher_is_better", "tune_selected"]


def selection_metric(handle: Any, runs: list[dict[str, Any]]) -> str:
    """``val_acc`` (the validation counterpart of a test accuracy) when the runs recorded it, else
    the problem's ``val_metric``."""
    if handle.test_higher_is_better:
        name = "val_" + handle.test_metric.removeprefix("test_")
        if any(name in r["final_metrics"] for r in runs):
            return name
    return handle.val_metric


def selection_higher_is_better(handle: Any, metric: str) -> bool:
    """The direction of ``metric``, one of :func:`selection_metric`'s choices: the handle's
    ``higher_is_better`` for its ``val_metric``, else (the test metric's validation counterpart)
    its ``test_higher_is_better``."""
    return bool(handle.higher_is_better if metric == handle.val_metric else handle.test_higher_is_better)


class Selected(NamedTuple):
    runs: list[dict[str, Any]]  #: every run of the experiment
    handle: Any  #: its problem's handle
    metric: str  #: the metric selected on (:func:`selection_metric`)
    tuned: dict[str, dict[str, Any]]  #: :func:`precond.claims.measure.tune_on`'s choice per label


def tune_selected(inputs: Any, tag: str) -> Selected:
    """Experiment ``tag`` tuned by the protocol on :func:`selection_metric`, in that metric's direction."""
    runs = inputs.runs(tag)
    handle = inputs.experiment(tag).problem
    metric = selection_metric(handle, runs)
    values = {r["key"]: float(r["final_metrics"].get(metric, math.nan)) for r in runs}
    return Selected(runs, handle, metric, tune_on(runs, metric, values, inputs.grids(tag),
                                                   higher_is_better=selection_higher_is_better(handle, metric)))
