"""What C13-C15 (seed 002, Adam or Gauss-Newton, arXiv 2510.13680) share: the optimizers' spec
tables and the steps-to-target comparison.

GN^p is precond's ``GaussNewtonDiag`` (``x -= lr (|h| + damping)^p g``, ``h`` the exact GGN
diagonal of the step's batch, fed by the engine's curvature feeder before every step, or its
bias-corrected EMA with ``beta2 > 0``), without momentum unless a claim says so; Adam is
precond's ``Adam`` (bias-corrected, eps outside the root). Each is tuned on its own
learning-rate grid.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from .measure import geo_ci, tuned_steps

GN_POWERS = {"GN^-1": -1.0, "GN^-1/2": -0.5}


def lr_grid(lo: float, hi: float, n: int) -> dict[str, list[float]]:
    return {"logspace": [float(lo), float(hi), int(n)]}


def adam(grid: tuple[float, float, int], beta1: float = 0.9, beta2: float = 0.999, label: str = "Adam") -> dict[str, Any]:
    return {"name": "Adam", "label": label, "hyperparameters": {"lr": lr_grid(*grid), "betas": [[float(beta1), float(beta2)]]}}


def gn(label: str, grid: tuple[float, float, int], *, damping: float = 0.0, beta2: float = 0.0, momentum: float = 0.0,
       update_every: int = 1) -> dict[str, Any]:  # fmt: skip
    """``GaussNewtonDiag`` as ``label`` ("GN^-1" or "GN^-1/2") on a learning-rate grid."""
    hp: dict[str, Any] = {"lr": lr_grid(*grid), "power": GN_POWERS[label], "damping": float(damping), "beta2": float(beta2),
                          "momentum": float(momentum), "estimator": "ggn"}  # fmt: skip
    if update_every != 1:
        hp["update_every"] = int(update_every)
    return {"name": "GaussNewtonDiag", "label": label, "hyperparameters": hp}


def gd(grid: tuple[float, float, int]) -> dict[str, Any]:
    return {"name": "SGD", "label": "GD", "hyperparameters": {"lr": lr_grid(*grid)}}


def steps_summary(inputs: Any, tag: str) -> dict[str, dict[str, Any]]:
    """Per label of experiment ``tag``: the tuned lr, its steps to the target per seed, the mean
    steps at every lr, and the grid-edge notes (:func:`precond.claims.measure.tuned_steps`)."""
    return {lab: {"lr": r["lr"], "steps": r["values"], "edge": r["edge"], "by_lr": {str(k): v for k, v in r["by_lr"].items()}}
            for lab, r in tuned_steps(inputs, tag).items()}  # fmt: skip


def ratio_ci(num: list[float], den: list[float]) -> tuple[float, float, float]:
    """The geometric mean of ``num_s / den_s`` over seeds (paired) with its log-t 95% interval."""
    return geo_ci([a / b if b > 0 else math.inf for a, b in zip(num, den)])


def best_of(summary: Mapping[str, Mapping[str, Any]], labels: tuple[str, ...]) -> str:
    """The label among ``labels`` with the fewest mean steps (ties: the first)."""
    return min(labels, key=lambda lab: sum(summary[lab]["steps"]) / len(summary[lab]["steps"]))
