r"""``foreach`` and ``fused`` SophiaG (:data:`precond.optim.functional.sophia.sophia`).

The scalars come from :func:`~precond.optim.functional.sophia.sophia_coefficients` (no bias
correction, so one row for every tensor and step); the element formula is the loop's:

.. math::

    \theta \leftarrow \theta\,(1-\eta\lambda),\quad m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
    \theta \leftarrow \theta - \eta\,\operatorname{sign}(m)\,\min\!\Big(\frac{|m|}{\max(\rho b h, 0) + \epsilon}, 1\Big)

The fused kernel (``csrc/sophia.cpp``) reads p, g, m, h and writes p, m (6 floats per parameter). The curvature EMA
``h`` (:func:`~precond.optim.functional.curvature_ema.update_curvature_ema`, every ``k`` steps) stays
on the loop.
"""

from __future__ import annotations

import torch

from ..functional.sophia import SophiaCoefficients, SophiaHyper, sophia
from ._host import register_foreach, register_fused

register_fused(sophia, lambda h: ())


@register_foreach(sophia)
def sophia_foreach(p, g, m, h, c: SophiaCoefficients, hyper: SophiaHyper) -> None:
    torch._foreach_mul_(m, c.beta1)
    torch._foreach_add_(m, g, alpha=1.0 - c.beta1)
    den = torch._foreach_mul(h, c.rho_bs)
    torch._foreach_clamp_min_(den, 0.0)  # max(rho b h, 0): h < 0 must not flip the ratio's sign
    torch._foreach_add_(den, c.eps)
    ratio = torch._foreach_abs(m)
    torch._foreach_div_(ratio, den)
    torch._foreach_clamp_max_(ratio, 1.0)
    torch._foreach_addcmul_(p, torch._foreach_sign(m), ratio, value=c.neg_lr)
