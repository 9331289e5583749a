"""Grids: a hyperparameter's values from its spec entry, and a spec's list of runs.

A spec entry is a value (fixed), a list (the grid as is; inner lists become tuples, e.g.
``betas``), or ``{logspace = [lo, hi, n]}`` / ``{linspace = [lo, hi, n]}``: ``n`` points
``lo * (hi / lo) ** (i / (n - 1))`` or ``lo + (hi - lo) * i / (n - 1)``, ``i = 0..n-1``, each
rounded to 12 significant digits (so ``1e-3`` is ``0.001``, not ``0.0010000000000000002``, and
run keys do not depend on the last bit of ``pow``).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from .run_config import RunConfig
from .spec_schema import ExperimentSpec, SpecError


def expand_values(key: str, value: Any) -> list[Any]:
    """The grid of one hyperparameter: a list as is, ``{logspace|linspace = [a, b, n]}``, or a scalar."""
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ("logspace", "linspace"):
            raise SpecError(f"{key}: {value!r} is not a grid; allowed: a value, a list, {{logspace = [lo, hi, n]}} or {{linspace = [lo, hi, n]}}")
        kind, args = next(iter(value.items()))
        if not (isinstance(args, list) and len(args) == 3 and all(isinstance(a, (int, float)) for a in args)
                and float(args[2]).is_integer() and args[2] >= 1):  # fmt: skip
            raise SpecError(f"{key}.{kind}: {args!r} is not [lo, hi, n] with n a positive integer")
        lo, hi, n = float(args[0]), float(args[1]), int(args[2])
        if kind == "logspace" and (lo <= 0 or hi <= 0):
            raise SpecError(f"{key}.logspace: {args!r} has a bound <= 0; log-spaced grids need lo > 0 and hi > 0")
        if n == 1:
            return [lo]
        if kind == "logspace":
            a, b = math.log10(lo), math.log10(hi)
            return [float(f"{10 ** (a + (b - a) * i / (n - 1)):.12g}") for i in range(n)]
        return [float(f"{lo + (hi - lo) * i / (n - 1):.12g}") for i in range(n)]
    if isinstance(value, list):
        if not value:
            raise SpecError(f"{key}: [] is an empty grid; give at least one value")
        return [tuple(v) if isinstance(v, list) else v for v in value]
    return [value]


def combinations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every setting of ``grid`` (name -> values), names sorted: the cartesian product."""
    names = sorted(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def expand_runs(spec: ExperimentSpec, grids: list[dict[str, list[Any]]], steps: int) -> list[RunConfig]:
    """The runs of ``spec``: per optimizer (with its grid), every setting times every seed."""
    out = []
    for o, grid in zip(spec.optimizers, grids):
        for hp in combinations(grid):
            for seed in spec.seeds:
                out.append(RunConfig(
                    experiment=spec.name, problem=spec.problem.name, problem_args=dict(spec.problem.args),
                    optimizer=o.name, label=o.label or o.name, hyperparameters=hp, seed=seed,
                    steps=steps, eval_every=spec.budget.eval_every or max(1, steps // 10),
                    divergence_bound=spec.budget.divergence_bound, diagnostics=tuple(spec.diagnostics),
                    metrics=tuple(spec.metrics), trajectory=spec.trajectory, dtype=spec.dtype,
                    lr_schedule=o.lr_schedule, target=spec.budget.target,
                ))  # fmt: skip
    return out
