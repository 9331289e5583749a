"""Which validation metric the AGD claims (C10, C11) tune on, and which way a metric is better.

The engine's protocol selects on the problem's ``val_metric``, which is the validation *loss*
for ``digits_mlp`` and MNIST-1D although they report test *accuracy*; a claim about
generalization selects on the validation counterpart of the metric it reports (``val_acc``
for ``test_acc``), as the paper reports accuracy. The handle's ``higher_is_better`` is its
validation metric's, so the direction of the test metric is read from its name.
"""

from __future__ import annotations

from typing import Any

from precond.problems import metric_higher_is_better as higher_is_better

__all__ = ["higher_is_better", "selection_metric"]


def selection_metric(handle: Any, runs: list[dict[str, Any]]) -> str:
    """``val_acc`` (the validation counterpart of a test accuracy) when the runs recorded it, else
    the problem's ``val_metric``."""
    if higher_is_better(handle.test_metric):
        name = "val_" + handle.test_metric.removeprefix("test_")
        if any(name in r["final_metrics"] for r in runs):
            return name
    return handle.val_metric
