"""SGD class (math in :func:`precond.optim.functional.sgd`)."""

from __future__ import annotations

from typing import Any, Iterable

import torch

from . import _checks
from ._base import PrecondOptimizer, group_lr
from .functional import sgd as sgd_fn

MOMENTUM_STYLES = ("heavy_ball", "ema")


class SGD(PrecondOptimizer):
    """Gradient descent with momentum in both forms of the lecture notes.

    ``momentum_style="heavy_ball"`` (default) is ``torch.optim.SGD``'s
    ``v = momentum*v + (1-dampening)*g``; ``"ema"`` is the notes'
    ``v = momentum*v + (1-momentum)*g`` from ``v = 0``. ``nesterov`` looks ahead in either
    form; ``decoupled_weight_decay=True`` applies ``p *= 1 - lr*wd`` instead of L2.
    """

    state_names = ("momentum_buffer",)
    batchable = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        momentum_style: str = "heavy_ball",
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        nan_policy: str = "raise",
    ) -> None:
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, momentum_style=momentum_style,
            decoupled_weight_decay=decoupled_weight_decay,
        )  # fmt: skip
        super().__init__(params, defaults, maximize=maximize, foreach=foreach, fused=fused, nan_policy=nan_policy)

    def _validate_group(self, group: dict[str, Any]) -> None:
        _checks.check_lr(group["lr"])
        _checks.check_range("momentum", group["momentum"], 0.0, 1.0, high_inclusive=False)
        _checks.check_range("dampening", group["dampening"], 0.0, 1.0)
        _checks.check_range("weight_decay", group["weight_decay"], 0.0)
        _checks.check_choice("momentum_style", group["momentum_style"], MOMENTUM_STYLES)
        if group["nesterov"] and (group["momentum"] <= 0 or (group["momentum_style"] == "heavy_ball" and group["dampening"] != 0)):
            raise ValueError("invalid nesterov=True: needs momentum > 0 (and dampening = 0 with heavy-ball momentum)")

    def _state_enabled(self, group: dict[str, Any], name: str) -> bool:
        return group["momentum"] != 0.0

    def _group_step(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor], impl: str) -> None:
        params, grads, st = self._rule_inputs(group, params, grads)
        sgd_fn(
            params, grads, st.get("momentum_buffer", []), st["step"], lr=group_lr(group),
            momentum=group["momentum"], dampening=group["dampening"], nesterov=group["nesterov"],
            momentum_style=group["momentum_style"], weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"], maximize=group["maximize"], impl=impl,
        )  # fmt: skip
