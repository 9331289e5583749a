"""``foreach`` and ``fused`` SGD (:data:`precond.optim.functional.sgd.sgd`), both momentum styles.

No per-step scalar but "first step" (heavy-ball momentum starts with ``v = g``); the kernel is
``csrc/sgd.cpp``, given the momentum style (``"none"`` without momentum) and ``nesterov``.
"""

from __future__ import annotations

import torch

from ..functional.sgd import SGDCoefficients, SGDHyper, sgd
from ._host import register_foreach, register_fused

register_fused(sgd, lambda h: (h.style, bool(h.nesterov)))


@register_foreach(sgd)
def sgd_foreach(p, g, v, c: SGDCoefficients, h: SGDHyper) -> None:
    if h.style == "ema":
        torch._foreach_mul_(v, c.momentum)
        torch._foreach_add_(v, g, alpha=c.one_m_momentum)
        if h.nesterov:
            d = torch._foreach_mul(v, c.momentum)
            torch._foreach_add_(d, g, alpha=c.one_m_momentum)
            g = d
        else:
            g = v
    elif h.style == "heavy_ball":
        if c.first_step:
            torch._foreach_copy_(v, g)
        else:
            torch._foreach_mul_(v, c.momentum)
            torch._foreach_add_(v, g, alpha=c.one_m_dampening)
        g = torch._foreach_add(g, v, alpha=c.momentum) if h.nesterov else v
    torch._foreach_add_(p, g, alpha=c.neg_lr)
