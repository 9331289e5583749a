"""``foreach`` and ``fused`` RMSProp (:data:`precond.optim.functional.rmsprop.rmsprop`); no
per-step scalar. The kernel is ``csrc/rmsprop.cpp``."""

from __future__ import annotations

import torch

from ..functional.rmsprop import RMSPropCoefficients, RMSPropHyper, rmsprop
from ._host import foreach_sqrt_eps, register_foreach, register_fused

register_fused(rmsprop, lambda h: (bool(h.centered), h.momentum > 0, bool(h.eps_inside_sqrt)))


@register_foreach(rmsprop)
def rmsprop_foreach(p, g, s, a, u, c: RMSPropCoefficients, h: RMSPropHyper) -> None:
    torch._foreach_mul_(s, c.alpha)
    torch._foreach_addcmul_(s, g, g, value=c.one_m_alpha)
    if h.centered:
        torch._foreach_lerp_(a, g, c.one_m_alpha)
        var = torch._foreach_addcmul(s, a, a, value=-1.0)
    else:
        var = s
    denom = foreach_sqrt_eps(var, c.eps, h.eps_inside_sqrt)
    if h.momentum > 0:
        torch._foreach_mul_(u, c.momentum)
        torch._foreach_addcdiv_(u, g, denom)
        torch._foreach_add_(p, u, alpha=c.neg_lr)
    else:
        torch._foreach_addcdiv_(p, g, denom, value=c.neg_lr)
