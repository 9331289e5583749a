"""AdaGrad class (math in :func:`precond.optim.functional.adagrad`)."""

from __future__ import annotations

from typing import Any, Iterable

import torch

from . import _checks
from ._base import PrecondOptimizer, group_lr
from .functional import adagrad as adagrad_fn


class AdaGrad(PrecondOptimizer):
    """AdaGrad as ``torch.optim.Adagrad`` (``lr_decay``, ``initial_accumulator_value``), plus
    the notes' ``sqrt(s + eps)`` with ``eps_inside_sqrt=True``.

    The anisotropic-smoothness paper's AdaGrad (``v_{-1} = eps * 1``, divide by
    ``sqrt(v)``) is ``AdaGrad(params, lr, initial_accumulator_value=eps, eps=0.0)``.
    Sparse gradients are refused (use ``torch.optim.Adagrad`` for those).
    """

    state_names = ("sum",)
    batchable = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        eps_inside_sqrt: bool = False,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        nan_policy: str = "raise",
    ) -> None:
        defaults = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, eps=eps, eps_inside_sqrt=eps_inside_sqrt,
        )  # fmt: skip
        super().__init__(params, defaults, maximize=maximize, foreach=foreach, fused=fused, nan_policy=nan_policy)

    def _validate_group(self, group: dict[str, Any]) -> None:
        _checks.check_lr(group["lr"])
        _checks.check_range("lr_decay", group["lr_decay"], 0.0)
        _checks.check_range("weight_decay", group["weight_decay"], 0.0)
        _checks.check_range("initial_accumulator_value", group["initial_accumulator_value"], 0.0)
        _checks.check_range("eps", group["eps"], 0.0)
        if group["eps"] == 0.0 and group["initial_accumulator_value"] == 0.0:
            raise ValueError(
                f"invalid eps=0 with initial_accumulator_value=0: {_checks.ZERO_DENOMINATOR}; "
                "set eps > 0 or initial_accumulator_value > 0"
            )

    def _init_state(self, group: dict[str, Any], p: torch.Tensor, state: dict[str, Any]) -> None:
        super()._init_state(group, p, state)
        init = group["initial_accumulator_value"]
        state["sum"].fill_(complex(init, init) if p.is_complex() else init)  # torch.optim.Adagrad's start

    def _group_step(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor], impl: str) -> None:
        params, grads, st = self._rule_inputs(group, params, grads)
        adagrad_fn(
            params, grads, st["sum"], st["step"], lr=group_lr(group), lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"], eps=group["eps"],
            eps_inside_sqrt=group["eps_inside_sqrt"], maximize=group["maximize"], impl=impl,
        )  # fmt: skip
