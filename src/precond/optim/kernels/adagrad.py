"""``foreach`` and ``fused`` AdaGrad (:func:`precond.optim.functional.adagrad`).

The decayed step size comes from :func:`~precond.optim.functional.adagrad.adagrad_lr`.
"""

from __future__ import annotations

import torch

from ..functional._common import register
from ..functional.adagrad import adagrad, adagrad_lr
from ._host import foreach_prelude, fused_step, run_foreach


@register("adagrad", "fused")
def adagrad_fused(params, grads, state_sums, state_steps, *, lr, lr_decay, weight_decay, eps, eps_inside_sqrt,
                  maximize) -> None:  # fmt: skip
    hp = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps, eps_inside_sqrt=eps_inside_sqrt,
              maximize=maximize)  # fmt: skip

    def row(step: int):
        return (-adagrad_lr(step, lr=lr, lr_decay=lr_decay), weight_decay, eps)

    def launch(ops, lists, table):
        return ops.adagrad_step(*lists, table, bool(eps_inside_sqrt), bool(maximize))

    fused_step(adagrad, (params, grads, state_sums), state_steps, hp, row, launch)


@register("adagrad", "foreach")
def adagrad_foreach(params, grads, state_sums, state_steps, *, lr, lr_decay, weight_decay, eps, eps_inside_sqrt,
                    maximize) -> None:  # fmt: skip
    hp = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps, eps_inside_sqrt=eps_inside_sqrt,
              maximize=maximize)  # fmt: skip

    def body(lists, step: int) -> None:
        p, g, s = lists
        g = foreach_prelude(p, g, maximize=maximize, l2=weight_decay)
        clr = adagrad_lr(step, lr=lr, lr_decay=lr_decay)
        torch._foreach_addcmul_(s, g, g, value=1.0)
        if eps_inside_sqrt:
            std = torch._foreach_add(s, eps)
            torch._foreach_sqrt_(std)
        else:
            std = torch._foreach_sqrt(s)
            torch._foreach_add_(std, eps)
        torch._foreach_addcdiv_(p, g, std, value=-clr)

    run_foreach(adagrad, (params, grads, state_sums), state_steps, hp, body)
