r"""Adam (Kingma & Ba 2015), AMSGrad (Reddi et al. 2018) and AdamW (Loshchilov & Hutter 2019).

The six lines of the lecture notes (seed 003), :math:`t \ge 1`:

.. math::

    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
    \hat m_t &= m_t/(1-\beta_1^t), \qquad \hat v_t = v_t/(1-\beta_2^t) \\
    \theta_t &= \theta_{t-1} - \gamma\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)
    \quad\text{(torch, default)}\quad\text{or}\quad
    \gamma\, \hat m_t / \sqrt{\hat v_t + \epsilon} \quad\text{(the notes, } \texttt{eps\_inside\_sqrt=True}\text{)}

AMSGrad (``amsgrad=True``) divides by :math:`\sqrt{\max_{s\le t} v_s}` (bias-corrected, as
torch does). AdamW (``decoupled_weight_decay=True``) applies
:math:`\theta \leftarrow (1-\gamma\lambda)\theta` before the step; otherwise weight decay
is L2, :math:`g \leftarrow g + \lambda\theta`. The operation order follows
``torch.optim.Adam``'s single-tensor path, so both agree to rounding.
"""

from __future__ import annotations

import math

import torch

from ._common import addcdiv_scaled_, fast_impl, signed_grad, step_all, working_precision


def adam_coefficients(step: int, *, lr: float, beta1: float, beta2: float) -> tuple[float, float]:
    """Per-step scalars of :func:`adam`, in double: ``(bc1, bc2)`` with ``bc_i = 1 - beta_i^t``.

    Used by the loop and the fast paths alike.
    """
    return 1.0 - beta1**step, 1.0 - beta2**step


def adam(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    max_exp_avg_sqs: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    amsgrad: bool,
    eps_inside_sqrt: bool,
    maximize: bool,
    impl: str = "loop",
) -> None:
    """Apply one Adam/AdamW/AMSGrad step to every tensor."""
    if impl != "loop":
        return fast_impl("adam", impl)(
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
            lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay, amsgrad=amsgrad,
            eps_inside_sqrt=eps_inside_sqrt, maximize=maximize,
        )  # fmt: skip
    for i, step in enumerate(step_all(state_steps)):
        vmax = max_exp_avg_sqs[i] if amsgrad else None
        with working_precision(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], vmax) as (p, g, m, v, vm):
            g = signed_grad(g, maximize)
            if weight_decay != 0.0:
                if decoupled_weight_decay:
                    p.mul_(1.0 - lr * weight_decay)
                else:
                    g = g.add(p, alpha=weight_decay)
            m.lerp_(g, 1.0 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            bc1, bc2 = adam_coefficients(step, lr=lr, beta1=beta1, beta2=beta2)
            if vm is not None:
                torch.maximum(vm, v, out=vm)
                v = vm
            if eps_inside_sqrt:
                denom = (v / bc2).add_(eps).sqrt_()
            else:
                denom = (v.sqrt() / math.sqrt(bc2)).add_(eps)
            addcdiv_scaled_(p, m, denom, -lr / bc1)
