r"""Gradient descent with heavy-ball or EMA momentum, Nesterov, and L2 or decoupled decay.

Two momentum forms of the lecture notes (seed 003):

* heavy ball, ``momentum_style="heavy_ball"`` (``torch.optim.SGD``):
  :math:`v_t = \beta v_{t-1} + (1-\tau) g_t` with :math:`v_1 = g_1`, step
  :math:`\theta \mathrel{-}= \gamma v_t` (Nesterov: :math:`\gamma (g_t + \beta v_t)`);
* EMA, ``momentum_style="ema"`` (the notes' slide): :math:`v_t = \beta v_{t-1} + (1-\beta) g_t`,
  :math:`v_0 = 0`, step :math:`\theta \mathrel{-}= \gamma v_t` (Nesterov:
  :math:`\gamma(\beta v_t + (1-\beta) g_t)`).

Weight decay is L2 (:math:`g \leftarrow g + \lambda\theta`) or, with
``decoupled_weight_decay``, :math:`\theta \leftarrow (1-\gamma\lambda)\theta` first.
"""

from __future__ import annotations

import torch

from ._common import add_scaled_, fast_impl, signed_grad, step_all, working_precision


def sgd(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    momentum_buffers: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    momentum_style: str,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
    impl: str = "loop",
) -> None:
    if impl != "loop":
        return fast_impl("sgd", impl)(
            params, grads, momentum_buffers, state_steps, lr=lr, momentum=momentum,
            dampening=dampening, nesterov=nesterov, momentum_style=momentum_style,
            weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )  # fmt: skip
    for i, step in enumerate(step_all(state_steps)):
        buf = momentum_buffers[i] if momentum != 0.0 else None
        with working_precision(params[i], grads[i], buf) as (p, g, v):
            g = signed_grad(g, maximize)
            if weight_decay != 0.0:
                if decoupled_weight_decay:
                    p.mul_(1.0 - lr * weight_decay)
                else:
                    g = g.add(p, alpha=weight_decay)
            if v is not None:
                if momentum_style == "ema":
                    v.mul_(momentum).add_(g, alpha=1.0 - momentum)
                    g = v.mul(momentum).add_(g, alpha=1.0 - momentum) if nesterov else v
                else:
                    if step == 1:
                        v.copy_(g)
                    else:
                        v.mul_(momentum).add_(g, alpha=1.0 - dampening)
                    g = g.add(v, alpha=momentum) if nesterov else v
            add_scaled_(p, g, -lr)
