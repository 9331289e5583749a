"""``foreach`` and ``fused`` AGD (:func:`precond.optim.functional.agd`).

Per-step scalars come from :func:`~precond.optim.functional.agd.agd_coefficients`, as in the
loop. No stored copy of :math:`m_{t-1}` is needed: :math:`s_t = c_m m_{t-1} + c_g g_t`, so the
fused kernel reads p, g, m, b and writes p, m, b (7 floats per parameter, Adam's traffic;
9 with ``amsgrad``).
"""

from __future__ import annotations

import torch

from ..functional._common import register
from ..functional.agd import agd, agd_coefficients
from ._host import foreach_prelude, clip_value, fused_step, run_foreach


def _hp(**kw):
    return kw


@register("agd", "fused")
def agd_fused(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, zs, state_steps, *, lr, beta1, beta2, delta,
              weight_decay, weight_decouple, fixed_decay, amsgrad, win, clip, maximize) -> None:  # fmt: skip
    hp = _hp(lr=lr, beta1=beta1, beta2=beta2, delta=delta, weight_decay=weight_decay, weight_decouple=weight_decouple,
             fixed_decay=fixed_decay, amsgrad=amsgrad, win=win, clip=clip, maximize=maximize)  # fmt: skip

    def row(step: int):
        return agd_coefficients(step, lr=lr, beta1=beta1, beta2=beta2, delta=delta, weight_decay=weight_decay,
                                weight_decouple=weight_decouple, fixed_decay=fixed_decay, win=win)  # fmt: skip

    def launch(ops, lists, table):
        return ops.agd_step(*lists, table, bool(amsgrad), bool(win), clip_value(clip), bool(maximize))

    fused_step(agd, (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, zs), state_steps, hp, row, launch)


@register("agd", "foreach")
def agd_foreach(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, zs, state_steps, *, lr, beta1, beta2, delta,
                weight_decay, weight_decouple, fixed_decay, amsgrad, win, clip, maximize) -> None:  # fmt: skip
    def body(lists, step: int) -> None:
        p, g, m, b, bm, z = lists
        c = agd_coefficients(step, lr=lr, beta1=beta1, beta2=beta2, delta=delta, weight_decay=weight_decay,
                             weight_decouple=weight_decouple, fixed_decay=fixed_decay, win=win)  # fmt: skip
        g = foreach_prelude(p, g, maximize=maximize, l2=c.l2, decay=c.decay)
        s = torch._foreach_mul(g, c.c_g)
        if c.c_m != 0.0:
            torch._foreach_add_(s, m, alpha=c.c_m)
        torch._foreach_mul_(m, c.beta1)
        torch._foreach_add_(m, g, alpha=1.0 - c.beta1)
        torch._foreach_mul_(b, c.beta2)
        torch._foreach_addcmul_(b, s, s, value=1.0 - c.beta2)
        den = b
        if amsgrad:
            torch._foreach_maximum_(bm, b)
            den = bm
        d = torch._foreach_sqrt(den)
        torch._foreach_clamp_min_(d, c.floor)
        u = torch._foreach_div(m, d)
        if clip is not None:
            torch._foreach_clamp_min_(u, -clip)
            torch._foreach_clamp_max_(u, clip)
        if not win:
            torch._foreach_add_(p, u, alpha=-c.eta)
        else:
            torch._foreach_add_(z, u, alpha=-c.eta)
            torch._foreach_mul_(z, c.win_z)
            torch._foreach_mul_(p, c.win_tau)
            torch._foreach_add_(p, u, alpha=-2.0 * c.win_tau * c.eta)
            torch._foreach_add_(p, z, alpha=2.0 * c.win_tau)

    run_foreach(agd, (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, zs), state_steps,
                _hp(lr=lr, beta1=beta1, beta2=beta2, delta=delta, weight_decay=weight_decay,
                    weight_decouple=weight_decouple, fixed_decay=fixed_decay, amsgrad=amsgrad, win=win, clip=clip,
                    maximize=maximize), body)  # fmt: skip

