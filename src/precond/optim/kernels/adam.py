"""``foreach`` and ``fused`` Adam/AdamW/AMSGrad (:data:`precond.optim.functional.adam.adam`).

Bias corrections come from :func:`~precond.optim.functional.adam.adam_coefficients`, the
loop's; the element formula is the loop's (torch's single-tensor Adam):
``m = lerp(m, g, 1-b1)``, ``v = b2 v + (1-b2) g^2``, ``p -= lr/bc1 * m/(sqrt(v)/sqrt(bc2) + eps)``.
The kernel is ``csrc/adam.cpp``.
"""

from __future__ import annotations

import torch

from ..functional.adam import AdamCoefficients, AdamHyper, adam
from ._host import foreach_ema_square, register_foreach, register_fused

register_fused(adam, lambda h: (bool(h.amsgrad), bool(h.eps_inside_sqrt)))


@register_foreach(adam)
def adam_foreach(p, g, m, v, vm, c: AdamCoefficients, h: AdamHyper) -> None:
    torch._foreach_lerp_(m, g, c.one_m_beta1)
    den = foreach_ema_square(v, g, c.beta2, c.one_m_beta2, vm if h.amsgrad else None)
    if h.eps_inside_sqrt:
        denom = torch._foreach_div(den, c.bc2)
        torch._foreach_add_(denom, c.eps)
        torch._foreach_sqrt_(denom)
    else:
        denom = torch._foreach_sqrt(den)
        torch._foreach_div_(denom, c.sqrt_bc2)
        torch._foreach_add_(denom, c.eps)
    torch._foreach_addcdiv_(p, m, denom, value=c.neg_step)
