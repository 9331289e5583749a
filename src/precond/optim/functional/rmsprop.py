r"""RMSProp (Tieleman & Hinton 2012), as ``torch.optim.RMSprop``.

:math:`s_t = \rho s_{t-1} + (1-\rho) g_t^2` (torch calls :math:`\rho` ``alpha``),
:math:`\theta \mathrel{-}= \gamma\, g_t / (\sqrt{s_t} + \epsilon)`, or the notes'
:math:`\sqrt{s_t + \epsilon}` with ``eps_inside_sqrt=True``. ``centered`` subtracts the
squared EMA of :math:`g` from :math:`s_t`; ``momentum`` keeps a buffer
:math:`u = \mu u + g/\text{denom}` and steps :math:`\gamma u`. Weight decay is L2 (the
shared pre-step, :mod:`precond.optim.functional._rule`).

The contract: :class:`RMSPropHyper`, :class:`RMSPropCoefficients` from
:func:`rmsprop_coefficients`; loop :func:`_rmsprop_tensor`, foreach and fused
:mod:`precond.optim.kernels.rmsprop` (``kernels/csrc/rmsprop.cpp``); tests
``tests/optim/test_fast_paths.py``, ``tests/optim/test_against_torch.py``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import NamedTuple

from .. import _checks
from ._common import add_scaled_, addcdiv_scaled_, sqrt_eps
from ._rule import Hyper, Rule, hp


@dataclass(frozen=True)
class RMSPropHyper(Hyper):
    """The hyperparameters of :class:`precond.optim.RMSProp` (torch's ``RMSprop`` order)."""

    lr: float = hp(1e-2, _checks.lr())
    alpha: float = hp(0.99, _checks.BETA)
    eps: float = hp(1e-8, _checks.EPS)
    weight_decay: float = hp(0.0, _checks.NON_NEGATIVE)
    momentum: float = hp(0.0, _checks.BETA)
    centered: bool = False
    _: KW_ONLY
    eps_inside_sqrt: bool = False
    maximize: bool = False


class RMSPropCoefficients(NamedTuple):
    """The scalars of RMSProp (the same at every step), in double."""

    neg_lr: float
    alpha: float
    one_m_alpha: float
    eps: float
    momentum: float


def rmsprop_coefficients(h: RMSPropHyper, step: int) -> RMSPropCoefficients:
    return RMSPropCoefficients(-h.lr, h.alpha, 1.0 - h.alpha, h.eps, h.momentum)


def _rmsprop_tensor(p, g, s, a, u, c: RMSPropCoefficients, h: RMSPropHyper) -> None:
    s.mul_(c.alpha).addcmul_(g, g, value=c.one_m_alpha)
    if h.centered:
        a.lerp_(g, c.one_m_alpha)
        var = s.addcmul(a, a, value=-1.0)
    else:
        var = s
    denom = sqrt_eps(var, c.eps, h.eps_inside_sqrt)
    if h.momentum > 0:
        u.mul_(c.momentum).addcdiv_(g, denom)
        add_scaled_(p, u, c.neg_lr)
    else:
        addcdiv_scaled_(p, g, denom, c.neg_lr)


#: ``rmsprop(params, grads, state, hyper, impl="loop")``: one RMSProp step (state lists
#: ``square_avg``, ``grad_avg`` if centered, ``momentum_buffer`` with momentum)
rmsprop = Rule("rmsprop", RMSPropHyper, RMSPropCoefficients, rmsprop_coefficients,
               ("square_avg", "grad_avg", "momentum_buffer"), _rmsprop_tensor,
               optional={"grad_avg": "centered", "momentum_buffer": "momentum"})  # fmt: skip
