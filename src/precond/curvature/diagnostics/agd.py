"""Diagnostics of AGD (Yue et al. 2023, seed 000): the adaptive-coordinate fraction per
layer (section 4.5) and how well the stepwise gradient difference matches the
Hessian-vector product (seed 000, "next check 1")."""

from __future__ import annotations

import math

import torch

from ..exact import HVP
from ..params import flat_grads, flat_params, flatten, trainable
from .base import Diagnostic, ParameterFractions, StepContext


class AGDAdaptiveFraction(ParameterFractions):
    """Fraction of coordinates on AGD's adaptive branch (``sqrt(b_hat) > delta``) after the
    step, overall and per parameter (``model.named_parameters()`` names): metrics
    ``overall`` and ``param/<name>``. Uses :meth:`precond.optim.AGD.adaptive_fraction`."""

    name = "agd_adaptive_fraction"
    requires_method = "adaptive_fraction"
    optimizer_kind = "an AGD optimizer"


class GradientDifference(Diagnostic):
    r"""Relative error between the stepwise gradient difference and ``H(w_t)(w_t - w_{t-1})``.

    At step ``t`` (gradient ``g_t`` at ``w_t``, the point before the step), with ``H`` the
    Hessian of the current batch loss at ``w_t``:

    * ``grad_diff_rel_err`` = ``||(g_t - g_{t-1}) - H dw|| / ||H dw||``, ``dw = w_t - w_{t-1}``
      (any optimizer; with different batches at ``t-1`` and ``t`` this includes the noise);
    * ``grad_diff_cos``: cosine between the two;
    * for AGD, ``agd_rel_err`` and ``agd_cos`` of AGD's own ``s_t`` against ``H dw``, with
      ``s_t = (1-b1)/(1-b1^t) (g_t - m_hat_{t-1})`` (references.md; ``b1 = 0``: exactly
      ``g_t - g_{t-1}``), read from the optimizer state before the step.

    Needs the previous step's point and gradient, so :meth:`before_step` also runs the step
    before a measured one. Costs one HVP per measurement.
    """

    name = "gradient_difference"

    def __init__(self, every: int = 1, name: str | None = None) -> None:
        super().__init__(every, name)
        self._prev: tuple[int, torch.Tensor, torch.Tensor] | None = None
        self._metrics: dict[str, float] = {}

    def due_before(self, ctx: StepContext) -> bool:
        nxt = ctx.step + 1
        return nxt % self.every == 0 or (nxt + 1) % self.every == 0

    def _agd_s(self, ctx: StepContext) -> torch.Tensor | None:
        opt = ctx.optimizer
        if not hasattr(opt, "adaptive_fraction"):
            return None
        group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
        parts = []
        for _, p in trainable(ctx.model):
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            grp = group_of.get(id(p))
            st = opt.state.get(p, {})
            if grp is None or "exp_avg" not in st:
                return None
            b1 = grp["betas"][0]
            t = int(st["step"]) + 1
            if t < 2:
                return None
            if grp.get("maximize"):
                g = -g
            m_hat = st["exp_avg"] / (1.0 - b1 ** (t - 1))
            parts.append((1.0 - b1) / (1.0 - b1**t) * (g - m_hat))
        return flatten(parts).detach()

    @staticmethod
    def _compare(a: torch.Tensor, hv: torch.Tensor) -> tuple[float, float]:
        nh = float(hv.norm())
        rel = float((a - hv).norm()) / nh if nh > 0 else (0.0 if float(a.norm()) == 0 else math.inf)
        denom = float(a.norm()) * nh
        cos = float(a @ hv) / denom if denom > 0 else float("nan")
        return rel, cos

    def before_step(self, ctx: StepContext) -> None:
        w, g = flat_params(ctx.model), flat_grads(ctx.model)
        self._metrics = {}
        if self._prev is not None and self._prev[0] == ctx.step - 1 and (ctx.step + 1) % self.every == 0:
            _, w_prev, g_prev = self._prev
            hv = HVP(ctx.model, ctx.loss_fn)(w - w_prev)
            rel, cos = self._compare(g - g_prev, hv)
            self._metrics.update(grad_diff_rel_err=rel, grad_diff_cos=cos, hvp_norm=float(hv.norm()))
            s = self._agd_s(ctx)
            if s is not None:
                rel, cos = self._compare(s, hv)
                self._metrics.update(agd_rel_err=rel, agd_cos=cos)
        self._prev = (ctx.step, w, g)

    def after_step(self, ctx: StepContext) -> dict[str, float | list[float]]:
        out, self._metrics = self._metrics, {}
        return out
