"""Which validation metric the AGD claims (C10, C11) tune on, and which way a metric is better.

The engine's protocol selects on the problem's ``val_metric``, which is the validation *loss*
for ``digits_mlp`` and MNIST-1D although they report test *accuracy*; a claim about
generalization selects on the validation counterpart of the metric it reports (``val_acc``
for ``test_acc``), as the paper reports accuracy. The handle's ``higher_is_better`` is its
validation metric's, so the direction of the test metric is read from its name.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from precond.problems import metric_higher_is_better as higher_is_better

from .measure import tune_on

__all__ = ["Selected", "higher_is_better", "selection_metric", "tune_selected"]


def selection_metric(handle: Any, runs: list[dict[str, Any]]) -> str:
    """``val_acc`` (the validation counterpart of a test accuracy) when the runs recorded it, else
    the problem's ``val_metric``."""
    if higher_is_better(handle.test_metric):
        name = "val_" + handle.test_metric.removeprefix("test_")
        if any(name in r["final_metrics"] for r in runs):
            return name
    return handle.val_metric


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
    return Selected(runs, handle, metric, tune_on(runs, metric, values, inputs.grids(tag), higher_is_better=higher_is_better(metric)))
