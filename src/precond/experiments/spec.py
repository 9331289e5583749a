"""Experiment specs: a TOML file, validated, expanded into runs.

A spec names one problem, the optimizers to compare with their hyperparameter grids,
the seeds, the budget, the evaluation cadence, extra metrics and diagnostics::

    name = "rosenbrock-2d"
    seeds = [0, 1, 2, 3, 4]

    [problem]
    name = "rosenbrock"          # precond.problems.get(name, **args), or "module:Class"
    args = {}

    [budget]
    steps = 500                  # or epochs = 3 (problems with steps_per_epoch)
    eval_every = 50
    divergence_bound = 1e8       # a loss above this counts as diverged

    [[optimizers]]
    name = "AGD"                 # precond.optim.get_optimizer(name)
    [optimizers.hyperparameters]
    lr = {logspace = [1e-4, 1e-1, 7]}
    betas = [[0.9, 0.999]]       # a list is a grid; a scalar is fixed

Every validation error names the key, the bad value and what is allowed (or, for a
hyperparameter setting, the optimizer's own message), e.g.
``optimizers[1].hyperparameters.lr: -0.1 is refused by SGD: invalid lr=-0.1: must lie in [0.0, inf)``.
Types are strict (:mod:`.spec_schema`); a misspelled problem, problem argument or
hyperparameter is answered with the closest names.

The pieces: :mod:`.spec_schema` (the tables' models, their errors), :mod:`.grid` (grids, the
run list), :mod:`.hyperparameters` (an optimizer's grids, checked by the optimizer),
:mod:`.run_config` (a run, its key), :mod:`.diagnostics` (diagnostic names). This module
validates a whole spec with them.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .diagnostics import check_diagnostic
from .grid import expand_runs, expand_values
from .hyperparameters import optimizer_grid
from .run_config import RunConfig, canonical_json, short_hash
from .spec_schema import ExperimentSpec, SpecError, validate_schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Experiment", "ExperimentSpec", "RunConfig", "SpecError", "canonical_json", "expand_values", "load_spec",
           "parse_spec"]  # fmt: skip


@dataclass
class Experiment:
    """A validated spec and what it expands to."""

    spec: ExperimentSpec
    source: str
    grids: list[dict[str, list[Any]]]  # per optimizer: name -> grid
    steps: int

    @property
    def name(self) -> str:
        return self.spec.name

    def labels(self) -> list[str]:
        return [o.label or o.name for o in self.spec.optimizers]

    @property
    def spec_hash(self) -> str:
        """The spec's identity: a hash of the sorted keys of its runs, so of everything that changes a
        record (budget, grids, seeds, diagnostics, metrics, labels, problem, dtype) and of nothing else
        (description, comments, the order of grids, seeds or optimizers, ``vectorize``)."""
        return short_hash(sorted(c.key for c in self.runs()), 16)

    def runs(self) -> list[RunConfig]:
        return expand_runs(self.spec, self.grids, self.steps)


def parse_spec(text: str, source: str = "<string>") -> Experiment:
    """Validate a spec's TOML text and expand its grids. Raises :class:`SpecError`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    spec = validate_schema(raw, source)
    errors: list[str] = []
    grids: list[dict[str, list[Any]]] = []
    labels = [o.label or o.name for o in spec.optimizers]
    for i, o in enumerate(spec.optimizers):
        if labels.index(labels[i]) == i and labels.count(labels[i]) > 1:
            errors.append(f"optimizers[{i}].label: {labels[i]!r} is used by more than one optimizer; give each a distinct label")
        grids.append(optimizer_grid(i, o, errors))
    problem = _problem(spec, errors)
    steps = spec.budget.steps or 0
    if spec.budget.epochs is not None and problem is not None:
        spe = getattr(problem, "steps_per_epoch", None)
        if not spe:
            errors.append(f"budget.epochs: {spec.budget.epochs} needs a problem with steps_per_epoch, which {spec.problem.name!r} lacks; give budget.steps instead")
        else:
            steps = max(1, int(round(spec.budget.epochs * spe)))
    errors += [f"diagnostics[{j}]: {d!r} {msg}" for j, d in enumerate(spec.diagnostics) if (msg := check_diagnostic(d))]
    if spec.vectorize == "always" and problem is not None and not vectorizable(problem, spec):
        errors.append(f"vectorize: 'always' but problem {spec.problem.name!r} is not vectorizable (or diagnostics are on); allowed here: 'auto', 'never'")
    if errors:
        raise SpecError(f"{source}: invalid spec:\n  " + "\n  ".join(errors))
    return Experiment(spec=spec, source=text, grids=grids, steps=steps)


def load_spec(path: str | Path) -> Experiment:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    return parse_spec(path.read_text(), str(path))


def _problem(spec: ExperimentSpec, errors: list[str]) -> Any:
    """The spec's problem, made once to check it (None, with the reasons in ``errors``, if it cannot be)."""
    from precond.problems.registry import check_arguments

    try:
        factory = problem_factory(spec.problem.name)
    except (KeyError, ImportError, AttributeError, ValueError) as exc:
        errors.append(f"problem.name: {exc.args[0] if isinstance(exc, KeyError) else exc}")
        return None
    bad = check_arguments(factory, spec.problem.args)
    errors.extend(f"problem.args.{n}: {m}" for n, m in bad)
    if bad:
        return None
    try:
        return resolve_problem(spec.problem.name, spec.problem.args)
    except Exception as exc:  # noqa: BLE001 - reported as a spec error
        errors.append(f"problem.name: {spec.problem.name!r} with args {spec.problem.args} cannot be made: {exc}")
        return None


# ---- problems (until precond.problems.resolve) ---------------------------------------------------
def resolve_problem(name: str, args: dict[str, Any], dtype: str | None = None):
    """``precond.problems.get(name, **args)``, or ``module:Class`` for a problem defined elsewhere.

    ``dtype`` (the spec's) is passed on to problems whose constructor takes a ``dtype`` and
    that were not given one in ``args``; other problems keep their own (data) dtype.
    """
    factory = problem_factory(name)
    if dtype is not None and "dtype" not in args:
        try:
            if "dtype" in inspect.signature(factory).parameters:
                args = {**args, "dtype": dtype}
        except (TypeError, ValueError):
            pass
    return factory(**args)


def problem_factory(name: str):
    """The class (factory) of problem ``name``: a registered name, or ``module:Class``.
    ``KeyError`` (with the closest registered names), ``ImportError`` or ``AttributeError`` if none."""
    import importlib

    if ":" in name:
        mod, _, attr = name.partition(":")
        module = importlib.import_module(mod)
        if not hasattr(module, attr):
            raise AttributeError(f"{name!r}: module {mod!r} has no attribute {attr!r}")
        return getattr(module, attr)
    from precond.problems import registry

    return registry.lookup(name)


def vectorizable(problem: Any, spec: ExperimentSpec | None = None) -> bool:
    """Whether runs of ``problem`` can be batched: ``vectorizable``, no ``after_step``, no diagnostics."""
    from precond.problems.base import Problem

    if not getattr(problem, "vectorizable", False):
        return False
    if isinstance(problem, Problem) and type(problem).after_step is not Problem.after_step:
        return False
    return not (spec is not None and spec.diagnostics)
