r"""Sophia (Liu et al. 2023, arXiv 2305.14342), official SophiaG semantics.

The published class ``SophiaG`` (github.com/Liuhong99/Sophia, ``sophia.py``; also the PyPI
package ``sophia-opt``) does, per step, with no bias correction:

.. math::

    \theta &\leftarrow \theta\,(1 - \eta\,\lambda) \\
    m &\leftarrow \beta_1 m + (1-\beta_1)\, g \\
    \theta &\leftarrow \theta - \eta\,\operatorname{sign}(m)\,
        \min\!\Big(\frac{|m|}{\max(\rho\, b\, h, 0) + \epsilon}, 1\Big), \qquad \epsilon = 10^{-15}

(the code's ``rho`` is the paper's :math:`\gamma`, ``b`` = ``bs``), and, every ``k`` (= 10)
steps from the training loop, :math:`h \leftarrow \beta_2 h + (1-\beta_2)\, c` with ``c``
the curvature estimate (:func:`precond.optim.functional.curvature_ema.update_curvature_ema`). The official loop feeds
:math:`c = \hat g \odot \hat g`, :math:`\hat g` the gradient of the *mean* loss over
``bs`` samples on labels drawn from the model (Gauss-Newton-Bartlett), so that
:math:`b\,h` estimates the GGN diagonal. precond's estimators return that unbiased
diagonal directly (:math:`c = b\,\hat g\odot\hat g`), to be used with ``bs = 1``.

**Negative curvature.** The official code divides by :math:`\rho b h + \epsilon`, which is
negative where :math:`h < 0` (a Hessian or Hutchinson estimate, Sophia-H): the ratio is then
negative, the clip bounds it only from above, and the coordinate moves *along* its momentum
by an unbounded amount. precond divides by :math:`\max(\rho b h, 0) + \epsilon` instead:
bit for bit the official denominator where :math:`h \ge 0` (the official GNB estimate is a
square), and :math:`\epsilon` where :math:`h < 0`, so the ratio is :math:`\ge 0` and clipped at
1 there, as in the paper's rule :math:`\operatorname{clip}(m / \max(\gamma h, \epsilon), 1)`
(Liu et al. 2023, Algorithm 3). Every coordinate moves against :math:`\operatorname{sign}(m)`
by at most :math:`\eta`; where :math:`h \le 0` that is the sign-momentum step
:math:`\eta\,\operatorname{sign}(m)` (for :math:`|m| \ge \epsilon`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._common import fast_impl, signed_grad, step_all, working_precision

#: the constant the official code adds to the denominator
SOPHIA_EPS = 1e-15


def sophia_ratio(exp_avg: torch.Tensor, hessian: torch.Tensor, *, rho_bs: float, eps: float = SOPHIA_EPS) -> torch.Tensor:
    """``|m| / (max(rho*bs*h, 0) + eps)`` before the clip at 1 (a coordinate is clipped where
    it is >= 1); ``rho_bs`` = rho*bs. Non-negative, and the official ``|m| / (rho*bs*h + eps)``
    bit for bit where ``h >= 0`` (module docstring, Negative curvature)."""
    return exp_avg.abs() / (hessian * rho_bs).clamp_(min=0.0).add_(eps)


class SophiaCoefficients(NamedTuple):
    """The scalars of a SophiaG step (no bias correction: the same at every step), in double,
    shared by the loop and the fast paths."""

    decay: float  # 1 - lr*wd: the multiplier of theta before the step
    beta1: float
    rho_bs: float  # rho*bs, the multiplier of h in the denominator
    eps: float
    neg_lr: float  # -lr


def sophia_coefficients(
    *, lr: float, beta1: float, rho: float, bs: float, weight_decay: float, eps: float = SOPHIA_EPS
) -> SophiaCoefficients:
    return SophiaCoefficients(decay=1.0 - lr * weight_decay, beta1=beta1, rho_bs=rho * bs, eps=eps, neg_lr=-lr)


def sophia(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    hessians: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    *,
    lr: float,
    beta1: float,
    rho: float,
    bs: float,
    weight_decay: float,
    eps: float = SOPHIA_EPS,
    maximize: bool,
    impl: str = "loop",
) -> None:
    """Apply one SophiaG step to every tensor (equations in the module docstring).

    ``impl="foreach"``/``"fused"`` run :mod:`precond.optim.kernels.sophia` (same scalars,
    :func:`sophia_coefficients`)."""
    if impl != "loop":
        return fast_impl("sophia", impl)(
            params, grads, exp_avgs, hessians, state_steps, lr=lr, beta1=beta1, rho=rho, bs=bs,
            weight_decay=weight_decay, eps=eps, maximize=maximize,
        )  # fmt: skip
    step_all(state_steps)
    c = sophia_coefficients(lr=lr, beta1=beta1, rho=rho, bs=bs, weight_decay=weight_decay, eps=eps)
    for i in range(len(params)):
        with working_precision(params[i], grads[i], exp_avgs[i], hessians[i]) as (p, g, m, h):
            g = signed_grad(g, maximize)
            p.mul_(c.decay)  # theta <- theta (1 - eta lambda)
            m.mul_(c.beta1).add_(g, alpha=1.0 - c.beta1)  # m <- b1 m + (1-b1) g
            # official: (exp_avg.abs() / (rho * bs * hess + 1e-15)).clamp(None, 1), with h < 0 floored
            ratio = sophia_ratio(m, h, rho_bs=c.rho_bs, eps=c.eps).clamp_(max=1.0)  # min(|m| / (max(rho b h, 0) + eps), 1)
            p.addcmul_(m.sign(), ratio, value=c.neg_lr)  # theta <- theta - eta sign(m) ratio
