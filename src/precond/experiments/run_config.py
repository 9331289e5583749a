"""One run's configuration and its key: the identity under which the store keeps its record.

A run's key is the first 32 hex digits of ``sha256(canonical_json(identity))``; the identity
holds everything that changes the run's record and nothing else (see
:meth:`RunConfig.identity`). Keys are the store's index: changing what they hash, or how,
orphans every stored run (``tests/experiments/test_exp_spec.py`` pins a few).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from precond.problems import ProblemHandle


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces (tuples as lists, numpy/torch scalars as numbers): one
    string per value, the input of every key and hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(o: Any) -> Any:
    if isinstance(o, tuple):
        return list(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON-serializable: {o!r}")


def short_hash(obj: Any, digits: int) -> str:
    """The first ``digits`` hex digits of the sha256 of ``canonical_json(obj)``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:digits]


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
    lr_schedule: str = "constant"  # or "inverse_sqrt": lr / sqrt(t) at step t
    target: float | None = None  # budget.target: record steps_to_target

    def identity(self) -> dict[str, Any]:
        """What the key hashes: everything that changes the run's record (experiment, problem config,
        optimizer and its label, hyperparameters, seed, budget, dtype, diagnostics, metrics, trajectory,
        and the lr schedule and the budget's target when set, so that the keys of runs without them stay as they were)."""
        schedule = {} if self.lr_schedule == "constant" else {"lr_schedule": self.lr_schedule}
        target = {} if self.target is None else {"target": self.target}
        return {**schedule,
            "experiment": self.experiment,
            "problem": {"name": self.problem, "args": self.problem_args},
            "optimizer": self.optimizer,
            "label": self.label,
            "hyperparameters": self.hyperparameters,
            "seed": self.seed,
            "budget": {"steps": self.steps, "eval_every": self.eval_every, "divergence_bound": self.divergence_bound, **target},
            "dtype": self.dtype,
            "diagnostics": list(self.diagnostics),
            "metrics": list(self.metrics),
            "trajectory": self.trajectory,
        }

    @property
    def key(self) -> str:
        return short_hash(self.identity(), 32)

    def resolve_problem(self) -> ProblemHandle:
        """The run's problem (:func:`precond.problems.resolve` of its name, args and dtype), for a run
        started without the handle its sweep resolved (a direct :func:`~.runner.run_one` call)."""
        from precond.problems import resolve

        return resolve(self.problem, self.problem_args, self.dtype)

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
