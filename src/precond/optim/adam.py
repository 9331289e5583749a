"""Adam, AMSGrad and AdamW classes (math in :func:`precond.optim.functional.adam`)."""

from __future__ import annotations

from typing import Any, Iterable

import torch

from . import _checks
from ._base import PrecondOptimizer, group_lr
from .functional import adam as adam_fn


class Adam(PrecondOptimizer):
    r"""Adam (Kingma & Ba 2015) with AMSGrad and AdamW as options.

    ``m_hat / (sqrt(v_hat) + eps)`` (torch's placement, default) or the lecture notes'
    ``m_hat / sqrt(v_hat + eps)`` with ``eps_inside_sqrt=True``. ``amsgrad=True`` gives
    AMSGrad (``v_hat = max(v_hat, v)``, bias-corrected as torch), and
    ``decoupled_weight_decay=True`` gives AdamW. Equations in
    :mod:`precond.optim.functional.adam`; equal to ``torch.optim.Adam``/``AdamW`` to
    rounding with the default placement, complex parameters included. ``eps`` must be > 0
    (at 0, a coordinate whose gradient is 0 gives 0/0 on its first step; torch accepts 0).
    """

    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    batchable = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        decoupled_weight_decay: bool = False,
        eps_inside_sqrt: bool = False,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        nan_policy: str = "raise",
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            decoupled_weight_decay=decoupled_weight_decay, eps_inside_sqrt=eps_inside_sqrt,
        )  # fmt: skip
        super().__init__(params, defaults, maximize=maximize, foreach=foreach, fused=fused, nan_policy=nan_policy)

    def _validate_group(self, group: dict[str, Any]) -> None:
        _checks.check_lr(group["lr"])
        group["betas"] = _checks.check_betas(group["betas"])
        _checks.check_eps("eps", group["eps"])
        _checks.check_range("weight_decay", group["weight_decay"], 0.0)

    def _state_enabled(self, group: dict[str, Any], name: str) -> bool:
        return name != "max_exp_avg_sq" or bool(group["amsgrad"])

    def _group_step(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor], impl: str) -> None:
        params, grads, st = self._rule_inputs(group, params, grads)
        beta1, beta2 = group["betas"]
        adam_fn(
            params, grads, st["exp_avg"], st["exp_avg_sq"], st.get("max_exp_avg_sq", []), st["step"],
            lr=group_lr(group), beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], decoupled_weight_decay=group["decoupled_weight_decay"],
            amsgrad=group["amsgrad"], eps_inside_sqrt=group["eps_inside_sqrt"],
            maximize=group["maximize"], impl=impl,
        )  # fmt: skip


class AdamW(Adam):
    """AdamW: :class:`Adam` with ``decoupled_weight_decay=True`` and torch's default ``weight_decay=1e-2``."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        eps_inside_sqrt: bool = False,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        nan_policy: str = "raise",
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay=True,
            eps_inside_sqrt=eps_inside_sqrt, maximize=maximize, foreach=foreach, fused=fused,
            nan_policy=nan_policy,
        )  # fmt: skip
