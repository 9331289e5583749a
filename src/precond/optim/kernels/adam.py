"""``foreach`` and ``fused`` Adam/AdamW/AMSGrad (:func:`precond.optim.functional.adam`).

Bias corrections come from :func:`~precond.optim.functional.adam.adam_coefficients`, the
loop's expressions; the element formula is the loop's (torch's single-tensor Adam):
``m = lerp(m, g, 1-b1)``, ``v = b2 v + (1-b2) g^2``, ``p -= lr/bc1 * m/(sqrt(v)/sqrt(bc2) + eps)``.
"""

from __future__ import annotations

import math

import torch

from ..functional._common import register
from ..functional.adam import adam, adam_coefficients
from ._host import foreach_prelude, fused_step, run_foreach


@register("adam", "fused")
def adam_fused(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, lr, beta1, beta2, eps,
               weight_decay, decoupled_weight_decay, amsgrad, eps_inside_sqrt, maximize) -> None:  # fmt: skip
    hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
              decoupled_weight_decay=decoupled_weight_decay, amsgrad=amsgrad, eps_inside_sqrt=eps_inside_sqrt,
              maximize=maximize)  # fmt: skip
    decay = 1.0 - lr * weight_decay if (weight_decay != 0.0 and decoupled_weight_decay) else 1.0
    l2 = weight_decay if (weight_decay != 0.0 and not decoupled_weight_decay) else 0.0

    def row(step: int):
        bc1, bc2 = adam_coefficients(step, lr=lr, beta1=beta1, beta2=beta2)
        return (1.0 - beta1, beta2, 1.0 - beta2, eps, decay, l2, -lr / bc1, math.sqrt(bc2), bc2)

    def launch(ops, lists, table):
        return ops.adam_step(*lists, table, bool(amsgrad), bool(eps_inside_sqrt), bool(maximize))

    fused_step(adam, (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs), state_steps, hp, row, launch)


@register("adam", "foreach")
def adam_foreach(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, lr, beta1, beta2, eps,
                 weight_decay, decoupled_weight_decay, amsgrad, eps_inside_sqrt, maximize) -> None:  # fmt: skip
    hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
              decoupled_weight_decay=decoupled_weight_decay, amsgrad=amsgrad, eps_inside_sqrt=eps_inside_sqrt,
              maximize=maximize)  # fmt: skip

    def body(lists, step: int) -> None:
        p, g, m, v, vm = lists
        bc1, bc2 = adam_coefficients(step, lr=lr, beta1=beta1, beta2=beta2)
        decoupled = weight_decay != 0.0 and decoupled_weight_decay
        g = foreach_prelude(p, g, maximize=maximize, l2=0.0 if decoupled else weight_decay,
                            decay=1.0 - lr * weight_decay if decoupled else 1.0)
        torch._foreach_lerp_(m, g, 1.0 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, g, g, value=1.0 - beta2)
        den = v
        if amsgrad:
            torch._foreach_maximum_(vm, v)
            den = vm
        if eps_inside_sqrt:
            denom = torch._foreach_div(den, bc2)
            torch._foreach_add_(denom, eps)
            torch._foreach_sqrt_(denom)
        else:
            denom = torch._foreach_sqrt(den)
            torch._foreach_div_(denom, math.sqrt(bc2))
            torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(p, m, denom, value=-lr / bc1)

    run_foreach(adam, (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs), state_steps, hp, body)
