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

Every validation error names the key, the bad value and what is allowed, e.g.
``optimizers[1].hyperparameters.lr: -0.1 is not > 0``. Types are strict: a value must have
its key's natural TOML type (``steps = "100"`` and ``steps = true`` are refused, as is
``amsgrad = 1`` for a boolean hyperparameter, judged by the optimizer's default); a
misspelled problem, problem argument or hyperparameter is answered with the closest names.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class SpecError(ValueError):
    """A spec is malformed; the message lists every problem, one per line."""


# ---- the schema ------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # strict: no "100" -> 100, no true -> 1


class ProblemSpec(_Strict):
    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class BudgetSpec(_Strict):
    steps: int | None = Field(default=None, gt=0)
    epochs: float | None = Field(default=None, gt=0)
    eval_every: int = Field(default=0, ge=0, description="0: evaluate 10 times over the run")
    divergence_bound: float = Field(default=1e10, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> "BudgetSpec":
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(
                f"give exactly one of budget.steps or budget.epochs (got steps={self.steps}, epochs={self.epochs})"
            )
        return self


class OptimizerSpec(_Strict):
    name: str = Field(min_length=1)
    label: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)


class ExperimentSpec(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    problem: ProblemSpec
    optimizers: list[OptimizerSpec] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1)
    budget: BudgetSpec
    metrics: list[str] = Field(default_factory=list)
    diagnostics: list[str] = Field(default_factory=list)
    vectorize: Literal["auto", "never", "always"] = "auto"
    trajectory: bool = Field(default=True, description="record the iterate of 2-D problems every step")
    dtype: Literal["float32", "float64"] = "float64"

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"{v} has repeated seeds; each seed must appear once")
        return v


# ---- grids -------------------------------------------------------------------------------------
def expand_values(key: str, value: Any) -> list[Any]:
    """The grid of one hyperparameter: a list as is, ``{logspace|linspace = [a, b, n]}``, or a scalar."""
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ("logspace", "linspace"):
            raise SpecError(f"{key}: {value!r} is not a grid; allowed: a value, a list, {{logspace = [lo, hi, n]}} or {{linspace = [lo, hi, n]}}")
        kind, args = next(iter(value.items()))
        if not (isinstance(args, list) and len(args) == 3 and all(isinstance(a, (int, float)) for a in args)
                and float(args[2]).is_integer() and args[2] >= 1):
            raise SpecError(f"{key}.{kind}: {args!r} is not [lo, hi, n] with n a positive integer")
        lo, hi, n = float(args[0]), float(args[1]), int(args[2])
        if kind == "logspace":
            if lo <= 0 or hi <= 0:
                raise SpecError(f"{key}.logspace: {args!r} has a bound <= 0; log-spaced grids need lo > 0 and hi > 0")
            if n == 1:
                return [lo]
            a, b = math.log10(lo), math.log10(hi)
            return [float(f"{10 ** (a + (b - a) * i / (n - 1)):.12g}") for i in range(n)]
        if n == 1:
            return [lo]
        return [float(f"{lo + (hi - lo) * i / (n - 1):.12g}") for i in range(n)]
    if isinstance(value, list):
        if not value:
            raise SpecError(f"{key}: [] is an empty grid; give at least one value")
        return [tuple(v) if isinstance(v, list) else v for v in value]
    return [value]


#: hyperparameters that must be > 0 when present, and >= 0
_POSITIVE = ("lr", "eps", "delta", "final_lr", "gamma")
_NONNEGATIVE = ("weight_decay", "momentum", "dampening", "lr_decay")


def _check_value(key: str, name: str, value: Any) -> str | None:
    if name in _POSITIVE + _NONNEGATIVE and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return f"{key}: {value!r} is not a number"
    if name in _POSITIVE and not value > 0:
        return f"{key}: {value!r} is not > 0"
    if name in _NONNEGATIVE and not value >= 0:
        return f"{key}: {value!r} is not >= 0"
    if name == "betas":
        if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in value)):
            return f"{key}: {list(value) if isinstance(value, tuple) else value!r} is not a pair [beta1, beta2] with 0 <= beta < 1"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{key}: {value!r} is not finite"
    return None


