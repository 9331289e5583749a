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

The decay :math:`\theta \leftarrow \theta(1-\eta\lambda)` is the shared pre-step
(:mod:`precond.optim.functional._rule`), always on, as in the official code. The contract:
:class:`SophiaHyper`, :class:`SophiaCoefficients` from :func:`sophia_coefficients`; loop
:func:`_sophia_tensor`, foreach and fused :mod:`precond.optim.kernels.sophia`
(``kernels/csrc/sophia.cpp``); tests ``tests/optim/test_fast_paths_curvature.py``,
``tests/curvature/test_optimizers.py``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import ClassVar, NamedTuple

import torch

from .. import _checks
from ._rule import Hyper, Rule, hp

#: the constant the official code adds to the denominator
SOPHIA_EPS = 1e-15


@dataclass(frozen=True)
class SophiaHyper(Hyper):
    """The hyperparameters of :class:`precond.optim.Sophia` (the official ``SophiaG``'s, then
    precond's; ``estimator``, ``update_every``, ``curvature_samples``: settings of the whole
    optimizer, checked by :class:`precond.optim.curvature_base.CurvatureOptimizer`)."""

    decoupled: ClassVar[bool] = True

    lr: float = hp(1e-4, _checks.lr())
    betas: tuple[float, float] = hp((0.965, 0.99), _checks.BETAS)
    rho: float = hp(0.04, _checks.NON_NEGATIVE)
    weight_decay: float = hp(0.1, _checks.NON_NEGATIVE)
    _: KW_ONLY
    bs: float = hp(1.0, _checks.within(0.0, low_inclusive=False))
    eps: float = hp(SOPHIA_EPS, _checks.EPS)  # 0 with h <= 0 and m = 0: 0/0
    estimator: str = "gnb"
    update_every: int = 10
    curvature_samples: int = 1
    maximize: bool = False


def sophia_ratio(exp_avg: torch.Tensor, hessian: torch.Tensor, *, rho_bs: float, eps: float = SOPHIA_EPS) -> torch.Tensor:
    """``|m| / (max(rho*bs*h, 0) + eps)`` before the clip at 1 (a coordinate is clipped where
    it is >= 1); ``rho_bs`` = rho*bs. Non-negative, and the official ``|m| / (rho*bs*h + eps)``
    bit for bit where ``h >= 0`` (module docstring, Negative curvature)."""
    return exp_avg.abs() / (hessian * rho_bs).clamp_(min=0.0).add_(eps)


class SophiaCoefficients(NamedTuple):
    """The scalars of a SophiaG step (no bias correction: the same at every step), in double,
    shared by the loop and the fast paths."""

    beta1: float
    rho_bs: float  # rho*bs, the multiplier of h in the denominator
    eps: float
    neg_lr: float  # -lr


def sophia_coefficients(h: SophiaHyper, step: int) -> SophiaCoefficients:
    return SophiaCoefficients(beta1=h.betas[0], rho_bs=h.rho * h.bs, eps=h.eps, neg_lr=-h.lr)


def _sophia_tensor(p, g, m, h, c: SophiaCoefficients, hyper: SophiaHyper) -> None:
    m.mul_(c.beta1).add_(g, alpha=1.0 - c.beta1)  # m <- b1 m + (1-b1) g
    # official: (exp_avg.abs() / (rho * bs * hess + 1e-15)).clamp(None, 1), with h < 0 floored
    ratio = sophia_ratio(m, h, rho_bs=c.rho_bs, eps=c.eps).clamp_(max=1.0)  # min(|m| / (max(rho b h, 0) + eps), 1)
    p.addcmul_(m.sign(), ratio, value=c.neg_lr)  # theta <- theta - eta sign(m) ratio


#: ``sophia(params, grads, state, hyper, impl="loop")``: one SophiaG step (state lists
#: ``exp_avg``, ``hessian``)
sophia = Rule("sophia", SophiaHyper, SophiaCoefficients, sophia_coefficients, ("exp_avg", "hessian"), _sophia_tensor)
