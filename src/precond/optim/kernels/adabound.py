"""``foreach`` and ``fused`` AdaBound/AMSBound (:data:`precond.optim.functional.adabound.adabound`).

Step size and bounds come from
:func:`~precond.optim.functional.adabound.adabound_coefficients`, the loop's; the kernel is
``csrc/adabound.cpp``.
"""

from __future__ import annotations

import torch

from ..functional.adabound import AdaBoundCoefficients, AdaBoundHyper, adabound
from ._host import foreach_ema_square, foreach_sqrt_eps, register_foreach, register_fused

register_fused(adabound, lambda h: (bool(h.amsbound),))


@register_foreach(adabound)
def adabound_foreach(p, g, m, v, vm, c: AdaBoundCoefficients, h: AdaBoundHyper) -> None:
    torch._foreach_mul_(m, c.beta1)
    torch._foreach_add_(m, g, alpha=c.one_m_beta1)
    denom = foreach_sqrt_eps(foreach_ema_square(v, g, c.beta2, c.one_m_beta2, vm if h.amsbound else None), c.eps, False)
    rate = [torch.full_like(d, c.step_size) for d in denom]
    torch._foreach_div_(rate, denom)
    torch._foreach_clamp_min_(rate, c.lower)
    torch._foreach_clamp_max_(rate, c.upper)
    torch._foreach_mul_(rate, m)
    torch._foreach_sub_(p, rate)