# ---- runs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunConfig:
    """One run: everything that determines its result (and so its key)."""

    experiment: str
    problem: str
    problem_args: dict[str, Any]
    optimizer: str
    label: str
    hyperparameters: dict[str, Any]
    seed: int
    steps: int
    eval_every: int
    divergence_bound: float
    diagnostics: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    trajectory: bool = True
    dtype: str = "float64"
    extra: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """What the key hashes: everything that changes the run's record (experiment, problem config,
        optimizer and its label, hyperparameters, seed, budget, dtype, diagnostics, metrics, trajectory)."""
        return {
            "experiment": self.experiment,
            "problem": {"name": self.problem, "args": self.problem_args},
            "optimizer": self.optimizer,
            "label": self.label,
            "hyperparameters": self.hyperparameters,
            "seed": self.seed,
            "budget": {"steps": self.steps, "eval_every": self.eval_every, "divergence_bound": self.divergence_bound},
            "dtype": self.dtype,
            "diagnostics": list(self.diagnostics),
            "metrics": list(self.metrics),
            "trajectory": self.trajectory,
        }

    @property
    def key(self) -> str:
        return hashlib.sha256(canonical_json(self.identity()).encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["diagnostics"], d["metrics"] = list(self.diagnostics), list(self.metrics)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        d = dict(d)
        d["diagnostics"], d["metrics"] = tuple(d.get("diagnostics", ())), tuple(d.get("metrics", ()))
        d["hyperparameters"] = {k: tuple(v) if isinstance(v, list) else v for k, v in d["hyperparameters"].items()}
        return cls(**d)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(o: Any) -> Any:
    if isinstance(o, tuple):
        return list(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON-serializable: {o!r}")


def hp_id(hyperparameters: dict[str, Any]) -> str:
    """A canonical string for one hyperparameter setting (for grouping seeds)."""
    return canonical_json(hyperparameters)


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
        return hashlib.sha256(canonical_json(sorted(c.key for c in self.runs())).encode()).hexdigest()[:16]

    def runs(self) -> list[RunConfig]:
        s = self.spec
        out = []
        for o, grid in zip(s.optimizers, self.grids):
            names = sorted(grid)
            for combo in itertools.product(*(grid[n] for n in names)):
                hp = dict(zip(names, combo))
                for seed in s.seeds:
                    out.append(RunConfig(
                        experiment=s.name, problem=s.problem.name, problem_args=dict(s.problem.args),
                        optimizer=o.name, label=o.label or o.name, hyperparameters=hp, seed=seed,
                        steps=self.steps, eval_every=s.budget.eval_every or max(1, self.steps // 10),
                        divergence_bound=s.budget.divergence_bound, diagnostics=tuple(s.diagnostics),
                        metrics=tuple(s.metrics), trajectory=s.trajectory, dtype=s.dtype,
                    ))  # fmt: skip
        return out


# ---- loading -----------------------------------------------------------------------------------
def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


#: pydantic's strict type errors -> the kind of TOML value the key needs
_EXPECTED = {"int_type": "an integer", "float_type": "a number", "bool_type": "a boolean (true or false)",
             "string_type": "a string", "list_type": "an array", "dict_type": "a table", "model_type": "a table"}  # fmt: skip


def _format_pydantic(exc: ValidationError) -> list[str]:
    from precond.problems.registry import value_kind

    lines = []
    for err in exc.errors():
        loc = _loc(tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            lines.append(f"{loc}: missing; this key is required")
        elif err["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key (value {err.get('input')!r})")
        elif err["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[err["type"]]
            bound = next(iter(err.get("ctx", {}).values()), "?")
            lines.append(f"{loc}: {err.get('input')!r} is not {op} {bound}")
        elif err["type"] in _EXPECTED:
            lines.append(f"{loc}: {err.get('input')!r} ({value_kind(err.get('input'))}) is not {_EXPECTED[err['type']]}")
        else:
            lines.append(f"{loc}: {err.get('input')!r} is invalid: {msg}")
    return lines


def _allowed_keys(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


def _with_allowed(lines: list[str]) -> list[str]:
    """Add the allowed keys to 'unknown key' messages."""
    where = {"": ExperimentSpec, "problem": ProblemSpec, "budget": BudgetSpec, "optimizers": OptimizerSpec}
    out = []
    for line in lines:
        if "unknown key" in line:
            loc = line.split(":", 1)[0]
            parent = loc.rsplit(".", 1)[0] if "." in loc else ""
            parent = parent.split("[", 1)[0]
            model = where.get(parent)
            if model is not None:
                line += f"; allowed: {_allowed_keys(model)}"
        out.append(line)
    return out


def parse_spec(text: str, source: str = "<string>") -> Experiment:
    """Validate a spec's TOML text and expand its grids. Raises :class:`SpecError`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{source}: invalid spec:\n  " + "\n  ".join(_with_allowed(_format_pydantic(exc)))) from None
    errors: list[str] = []
    grids: list[dict[str, list[Any]]] = []
    labels = [o.label or o.name for o in spec.optimizers]
    for i, o in enumerate(spec.optimizers):
        if labels.count(labels[i]) > 1 and labels.index(labels[i]) == i:
            errors.append(f"optimizers[{i}].label: {labels[i]!r} is used by more than one optimizer; give each a distinct label")
        grids.append(_check_optimizer(i, o, errors))
    problem = None
    try:
        factory = problem_factory(spec.problem.name)
    except (KeyError, ImportError, AttributeError, ValueError) as exc:
        errors.append(f"problem.name: {exc.args[0] if isinstance(exc, KeyError) else exc}")
    else:
        from precond.problems.registry import check_arguments

        bad = check_arguments(factory, spec.problem.args)
        errors.extend(f"problem.args.{n}: {m}" for n, m in bad)
        try:
            problem = None if bad else resolve_problem(spec.problem.name, spec.problem.args)
        except Exception as exc:  # noqa: BLE001 - reported as a spec error
            errors.append(f"problem.name: {spec.problem.name!r} with args {spec.problem.args} cannot be made: {exc}")
    steps = spec.budget.steps or 0
    if spec.budget.epochs is not None and problem is not None:
        spe = getattr(problem, "steps_per_epoch", None)
        if not spe:
            errors.append(f"budget.epochs: {spec.budget.epochs} needs a problem with steps_per_epoch, which {spec.problem.name!r} lacks; give budget.steps instead")
        else:
            steps = max(1, int(round(spec.budget.epochs * spe)))
    for j, d in enumerate(spec.diagnostics):
        msg = check_diagnostic(d)
        if msg:
            errors.append(f"diagnostics[{j}]: {d!r} {msg}")
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


def _check_optimizer(i: int, o: OptimizerSpec, errors: list[str]) -> dict[str, list[Any]]:
    from precond.optim import get_optimizer
    from precond.problems.registry import check_arguments

    try:
        cls = get_optimizer(o.name)
    except KeyError as exc:
        errors.append(f"optimizers[{i}].name: {exc.args[0]}")
        return {}
    grid: dict[str, list[Any]] = {}
    for name, value in o.hyperparameters.items():
        key = f"optimizers[{i}].hyperparameters.{name}"
        unknown = check_arguments(cls, {name: None}, types=False, noun=f"a hyperparameter of {cls.__name__}")
        if unknown:
            errors.append(f"{key}: {unknown[0][1]}")
            continue
        try:
            values = expand_values(key, value)
        except SpecError as exc:
            errors.append(str(exc))
            continue
        bad = [f"{key}: {m}" for v in values for _, m in check_arguments(cls, {name: v})]
        bad = bad or [m for m in (_check_value(key, name, v) for v in values) if m]
        errors.extend(bad)
        if not bad:
            grid[name] = values
    if len(errors) == 0:  # let the optimizer itself reject what our checks do not know
        import torch

        for combo in itertools.product(*grid.values()):
            hp = dict(zip(grid, combo))
            try:
                cls([torch.zeros(1, requires_grad=True)], **hp)
            except (ValueError, TypeError) as exc:
                errors.append(f"optimizers[{i}].hyperparameters: {cls.__name__} rejects {hp}: {exc}")
                break
    return grid


# ---- problems and diagnostics --------------------------------------------------------------------
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


def check_diagnostic(name: str) -> str | None:
    """None when ``name`` is a known diagnostic, else the reason (with the known names)."""
    try:
        from precond.curvature import diagnostics as dg
    except ImportError:
        return "is unknown: precond.curvature.diagnostics is not available in this installation"
    known = available_diagnostics(dg)
    if name not in known:
        return f"is not a known diagnostic; allowed: {', '.join(sorted(known)) or '(none)'}"
    return None


def available_diagnostics(module: Any) -> dict[str, Any]:
    """Diagnostic classes of ``module`` by lower-case class name (and their ``name`` attribute)."""
    base = getattr(module, "Diagnostic", None)
    reg = getattr(module, "DIAGNOSTICS", None)
    if isinstance(reg, dict):
        return dict(reg)
    out = {}
    for attr in dir(module):
        obj = getattr(module, attr)
        if isinstance(obj, type) and base is not None and issubclass(obj, base) and obj is not base:
            out[attr.lower()] = obj
            nm = getattr(obj, "name", None)
            if isinstance(nm, str) and nm:
                out[nm] = obj
    return out


def vectorizable(problem: Any, spec: ExperimentSpec | None = None) -> bool:
    """Whether runs of ``problem`` can be batched: ``vectorizable``, no ``after_step``, no diagnostics."""
    from precond.problems.base import Problem

    if not getattr(problem, "vectorizable", False):
        return False
    if isinstance(problem, Problem) and type(problem).after_step is not Problem.after_step:
        return False
    return not (spec is not None and spec.diagnostics)
