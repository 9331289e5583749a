"""The spec's schema: pydantic models of its TOML tables, and their errors as one line per problem.

Types are strict (``ConfigDict(strict=True)``): a value must have its key's natural TOML type,
so ``steps = "100"``, ``steps = true`` and ``steps = 10.0`` are refused rather than converted.
Unknown keys are refused with the keys allowed where they stand.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class SpecError(ValueError):
    """A spec is malformed; the message lists every problem, one per line."""


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
    target: float | None = Field(default=None, description="record steps_to_target: steps until the training loss is <= target")

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
    lr_schedule: Literal["constant", "inverse_sqrt"] = Field(
        default="constant", description="constant: lr every step; inverse_sqrt: lr / sqrt(t) at step t (Reddi et al.'s alpha_t)")


class TuningSpec(_Strict):
    """What the tuning protocol selects on and reports, when not the problem's ``val_metric`` and
    ``test_metric`` (e.g. ``metric = "steps_to_target"``). It reads the runs: not part of their keys."""

    metric: str = Field(min_length=1, description="the final metric the protocol selects on")
    report: str | None = Field(default=None, description="the final metric it reports (default: metric)")
    higher_is_better: bool = False
    report_higher_is_better: bool | None = Field(
        default=None, description="the direction of `report` (default: that of `metric` when they are the same "
        "metric, else read from its name: accuracies higher, everything else lower)")


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
    trajectory: bool = Field(default=True, description="record the iterate of 1-D and 2-D problems every step")
    dtype: Literal["float32", "float64"] = "float64"
    tuning: TuningSpec | None = None

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"{v} has repeated seeds; each seed must appear once")
        return v


def validate_schema(raw: dict[str, Any], source: str) -> ExperimentSpec:
    """``raw`` (parsed TOML) as an :class:`ExperimentSpec`; :class:`SpecError` with one line per problem."""
    try:
        return ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{source}: invalid spec:\n  " + "\n  ".join(_format_pydantic(exc))) from None


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


#: pydantic's strict type errors -> the kind of TOML value the key needs
_EXPECTED = {"int_type": "an integer", "float_type": "a number", "bool_type": "a boolean (true or false)",
             "string_type": "a string", "list_type": "an array", "dict_type": "a table", "model_type": "a table"}  # fmt: skip
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
#: the model of the table an unknown key stands in, by the table's location without indices
_TABLES: dict[str, type[BaseModel]] = {"": ExperimentSpec, "problem": ProblemSpec, "budget": BudgetSpec, "optimizers": OptimizerSpec,
                                  "tuning": TuningSpec}


def _format_pydantic(exc: ValidationError) -> list[str]:
    from precond.problems.registry import value_kind

    lines = []
    for err in exc.errors():
        parts = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc, value = _loc(parts), err.get("input")
        if err["type"] == "missing":
            lines.append(f"{loc}: missing; this key is required")
        elif err["type"] == "extra_forbidden":
            table = _TABLES.get(".".join(p for p in parts[:-1] if isinstance(p, str)))
            allowed = f"; allowed: {', '.join(table.model_fields)}" if table is not None else ""
            lines.append(f"{loc}: unknown key (value {value!r}){allowed}")
        elif err["type"] in _BOUNDS:
            bound = next(iter(err.get("ctx", {}).values()), "?")
            lines.append(f"{loc}: {value!r} is not {_BOUNDS[err['type']]} {bound}")
        elif err["type"] in _EXPECTED:
            lines.append(f"{loc}: {value!r} ({value_kind(value)}) is not {_EXPECTED[err['type']]}")
        else:
            lines.append(f"{loc}: {value!r} is invalid: {err['msg'].removeprefix('Value error, ')}")
    return lines
