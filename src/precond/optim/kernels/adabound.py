"""``foreach`` and ``fused`` AdaBound/AMSBound (:func:`precond.optim.functional.adabound`).

Step size and bounds come from
:func:`~precond.optim.functional.adabound.adabound_coefficients`, the loop's expressions.
"""

from __future__ import annotations

import torch

from ..functional._common import register
from ..functional.adabound import adabound, adabound_coefficients
from ._host import foreach_prelude, fused_step, run_foreach


@register("adabound", "fused")
def adabound_fused(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, lr, base_lr, final_lr,
                   gamma, beta1, beta2, eps, weight_decay, amsbound, maximize) -> None:  # fmt: skip
    hp = dict(lr=lr, base_lr=base_lr, final_lr=final_lr, gamma=gamma, beta1=beta1, beta2=beta2, eps=eps,
              weight_decay=weight_decay, amsbound=amsbound, maximize=maximize)  # fmt: skip

    def row(step: int):
        step_size, lower, upper = adabound_coefficients(
            step, lr=lr, base_lr=base_lr, final_lr=final_lr, gamma=gamma, beta1=beta1, beta2=beta2
        )
        return (beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps, weight_decay, step_size, lower, upper)

    def launch(ops, lists, table):
        return ops.adabound_step(*lists, table, bool(amsbound), bool(maximize))

    fused_step(adabound, (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs), state_steps, hp, row, launch)


@register("adabound", "foreach")
def adabound_foreach(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, lr, base_lr, final_lr,
                     gamma, beta1, beta2, eps, weight_decay, amsbound, maximize) -> None:  # fmt: skip
    hp = dict(lr=lr, base_lr=base_lr, final_lr=final_lr, gamma=gamma, beta1=beta1, beta2=beta2, eps=eps,
              weight_decay=weight_decay, amsbound=amsbound, maximize=maximize)  # fmt: skip

    def body(lists, step: int) -> None:
        p, g, m, v, vm = lists
        g = foreach_prelude(p, g, maximize=maximize, l2=weight_decay)
        torch._foreach_mul_(m, beta1)
        torch._foreach_add_(m, g, alpha=1.0 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, g, g, value=1.0 - beta2)
        den = v
        if amsbound:
            torch._foreach_maximum_(vm, v)
            den = vm
        denom = torch._foreach_sqrt(den)
        torch._foreach_add_(denom, eps)
        step_size, lower, upper = adabound_coefficients(
            step, lr=lr, base_lr=base_lr, final_lr=final_lr, gamma=gamma, beta1=beta1, beta2=beta2
        )
        rate = [torch.full_like(d, step_size) for d in denom]
        torch._foreach_div_(rate, denom)
        torch._foreach_clamp_min_(rate, lower)
        torch._foreach_clamp_max_(rate, upper)
        torch._foreach_mul_(rate, m)
        torch._foreach_sub_(p, rate)

    run_foreach(adabound, (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs), state_steps, hp, body)
