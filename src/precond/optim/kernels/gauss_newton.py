r"""``foreach`` and ``fused`` GN^-1 / GN^-1/2 (:data:`precond.optim.functional.gauss_newton.gauss_newton_diag`).

The scalars of each tensor depend on its step ``t`` (momentum bias correction) and on its
curvature count ``k`` (the EMA's bias correction); both paths take them from
:func:`~precond.optim.functional.gauss_newton.gauss_newton_coefficients`, as the loop does,
once per distinct ``(t, k)`` (foreach buckets by both). The element formula is the loop's:

.. math::

    \theta \leftarrow (1-\eta\lambda_{wd})\,\theta,\quad
    u = g \ \text{or}\ \frac{m}{1-\beta_1^t},\ m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
    \theta \leftarrow \theta - \eta\,\Big(\Big|\frac{h}{1-\beta_2^k}\Big| + \lambda\Big)^{p} u

with :math:`p = -1` a reciprocal and :math:`p = -1/2` a reciprocal square root (torch's
``pow`` takes the same shortcuts; no elementwise ``pow``), and no step where
:math:`|h| + \lambda = 0` (``damping = 0``: the loop's mask, the kernel's branch). The fused
kernel (``csrc/gauss_newton.cpp``) reads p, g, h (and m) and writes p (and m): 4 floats per parameter, 6 with momentum.
The curvature EMA
(:func:`~precond.optim.functional.curvature_ema.update_curvature_ema`) stays on the loop.
"""

from __future__ import annotations

import torch

from ..functional.gauss_newton import GaussNewtonCoefficients, GaussNewtonHyper, gauss_newton_diag
from ._host import register_foreach, register_fused

register_fused(gauss_newton_diag, lambda h: (float(h.power), h.momentum > 0.0))


@register_foreach(gauss_newton_diag)
def gauss_newton_diag_foreach(p, g, m, h, c: GaussNewtonCoefficients, hyper: GaussNewtonHyper) -> None:
    if hyper.momentum > 0.0:
        torch._foreach_mul_(m, c.beta1)
        torch._foreach_add_(m, g, alpha=1.0 - c.beta1)
        u = torch._foreach_div(m, c.bc1)
    else:
        u = g
    if hyper.beta2 > 0.0:
        d = torch._foreach_div(h, c.bc2)  # h_hat
        torch._foreach_abs_(d)
    else:
        d = torch._foreach_abs(h)
    torch._foreach_add_(d, c.damping)  # |h_hat| + lambda
    zero = [x == 0.0 for x in d] if c.damping == 0.0 else None
    torch._foreach_pow_(d, hyper.power)  # -1 and -1/2: reciprocal and rsqrt, as the loop's pow_
    for x, z in zip(d, zero or ()):
        x.masked_fill_(z, 0.0)  # no step where |h_hat| + lambda = 0 (never 0 * inf)
    torch._foreach_addcmul_(p, d, u, value=c.neg_lr)
