"""``foreach`` and ``fused`` AGD (:data:`precond.optim.functional.agd.agd`).

Per-step scalars come from :func:`~precond.optim.functional.agd.agd_coefficients`, as in the
loop. No stored copy of :math:`m_{t-1}` is needed: :math:`s_t = c_m m_{t-1} + c_g g_t`, so the
fused kernel (``csrc/agd.cpp``) reads p, g, m, b and writes p, m, b (7 floats per parameter,
Adam's traffic; 9 with ``amsgrad``).
"""

from __future__ import annotations

import torch

from ..functional.agd import AGDCoefficients, AGDHyper, agd
from ._host import clip_value, foreach_ema_square, register_foreach, register_fused

register_fused(agd, lambda h: (bool(h.amsgrad), bool(h.win), clip_value(h.clip)))


@register_foreach(agd)
def agd_foreach(p, g, m, b, bm, z, c: AGDCoefficients, h: AGDHyper) -> None:
    s = torch._foreach_mul(g, c.c_g)
    if c.c_m != 0.0:
        torch._foreach_add_(s, m, alpha=c.c_m)
    torch._foreach_mul_(m, c.beta1)
    torch._foreach_add_(m, g, alpha=1.0 - c.beta1)
    den = foreach_ema_square(b, s, c.beta2, 1.0 - c.beta2, bm if h.amsgrad else None)
    d = torch._foreach_sqrt(den)
    torch._foreach_clamp_min_(d, c.floor)
    u = torch._foreach_div(m, d)
    if h.clip is not None:
        torch._foreach_clamp_min_(u, -h.clip)
        torch._foreach_clamp_max_(u, h.clip)
    if not h.win:
        torch._foreach_add_(p, u, alpha=-c.eta)
    else:
        torch._foreach_add_(z, u, alpha=-c.eta)
        torch._foreach_mul_(z, c.win_z)
        torch._foreach_mul_(p, c.win_tau)
        torch._foreach_add_(p, u, alpha=-2.0 * c.win_tau * c.eta)
        torch._foreach_add_(p, z, alpha=2.0 * c.win_tau)
