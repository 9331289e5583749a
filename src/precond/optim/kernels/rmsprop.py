"""``foreach`` and ``fused`` RMSProp (:func:`precond.optim.functional.rmsprop`); no per-step scalar."""

from __future__ import annotations

import torch

from ..functional._common import register
from ..functional.rmsprop import rmsprop
from ._host import foreach_prelude, fused_step, run_foreach


@register("rmsprop", "fused")
def rmsprop_fused(params, grads, square_avgs, grad_avgs, momentum_buffers, state_steps, *, lr, alpha, eps,
                  weight_decay, momentum, centered, eps_inside_sqrt, maximize) -> None:  # fmt: skip
    hp = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
              eps_inside_sqrt=eps_inside_sqrt, maximize=maximize)  # fmt: skip

    def row(step: int):
        return (-lr, alpha, 1.0 - alpha, eps, weight_decay, momentum)

    def launch(ops, lists, table):
        return ops.rmsprop_step(*lists, table, bool(centered), momentum > 0, bool(eps_inside_sqrt), bool(maximize))

    fused_step(rmsprop, (params, grads, square_avgs, grad_avgs, momentum_buffers), state_steps, hp, row, launch)


@register("rmsprop", "foreach")
def rmsprop_foreach(params, grads, square_avgs, grad_avgs, momentum_buffers, state_steps, *, lr, alpha, eps,
                    weight_decay, momentum, centered, eps_inside_sqrt, maximize) -> None:  # fmt: skip
    hp = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
              eps_inside_sqrt=eps_inside_sqrt, maximize=maximize)  # fmt: skip

    def body(lists, step: int) -> None:
        p, g, s, a, u = lists
        g = foreach_prelude(p, g, maximize=maximize, l2=weight_decay)
        torch._foreach_mul_(s, alpha)
        torch._foreach_addcmul_(s, g, g, value=1.0 - alpha)
        if centered:
            torch._foreach_lerp_(a, g, 1.0 - alpha)
            var = torch._foreach_addcmul(s, a, a, value=-1.0)
        else:
            var = s
        if eps_inside_sqrt:
            denom = torch._foreach_add(var, eps)
            torch._foreach_sqrt_(denom)
        else:
            denom = torch._foreach_sqrt(var)
            torch._foreach_add_(denom, eps)
        if momentum > 0:
            torch._foreach_mul_(u, momentum)
            torch._foreach_addcdiv_(u, g, denom)
            torch._foreach_add_(p, u, alpha=-lr)
        else:
            torch._foreach_addcdiv_(p, g, denom, value=-lr)

    run_foreach(rmsprop, (params, grads, square_avgs, grad_avgs, momentum_buffers), state_steps, hp, body)
