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

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .diagnostics import check_diagnostic
from .grid import expand_runs, expand_values
from .hyperparameters import optimizer_grid
from .run_config import RunConfig, canonical_json, short_hash
from .spec_schema import ExperimentSpec, SpecError, validate_schema

if TYPE_CHECKING:
    from precond.problems import ProblemHandle

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
    problem: ProblemHandle  # the spec's problem, resolved once (with the spec's dtype)

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
        spe = problem.steps_per_epoch
        if not spe:
            errors.append(f"budget.epochs: {spec.budget.epochs} needs a problem with steps_per_epoch, which {spec.problem.name!r} lacks; give budget.steps instead")
        else:
            steps = max(1, int(round(spec.budget.epochs * spe)))
    errors += [f"diagnostics[{j}]: {d!r} {msg}" for j, d in enumerate(spec.diagnostics) if (msg := check_diagnostic(d))]
    from .vectorized import can_batch

    if spec.vectorize == "always" and problem is not None and not (can_batch(problem) and not spec.diagnostics):
        errors.append(f"vectorize: 'always' but runs of problem {spec.problem.name!r} cannot be batched (or diagnostics are on); allowed here: 'auto', 'never'")
    if errors:
        raise SpecError(f"{source}: invalid spec:\n  " + "\n  ".join(errors))
    assert problem is not None  # no errors: resolved
    return Experiment(spec=spec, source=text, grids=grids, steps=steps, problem=problem)


def load_spec(path: str | Path) -> Experiment:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    return parse_spec(path.read_text(), str(path))


def _problem(spec: ExperimentSpec, errors: list[str]) -> ProblemHandle | None:
    """The spec's problem resolved once (None, with the reasons in ``errors``, if it cannot be)."""
    from precond.problems import ProblemArgumentError, ProblemNameError, resolve

    name, args = spec.problem.name, spec.problem.args
    try:
        return resolve(name, args, spec.dtype)
    except ProblemNameError as exc:
        errors.append(f"problem.name: {exc}")
    except ProblemArgumentError as exc:
        errors.extend(f"problem.args.{n}: {m}" for n, m in exc.errors)
    except Exception as exc:  # noqa: BLE001 - reported as a spec error
        errors.append(f"problem.name: {name!r} with args {args} cannot be made: {exc}")
    return None
