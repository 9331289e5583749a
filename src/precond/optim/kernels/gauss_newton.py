r"""``foreach`` and ``fused`` GN^-1 / GN^-1/2 (:func:`precond.optim.functional.gauss_newton_diag`).

The scalars of each tensor depend on its step ``t`` (momentum bias correction) and on its
curvature count ``k`` (the EMA's bias correction); both paths take them from
:func:`~precond.optim.functional.gauss_newton.gauss_newton_coefficients`, as the loop does,
once per distinct ``(t, k)``. The element formula is the loop's:

.. math::

    \theta \leftarrow (1-\eta\lambda_{wd})\,\theta,\quad
    u = g \ \text{or}\ \frac{m}{1-\beta_1^t},\ m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
    \theta \leftarrow \theta - \eta\,\Big(\Big|\frac{h}{1-\beta_2^k}\Big| + \lambda\Big)^{p} u

with :math:`p = -1` a reciprocal and :math:`p = -1/2` a reciprocal square root (torch's
``pow`` takes the same shortcuts; no elementwise ``pow``), and no step where
:math:`|h| + \lambda = 0` (``damping = 0``: the loop's mask, the kernel's branch). The fused
kernel reads p, g, h (and m) and writes p (and m): 4 floats per parameter, 6 with momentum.
The curvature EMA
(:func:`~precond.optim.functional.curvature_ema.update_curvature_ema`) stays on the loop.
"""

from __future__ import annotations

import torch

from ..functional._common import register
from ..functional.gauss_newton import curvature_counts, gauss_newton_coefficients, gauss_newton_diag
from ._host import coeff_table, foreach_prelude, fused_step, run_foreach


def _hp(**kw):
    return kw


@register("gauss_newton_diag", "fused")
def gauss_newton_diag_fused(params, grads, exp_avgs, curvatures, curvature_steps, state_steps, *, lr, power, momentum,
                            beta2, damping, weight_decay, maximize) -> None:  # fmt: skip
    hp = _hp(lr=lr, power=power, momentum=momentum, beta2=beta2, damping=damping, weight_decay=weight_decay,
             maximize=maximize)  # fmt: skip
    curvature_counts(curvature_steps)  # RuntimeError before any change if one was never fed

    def coefficients(step_and_k):
        step, k = step_and_k
        return gauss_newton_coefficients(int(step), int(k), lr=lr, momentum=momentum, beta2=beta2, damping=damping,
                                         weight_decay=weight_decay)  # fmt: skip

    def row(step: int):
        return (step,)  # the full row needs k too: built in launch

    def launch(ops, lists, table):
        p, g, m, h, ks = lists
        steps = [int(s) for s in table[:, 0].tolist()]
        full = coeff_table(list(zip(steps, curvature_counts(ks))), coefficients)
        return ops.gauss_newton_diag_step(p, g, m, h, full, float(power), momentum > 0.0, bool(maximize))

    fused_step(gauss_newton_diag, (params, grads, exp_avgs, curvatures, curvature_steps), state_steps, hp, row, launch)


@register("gauss_newton_diag", "foreach")
def gauss_newton_diag_foreach(params, grads, exp_avgs, curvatures, curvature_steps, state_steps, *, lr, power,
                              momentum, beta2, damping, weight_decay, maximize) -> None:  # fmt: skip
    hp = _hp(lr=lr, power=power, momentum=momentum, beta2=beta2, damping=damping, weight_decay=weight_decay,
             maximize=maximize)  # fmt: skip
    curvature_counts(curvature_steps)

    def body(lists, step: int) -> None:
        p, g, m, h, ks = lists
        cs = [gauss_newton_coefficients(step, k, lr=lr, momentum=momentum, beta2=beta2, damping=damping,
                                        weight_decay=weight_decay) for k in curvature_counts(ks)]  # fmt: skip
        c = cs[0]  # everything but bc2 depends on the step only
        g = foreach_prelude(p, g, maximize=maximize, decay=c.decay)
        if momentum > 0.0:
            torch._foreach_mul_(m, c.beta1)
            torch._foreach_add_(m, g, alpha=1.0 - c.beta1)
            u = torch._foreach_div(m, c.bc1)
        else:
            u = g
        if beta2 > 0.0:
            d = torch._foreach_div(h, [ci.bc2 for ci in cs])  # h_hat, per tensor (its own k)
            torch._foreach_abs_(d)
        else:
            d = torch._foreach_abs(h)
        torch._foreach_add_(d, c.damping)  # |h_hat| + lambda
        zero = [x == 0.0 for x in d] if c.damping == 0.0 else None
        torch._foreach_pow_(d, power)  # -1 and -1/2: reciprocal and rsqrt, as the loop's pow_
        for x, z in zip(d, zero or ()):
            x.masked_fill_(z, 0.0)  # no step where |h_hat| + lambda = 0 (never 0 * inf)
        torch._foreach_addcmul_(p, d, u, value=c.neg_lr)

    run_foreach(gauss_newton_diag, (params, grads, exp_avgs, curvatures, curvature_steps), state_steps, hp, body)
