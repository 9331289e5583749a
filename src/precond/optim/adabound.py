"""AdaBound / AMSBound class (math in :func:`precond.optim.functional.adabound`)."""

from __future__ import annotations

from typing import Any, Iterable

import torch

from . import _checks
from ._base import PrecondOptimizer, group_lr
from .functional import adabound as adabound_fn


class AdaBound(PrecondOptimizer):
    """AdaBound (Luo et al., ICLR 2019) as the authors' ``adabound.AdaBound``.

    Adam whose per-coordinate rate is clipped to bounds that converge to ``final_lr``
    at speed ``gamma``; ``amsbound=True`` gives AMSBound. Weight decay is L2, as in the
    original. The bounds follow the group's lr relative to ``base_lr`` (the lr it was
    created with, kept in the group), so schedulers scale them as in the original. A state
    dict of the authors' class (which keeps ``base_lr`` outside its groups) loads with this
    optimizer's ``base_lr``, as theirs takes the lr it was constructed with.
    ``eps`` may be 0 (the rate is clipped, so a zero gradient still gives a finite step).
    """

    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    batchable = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        final_lr: float = 0.1,
        gamma: float = 1e-3,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsbound: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        nan_policy: str = "raise",
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, final_lr=final_lr, gamma=gamma, eps=eps,
            weight_decay=weight_decay, amsbound=amsbound,
        )  # fmt: skip
        super().__init__(params, defaults, maximize=maximize, foreach=foreach, fused=fused, nan_policy=nan_policy)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group.setdefault("base_lr", float(group["lr"]))

    def _validate_group(self, group: dict[str, Any]) -> None:
        _checks.check_lr(group["lr"], positive=True)
        group["betas"] = _checks.check_betas(group["betas"])
        _checks.check_range("final_lr", group["final_lr"], 0.0)
        _checks.check_range("gamma", group["gamma"], 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        _checks.check_range("eps", group["eps"], 0.0)
        _checks.check_range("weight_decay", group["weight_decay"], 0.0)

    def _state_enabled(self, group: dict[str, Any], name: str) -> bool:
        return name != "max_exp_avg_sq" or bool(group["amsbound"])

    def _group_step(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor], impl: str) -> None:
        params, grads, st = self._rule_inputs(group, params, grads)
        beta1, beta2 = group["betas"]
        adabound_fn(
            params, grads, st["exp_avg"], st["exp_avg_sq"], st.get("max_exp_avg_sq", []), st["step"],
            lr=group_lr(group), base_lr=group_lr(group, "base_lr"), final_lr=group["final_lr"],
            gamma=group["gamma"], beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], amsbound=group["amsbound"],
            maximize=group["maximize"], impl=impl,
        )  # fmt: skip
