"""An optimizer entry of a spec: its class, its hyperparameters' grids, checked by the class itself.

The spec does not restate what an optimizer accepts. It checks what only it can judge: the
class exists, each key is one of its constructor's arguments (closest names suggested), each
value has the argument's natural TOML type (``amsgrad = 1`` is not a boolean: judged by the
constructor's default), and each grid is well formed. Whether a *setting* is valid is the
optimizer's to say: every combination of the grids goes to ``cls.validate_options(**hp)``
(precond's optimizers) or to ``cls([dummy tensor], **hp)`` (``torch.X`` and other classes),
and a refusal comes back located in the spec with the optimizer's own message::

    optimizers[1].hyperparameters.lr: -0.1 is refused by SGD: invalid lr=-0.1: must lie in [0.0, inf)

The key named is the one whose value, put back to its default, makes the setting valid;
when no single key is (a conflict between two values), the whole setting is named.
"""

from __future__ import annotations

import math
from typing import Any

from .grid import combinations, expand_values
from .spec_schema import OptimizerSpec, SpecError


def refusal(cls: type, hyperparameters: dict[str, Any]) -> str | None:
    """None when optimizer class ``cls`` accepts ``hyperparameters``, else its message."""
    try:
        validate = getattr(cls, "validate_options", None)
        if validate is not None:
            validate(**hyperparameters)
        else:
            import torch

            cls([torch.zeros(1, requires_grad=True)], **hyperparameters)
        if getattr(cls, "needs_curvature", False) and "estimator" in hyperparameters:
            # the optimizer keeps the curvature it asks for as a name; the curvature layer knows the names
            from precond.curvature import canonical_estimator

            canonical_estimator(hyperparameters["estimator"])
    except (ValueError, TypeError) as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - e.g. torch.optim.Adam indexing a one-element betas
        return f"{type(exc).__name__}: {exc}"
    return None


def _finite(value: Any) -> bool:
    """No inf or nan in ``value`` (a number or a tuple of them): runs are stored and keyed as JSON,
    which has neither; a sweep's rule, whatever the optimizer accepts."""
    if isinstance(value, tuple):
        return all(_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def _shown(value: Any) -> Any:
    """A value as the spec wrote it (TOML arrays are tuples once expanded)."""
    return list(value) if isinstance(value, tuple) else value


def _refusal_line(where: str, name: str, cls: type, hp: dict[str, Any], message: str) -> str:
    """The spec line for a setting ``hp`` that optimizer ``name`` refuses: at the one key to blame, or
    at the whole setting."""
    blamed = [k for k in hp if refusal(cls, {n: v for n, v in hp.items() if n != k}) is None]
    if len(blamed) == 1:
        k = blamed[0]
        return f"{where}.{k}: {_shown(hp[k])!r} is refused by {name}: {message}"
    return f"{where}: {name} refuses {({k: _shown(v) for k, v in hp.items()})}: {message}"


def optimizer_grid(i: int, o: OptimizerSpec, errors: list[str]) -> dict[str, list[Any]]:
    """The grids (name -> values) of ``optimizers[i]``; every problem found is appended to ``errors``."""
    from precond.optim import get_optimizer
    from precond.problems.registry import check_arguments

    try:
        cls = get_optimizer(o.name)
    except KeyError as exc:
        errors.append(f"optimizers[{i}].name: {exc.args[0]}")
        return {}
    where = f"optimizers[{i}].hyperparameters"
    mine: list[str] = []
    grid: dict[str, list[Any]] = {}
    for name, value in o.hyperparameters.items():
        key = f"{where}.{name}"
        unknown = check_arguments(cls, {name: None}, types=False, noun=f"a hyperparameter of {cls.__name__}")
        if unknown:
            mine.append(f"{key}: {unknown[0][1]}")
            continue
        try:
            values = expand_values(key, value)
        except SpecError as exc:
            mine.append(str(exc))
            continue
        bad = [f"{key}: {m}" for v in values for _, m in check_arguments(cls, {name: v})]
        bad += [f"{key}: {_shown(v)!r} is not finite" for v in values if not _finite(v)]
        mine.extend(bad)
        if not bad:
            grid[name] = values
    if not mine:
        for hp in combinations(grid):
            message = refusal(cls, hp)
            if message is not None:
                line = _refusal_line(where, o.name, cls, hp, message)
                if line not in mine:
                    mine.append(line)
    errors.extend(mine)
    return grid
