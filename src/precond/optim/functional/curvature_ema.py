r"""The curvature EMA shared by :class:`precond.optim.Sophia` and :class:`precond.optim.GaussNewtonDiag`.

Every curvature estimate :math:`c_k` a curvature optimizer receives
(:meth:`precond.optim.curvature_base.CurvatureOptimizer.update_curvature`) goes into

.. math:: h_k = \beta_2\, h_{k-1} + (1-\beta_2)\, c_k, \qquad k \leftarrow k + 1

(Sophia's official ``update_hessian``; GaussNewtonDiag keeps the count ``k`` for the bias
correction :math:`\hat h = h_k / (1-\beta_2^k)` of its step, Sophia keeps none). Always the
reference loop: it runs every ``update_every`` steps, not on the step's hot path.
"""

from __future__ import annotations

import torch

from ._common import working_precision


def update_curvature_ema(
    curvatures: list[torch.Tensor],
    estimates: list[torch.Tensor],
    *,
    beta2: float,
    counts: list[torch.Tensor] | None = None,
) -> None:
    """``h = beta2*h + (1-beta2)*c`` for every tensor, in place (low precision ``h`` in float32),
    and ``k += 1`` for every count when ``counts`` (one scalar tensor per tensor) is given."""
    for k in counts or ():
        k += 1
    for h, c in zip(curvatures, estimates):
        with working_precision(h) as (hh,):
            hh.mul_(beta2).add_(c.to(hh.dtype), alpha=1.0 - beta2)
