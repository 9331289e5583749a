"""Validation of hyperparameters: every error names the argument, its value and the valid range."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

NAN_POLICIES = ("raise", "skip", "propagate")

#: why an epsilon that alone keeps a denominator away from 0 must be > 0
ZERO_DENOMINATOR = "at 0, a coordinate whose gradient is 0 divides 0 by 0 (NaN) on its first step"


def check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # a one-element real tensor stands for its value (torch.optim accepts a tensor lr)
        if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
            value = value.item()
        else:
            raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got nan")
    return value


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``float(value)`` or raise ``ValueError`` naming ``name`` and the allowed interval."""
    v = check_real(name, value)
    ok = True
    if low is not None:
        ok &= v >= low if low_inclusive else v > low
    if high is not None:
        ok &= v <= high if high_inclusive else v < high
    if not ok:
        lo = "-inf" if low is None else repr(low)
        hi = "inf" if high is None else repr(high)
        interval = f"{'[' if low_inclusive and low is not None else '('}{lo}, {hi}{']' if high_inclusive and high is not None else ')'}"
        raise ValueError(f"invalid {name}={value!r}: must lie in {interval}")
    return v


def check_lr(value: Any, name: str = "lr", *, positive: bool = False) -> None:
    """A number or a one-element tensor (shape ``[]``, ``[1]``, ``[1, 1]``...: what torch.optim
    accepts), ``>= 0`` (``> 0`` with ``positive``). A tensor of more elements is refused here,
    at construction, rather than inside ``step``."""
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise ValueError(
            f"invalid {name}: a tensor {name} must hold one element (shape [], [1] or [1, 1]), "
            f"got shape {list(value.shape)}"
        )
    check_range(name, value, 0.0, low_inclusive=not positive)


def check_eps(name: str, value: Any) -> None:
    """An epsilon that alone keeps a denominator away from 0: ``> 0``."""
    if check_range(name, value, 0.0) == 0.0:
        raise ValueError(f"invalid {name}={value!r}: must be > 0; {ZERO_DENOMINATOR}")


def check_beta(name: str, value: Any) -> None:
    check_range(name, value, 0.0, 1.0, high_inclusive=False)


def check_betas(betas: Any, name: str = "betas") -> tuple[Any, Any]:
    """A pair ``(beta1, beta2)``, each in ``[0, 1)``; returned as a tuple."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"invalid {name}={betas!r}: must be a pair (beta1, beta2), each in [0, 1)")
    check_beta(f"{name}[0]", betas[0])
    check_beta(f"{name}[1]", betas[1])
    return tuple(betas)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ValueError(f"invalid {name}={value!r}: must be one of {', '.join(map(repr, choices))}")


def check_nan_policy(value: Any) -> None:
    check_choice("nan_policy", value, NAN_POLICIES)


# ---- field checks of the hyperparameter records (precond.optim.functional._rule.Hyper) ---------
#: ``check(name, value) -> value to keep`` (the value itself, or its canonical form: betas as a
#: tuple); raises ``ValueError``/``TypeError`` with the messages of the functions above
FieldCheck = Callable[[str, Any], Any]


def lr(*, positive: bool = False) -> FieldCheck:
    """:func:`check_lr` (``> 0`` with ``positive``)."""

    def check(name: str, value: Any) -> Any:
        check_lr(value, name, positive=positive)
        return value

    return check


def within(low: float | None = None, high: float | None = None, **inclusive: bool) -> FieldCheck:
    """:func:`check_range` with these bounds (``low_inclusive``, ``high_inclusive``)."""

    def check(name: str, value: Any) -> Any:
        check_range(name, value, low, high, **inclusive)
        return value

    return check


def optional(inner: FieldCheck) -> FieldCheck:
    """``None`` or what ``inner`` accepts."""
    return lambda name, value: None if value is None else inner(name, value)


def one_of(*choices: Any) -> FieldCheck:
    """:func:`check_choice` among ``choices``."""

    def check(name: str, value: Any) -> Any:
        check_choice(name, value, choices)
        return value

    return check


def _eps(name: str, value: Any) -> Any:
    check_eps(name, value)
    return value


#: ``>= 0``; ``[0, 1)`` (an EMA coefficient); ``> 0`` (:func:`check_eps`); a pair of betas
NON_NEGATIVE = within(0.0)
BETA = within(0.0, 1.0, high_inclusive=False)
EPS = _eps
BETAS: FieldCheck = lambda name, value: check_betas(value, name)  # noqa: E731


def check_denominator_start(values: Any) -> None:
    """AdaGrad's and AdaGradNorm's denominator starts at ``sqrt(initial_accumulator_value)``:
    ``eps = 0`` needs ``initial_accumulator_value > 0``."""
    if values["eps"] == 0.0 and values["initial_accumulator_value"] == 0.0:
        raise ValueError(
            f"invalid eps=0 with initial_accumulator_value=0: {ZERO_DENOMINATOR}; "
            "set eps > 0 or initial_accumulator_value > 0"
        )
