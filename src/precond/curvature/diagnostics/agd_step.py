"""AGD's effective step (Yue et al. 2023, seed 000): the per-coordinate learning rate that
multiplies the bias-corrected momentum.

AGD's update is ``w -= lr * m_hat / max(sqrt(b_hat), delta)`` (references.md: the
published ``lr sqrt(1-b2^t)/(1-b1^t) m / max(sqrt(b), delta sqrt(1-b2^t))`` rewritten with
``m_hat = m/(1-b1^t)``, ``b_hat = b/(1-b2^t)``), so each coordinate moves by
``eta_i * m_hat_i`` with the effective step

    eta_i = lr / max(sqrt(b_hat_i), delta),

which is ``lr / delta`` on the SGD branch (``sqrt(b_hat_i) <= delta``) and ``lr / sqrt(b_hat_i)``
(smaller) on the adaptive branch. Under ``amsgrad`` ``b`` is the running maximum
``max_exp_avg_sq``.
"""

from __future__ import annotations

import math

import torch

from .base import Diagnostic, StepContext


def agd_effective_steps(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """Every stepped coordinate's ``eta_i = lr / max(sqrt(b_hat_i), delta)`` (float64, flat; empty
    before the first step). ``optimizer`` must be an AGD (``betas``, ``delta`` and the state
    ``exp_avg_sq`` / ``max_exp_avg_sq``, ``step``). For a batched AGD (``AGD.batched(P, lrs)``)
    row ``i`` of each stacked parameter takes its own ``lrs[i]`` (:func:`precond.optim._base.group_lr`)."""
    from precond.optim._base import group_lr

    parts = []
    for group in optimizer.param_groups:
        if "delta" not in group:
            raise TypeError(f"agd_effective_step needs an AGD optimizer (a 'delta' in its param groups), got {type(optimizer).__name__}")
        key = "max_exp_avg_sq" if group.get("amsgrad") else "exp_avg_sq"
        lr, b2, delta = group_lr(group), float(group["betas"][1]), float(group["delta"])
        lr = lr if isinstance(lr, float) else lr.double()  # batched: (C, 1, ...), one lr per row
        for p in group["params"]:
            state = optimizer.state.get(p)
            if not state or key not in state:
                continue
            b, rate = state[key], lr
            if b.is_complex():
                b, rate = torch.view_as_real(b), rate if isinstance(rate, float) else rate.unsqueeze(-1)
            t = int(state["step"])
            b_hat = b.detach().double() / (1.0 - b2**t)
            parts.append((rate / torch.clamp(b_hat.sqrt(), min=delta)).reshape(-1))
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


class AGDEffectiveStep(Diagnostic):
    """AGD's effective step ``eta_i = lr / max(sqrt(b_hat_i), delta)`` after the step, summarised
    over the coordinates: metrics ``median``, ``geomean`` (``exp(mean(log eta))``), ``min``, ``max``
    and ``sgd_branch`` (``lr / delta`` of the first group: the step of a coordinate on the SGD
    branch); NaN before any step."""

    name = "agd_effective_step"
    requires_method = "adaptive_fraction"  # AGD's: the diagnostic skips other optimizers

    def after_step(self, ctx: StepContext) -> dict[str, float | list[float]]:
        eta = agd_effective_steps(ctx.optimizer)
        g0 = ctx.optimizer.param_groups[0]
        out = {"sgd_branch": float(g0["lr"]) / float(g0["delta"])}
        if eta.numel() == 0:
            return {**out, **dict.fromkeys(("median", "geomean", "min", "max"), math.nan)}
        return {**out, "median": float(eta.median()), "geomean": float(eta.log().mean().exp()),
                "min": float(eta.min()), "max": float(eta.max())}  # fmt: skip
