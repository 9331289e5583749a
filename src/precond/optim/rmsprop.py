"""RMSProp class (math in :func:`precond.optim.functional.rmsprop`)."""

from __future__ import annotations

from typing import Any, Iterable

import torch

from . import _checks
from ._base import PrecondOptimizer, group_lr
from .functional import rmsprop as rmsprop_fn


class RMSProp(PrecondOptimizer):
    """RMSProp as ``torch.optim.RMSprop`` (``alpha`` is the notes' rho; ``centered``,
    ``momentum``), plus the notes' ``sqrt(s + eps)`` with ``eps_inside_sqrt=True``. ``eps``
    must be > 0 (at 0 a zero gradient gives 0/0); complex parameters as torch's."""

    state_names = ("square_avg", "grad_avg", "momentum_buffer")
    batchable = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        eps_inside_sqrt: bool = False,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        nan_policy: str = "raise",
    ) -> None:
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
            centered=centered, eps_inside_sqrt=eps_inside_sqrt,
        )  # fmt: skip
        super().__init__(params, defaults, maximize=maximize, foreach=foreach, fused=fused, nan_policy=nan_policy)

    def _validate_group(self, group: dict[str, Any]) -> None:
        _checks.check_lr(group["lr"])
        _checks.check_range("alpha", group["alpha"], 0.0, 1.0, high_inclusive=False)
        _checks.check_eps("eps", group["eps"])
        _checks.check_range("weight_decay", group["weight_decay"], 0.0)
        _checks.check_range("momentum", group["momentum"], 0.0, 1.0, high_inclusive=False)

    def _state_enabled(self, group: dict[str, Any], name: str) -> bool:
        if name == "grad_avg":
            return bool(group["centered"])
        if name == "momentum_buffer":
            return group["momentum"] > 0
        return True

    def _group_step(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor], impl: str) -> None:
        params, grads, st = self._rule_inputs(group, params, grads)
        rmsprop_fn(
            params, grads, st["square_avg"], st.get("grad_avg", []), st.get("momentum_buffer", []),
            st["step"], lr=group_lr(group), alpha=group["alpha"], eps=group["eps"],
            weight_decay=group["weight_decay"], momentum=group["momentum"], centered=group["centered"],
            eps_inside_sqrt=group["eps_inside_sqrt"], maximize=group["maximize"], impl=impl,
        )  # fmt: skip
