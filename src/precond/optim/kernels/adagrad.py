"""``foreach`` and ``fused`` AdaGrad (:data:`precond.optim.functional.adagrad.adagrad`).

The decayed step size comes from :func:`~precond.optim.functional.adagrad.adagrad_coefficients`;
the kernel is ``csrc/adagrad.cpp``.
"""

from __future__ import annotations

import torch

from ..functional.adagrad import AdaGradCoefficients, AdaGradHyper, adagrad
from ._host import foreach_sqrt_eps, register_foreach, register_fused

register_fused(adagrad, lambda h: (bool(h.eps_inside_sqrt),))


@register_foreach(adagrad)
def adagrad_foreach(p, g, s, c: AdaGradCoefficients, h: AdaGradHyper) -> None:
    torch._foreach_addcmul_(s, g, g, value=1.0)
    torch._foreach_addcdiv_(p, g, foreach_sqrt_eps(s, c.eps, h.eps_inside_sqrt), value=c.neg_clr)
