r"""Adam (Kingma & Ba 2015), AMSGrad (Reddi et al. 2018) and AdamW (Loshchilov & Hutter 2019).

The six lines of the lecture notes (seed 003), :math:`t \ge 1`:

.. math::

    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
    \hat m_t &= m_t/(1-\beta_1^t), \qquad \hat v_t = v_t/(1-\beta_2^t) \\
    \theta_t &= \theta_{t-1} - \gamma\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)
    \quad\text{(torch, default)}\quad\text{or}\quad
    \gamma\, \hat m_t / \sqrt{\hat v_t + \epsilon} \quad\text{(the notes, } \texttt{eps\_inside\_sqrt=True}\text{)}

AMSGrad (``amsgrad=True``) divides by :math:`\sqrt{\max_{s\le t} v_s}` (bias-corrected, as
torch does). AdamW (``decoupled_weight_decay=True``) applies
:math:`\theta \leftarrow (1-\gamma\lambda)\theta` before the step; otherwise weight decay
is L2, :math:`g \leftarrow g + \lambda\theta` (the shared pre-step,
:mod:`precond.optim.functional._rule`). The operation order follows ``torch.optim.Adam``'s
single-tensor path, so both agree to rounding.

The contract (:class:`~precond.optim.functional._rule.Rule`): :class:`AdamHyper` (the
hyperparameters of :class:`precond.optim.Adam`), :class:`AdamCoefficients` from
:func:`adam_coefficients`; loop :func:`_adam_tensor`, foreach and fused
:mod:`precond.optim.kernels.adam` (C++ ``kernels/csrc/adam.cpp``); tests
``tests/optim/test_fast_paths.py``, ``tests/optim/test_against_torch.py``.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar, NamedTuple

from .. import _checks
from ._common import addcdiv_scaled_, ema_square_
from ._rule import Hyper, Rule, hp


@dataclass(frozen=True)
class AdamHyper(Hyper):
    """The hyperparameters of :class:`precond.optim.Adam` (its constructor's, in order)."""

    decoupled: ClassVar[str] = "decoupled_weight_decay"

    lr: float = hp(1e-3, _checks.lr())
    betas: tuple[float, float] = hp((0.9, 0.999), _checks.BETAS)
    eps: float = hp(1e-8, _checks.EPS)
    weight_decay: float = hp(0.0, _checks.NON_NEGATIVE)
    amsgrad: bool = False
    _: KW_ONLY
    decoupled_weight_decay: bool = False
    eps_inside_sqrt: bool = False
    maximize: bool = False


@dataclass(frozen=True)
class AdamWHyper(AdamHyper):
    """:class:`precond.optim.AdamW`'s: decoupled decay (not an argument), torch's ``weight_decay=1e-2``."""

    weight_decay: float = hp(1e-2, _checks.NON_NEGATIVE)
    decoupled_weight_decay: bool = hp(True, argument=False)


class AdamCoefficients(NamedTuple):
    """Per-step scalars of Adam, in double (``bc_i = 1 - beta_i^t``)."""

    one_m_beta1: float  # 1 - beta1: the lerp weight of m
    beta2: float
    one_m_beta2: float
    eps: float
    neg_step: float  # -lr / bc1
    sqrt_bc2: float
    bc2: float


def adam_coefficients(h: AdamHyper, step: int) -> AdamCoefficients:
    beta1, beta2 = h.betas
    bc1, bc2 = 1.0 - beta1**step, 1.0 - beta2**step
    return AdamCoefficients(1.0 - beta1, beta2, 1.0 - beta2, h.eps, -h.lr / bc1, math.sqrt(bc2), bc2)


def _adam_tensor(p, g, m, v, vm, c: AdamCoefficients, h: AdamHyper) -> None:
    m.lerp_(g, c.one_m_beta1)
    v = ema_square_(v, g, c.beta2, c.one_m_beta2, vm if h.amsgrad else None)
    if h.eps_inside_sqrt:
        denom = (v / c.bc2).add_(c.eps).sqrt_()
    else:
        denom = (v.sqrt() / c.sqrt_bc2).add_(c.eps)
    addcdiv_scaled_(p, m, denom, c.neg_step)


#: ``adam(params, grads, state, hyper, impl="loop")``: one Adam/AdamW/AMSGrad step
#: (state lists ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` under amsgrad)
adam = Rule("adam", AdamHyper, AdamCoefficients, adam_coefficients, ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), _adam_tensor,
            optional={"max_exp_avg_sq": "amsgrad"})  # fmt: skip
