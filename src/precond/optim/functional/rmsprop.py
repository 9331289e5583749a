r"""RMSProp (Tieleman & Hinton 2012), as ``torch.optim.RMSprop``.

:math:`s_t = \rho s_{t-1} + (1-\rho) g_t^2` (torch calls :math:`\rho` ``alpha``),
:math:`\theta \mathrel{-}= \gamma\, g_t / (\sqrt{s_t} + \epsilon)`, or the notes'
:math:`\sqrt{s_t + \epsilon}` with ``eps_inside_sqrt=True``. ``centered`` subtracts the
squared EMA of :math:`g` from :math:`s_t`; ``momentum`` keeps a buffer
:math:`u = \mu u + g/\text{denom}` and steps :math:`\gamma u`.
"""

from __future__ import annotations

import torch

from ._common import add_scaled_, addcdiv_scaled_, fast_impl, signed_grad, step_all, working_precision


def rmsprop(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    square_avgs: list[torch.Tensor],
    grad_avgs: list[torch.Tensor],
    momentum_buffers: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    eps_inside_sqrt: bool,
    maximize: bool,
    impl: str = "loop",
) -> None:
    if impl != "loop":
        return fast_impl("rmsprop", impl)(
            params, grads, square_avgs, grad_avgs, momentum_buffers, state_steps, lr=lr,
            alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
            centered=centered, eps_inside_sqrt=eps_inside_sqrt, maximize=maximize,
        )  # fmt: skip
    step_all(state_steps)
    for i in range(len(params)):
        ga = grad_avgs[i] if centered else None
        buf = momentum_buffers[i] if momentum > 0 else None
        with working_precision(params[i], grads[i], square_avgs[i], ga, buf) as (p, g, s, a, u):
            g = signed_grad(g, maximize)
            if weight_decay != 0.0:
                g = g.add(p, alpha=weight_decay)
            s.mul_(alpha).addcmul_(g, g, value=1.0 - alpha)
            if a is not None:
                a.lerp_(g, 1.0 - alpha)
                var = s.addcmul(a, a, value=-1.0)
            else:
                var = s
            denom = (var + eps).sqrt_() if eps_inside_sqrt else var.sqrt().add_(eps)
            if u is not None:
                u.mul_(momentum).addcdiv_(g, denom)
                add_scaled_(p, u, -lr)
            else:
                addcdiv_scaled_(p, g, denom, -lr)
