r"""AdaBound and AMSBound (Luo, Xiong, Liu, Sun, ICLR 2019), as the authors' code.

Adam's moments with L2 decay (:math:`g \leftarrow g + \lambda\theta`), then

.. math::

    \eta_t &= \gamma \sqrt{1-\beta_2^t}/(1-\beta_1^t) \,/\, (\sqrt{v_t} + \epsilon)
    \quad(\sqrt{\max_s v_s} \text{ with amsbound}) \\
    \alpha^* &= \text{final\_lr}\cdot\gamma/\gamma_0, \quad
    \ell_t = \alpha^*\big(1 - \tfrac{1}{\text{gamma}\,t + 1}\big), \quad
    u_t = \alpha^*\big(1 + \tfrac{1}{\text{gamma}\,t}\big) \\
    \theta &\mathrel{-}= \text{clip}(\eta_t, \ell_t, u_t)\, m_t

with :math:`\gamma_0` the group's learning rate when it was created (``base_lr``), so LR
schedulers scale the bounds as in the original.
"""

from __future__ import annotations

import math

import torch

from ._common import fast_impl, signed_grad, step_all, working_precision


def adabound_coefficients(
    step: int, *, lr: float, base_lr: float, final_lr: float, gamma: float, beta1: float, beta2: float
) -> tuple[float, float, float]:
    """Per-step scalars of :func:`adabound`, in double: ``(step_size, lower, upper)``.

    Used by the loop and the fast paths alike.
    """
    scaled_final = final_lr * lr / base_lr
    step_size = lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
    lower = scaled_final * (1.0 - 1.0 / (gamma * step + 1.0))
    upper = scaled_final * (1.0 + 1.0 / (gamma * step))
    return step_size, lower, upper


def adabound(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    max_exp_avg_sqs: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    *,
    lr: float,
    base_lr: float,
    final_lr: float,
    gamma: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsbound: bool,
    maximize: bool,
    impl: str = "loop",
) -> None:
    if impl != "loop":
        return fast_impl("adabound", impl)(
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, lr=lr,
            base_lr=base_lr, final_lr=final_lr, gamma=gamma, beta1=beta1, beta2=beta2,
            eps=eps, weight_decay=weight_decay, amsbound=amsbound, maximize=maximize,
        )  # fmt: skip
    for i, step in enumerate(step_all(state_steps)):
        vmax = max_exp_avg_sqs[i] if amsbound else None
        with working_precision(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], vmax) as (p, g, m, v, vm):
            g = signed_grad(g, maximize)
            if weight_decay != 0.0:
                g = g.add(p, alpha=weight_decay)
            m.mul_(beta1).add_(g, alpha=1.0 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            if vm is not None:
                torch.maximum(vm, v, out=vm)
                v = vm
            denom = v.sqrt().add_(eps)
            step_size, lower, upper = adabound_coefficients(
                step, lr=lr, base_lr=base_lr, final_lr=final_lr, gamma=gamma, beta1=beta1, beta2=beta2
            )
            if isinstance(step_size, torch.Tensor):  # per-row lr (vectorized sweeps)
                rate = (step_size / denom).clamp_(min=lower).clamp_(max=upper)
            else:
                rate = torch.full_like(denom, step_size).div_(denom).clamp_(lower, upper)
            p.sub_(rate.mul_(m))
