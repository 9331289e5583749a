r"""AdaBound and AMSBound (Luo, Xiong, Liu, Sun, ICLR 2019), as the authors' code.

Adam's moments with L2 decay (:math:`g \leftarrow g + \lambda\theta`), then

.. math::

    \eta_t &= \gamma \sqrt{1-\beta_2^t}/(1-\beta_1^t) \,/\, (\sqrt{v_t} + \epsilon)
    \quad(\sqrt{\max_s v_s} \text{ with amsbound}) \\
    \alpha^* &= \text{final\_lr}\cdot\gamma/\gamma_0, \quad
    \ell_t = \alpha^*\big(1 - \tfrac{1}{\text{gamma}\,t + 1}\big), \quad
    u_t = \alpha^*\big(1 + \tfrac{1}{\text{gamma}\,t}\big) \\
    \theta &\mathrel{-}= \text{clip}(\eta_t, \ell_t, u_t)\, m_t

with :math:`\gamma_0` the group's learning rate when it was created (``base_lr``), so LR
schedulers scale the bounds as in the original. The L2 decay is the shared pre-step
(:mod:`precond.optim.functional._rule`).

The contract: :class:`AdaBoundHyper`, :class:`AdaBoundCoefficients` from
:func:`adabound_coefficients`; loop :func:`_adabound_tensor`, foreach and fused
:mod:`precond.optim.kernels.adabound` (``kernels/csrc/adabound.cpp``); tests
``tests/optim/test_fast_paths.py``, ``tests/optim/test_against_numpy.py``.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar, NamedTuple

import torch

from .. import _checks
from ._common import ema_square_, sqrt_eps
from ._rule import Hyper, Rule, hp


@dataclass(frozen=True)
class AdaBoundHyper(Hyper):
    """The hyperparameters of :class:`precond.optim.AdaBound` (the authors' order), and the
    group's ``base_lr`` (its lr when it was created; not a constructor argument)."""

    lr_fields: ClassVar[tuple[str, ...]] = ("lr", "base_lr")

    lr: float = hp(1e-3, _checks.lr(positive=True))
    betas: tuple[float, float] = hp((0.9, 0.999), _checks.BETAS)
    final_lr: float = hp(0.1, _checks.NON_NEGATIVE)
    gamma: float = hp(1e-3, _checks.within(0.0, 1.0, low_inclusive=False, high_inclusive=False))
    eps: float = hp(1e-8, _checks.NON_NEGATIVE)
    weight_decay: float = hp(0.0, _checks.NON_NEGATIVE)
    amsbound: bool = False
    _: KW_ONLY
    maximize: bool = False
    base_lr: float | None = hp(None, argument=False)  # None: lr


class AdaBoundCoefficients(NamedTuple):
    """Per-step scalars of AdaBound, in double."""

    beta1: float
    one_m_beta1: float
    beta2: float
    one_m_beta2: float
    eps: float
    step_size: float  # lr sqrt(1 - beta2^t) / (1 - beta1^t)
    lower: float  # the bounds of the rate
    upper: float


def adabound_coefficients(h: AdaBoundHyper, step: int) -> AdaBoundCoefficients:
    beta1, beta2 = h.betas
    scaled_final = h.final_lr * h.lr / (h.lr if h.base_lr is None else h.base_lr)
    step_size = h.lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
    lower = scaled_final * (1.0 - 1.0 / (h.gamma * step + 1.0))
    upper = scaled_final * (1.0 + 1.0 / (h.gamma * step))
    return AdaBoundCoefficients(beta1, 1.0 - beta1, beta2, 1.0 - beta2, h.eps, step_size, lower, upper)


def _adabound_tensor(p, g, m, v, vm, c: AdaBoundCoefficients, h: AdaBoundHyper) -> None:
    m.mul_(c.beta1).add_(g, alpha=c.one_m_beta1)
    denom = sqrt_eps(ema_square_(v, g, c.beta2, c.one_m_beta2, vm if h.amsbound else None), c.eps, False)
    if isinstance(c.step_size, torch.Tensor):  # per-row lr (vectorized sweeps)
        rate = (c.step_size / denom).clamp_(min=c.lower).clamp_(max=c.upper)
    else:
        rate = torch.full_like(denom, c.step_size).div_(denom).clamp_(c.lower, c.upper)
    p.sub_(rate.mul_(m))


#: ``adabound(params, grads, state, hyper, impl="loop")``: one AdaBound/AMSBound step (state
#: lists ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` under amsbound)
adabound = Rule("adabound", AdaBoundHyper, AdaBoundCoefficients, adabound_coefficients,
                ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), _adabound_tensor,
                optional={"max_exp_avg_sq": "amsbound"})  # fmt: skip
