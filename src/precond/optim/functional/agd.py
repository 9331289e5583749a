r"""AGD: the Auto-switchable optimizer using stepwise Gradient Difference (Yue et al., NeurIPS 2023).

Algorithm 1 of the paper (arXiv 2312.01658), with the options of the authors' published
PyTorch class ``AGD`` (atorch), for step :math:`t \ge 1`:

.. math::

    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \\
    s_1 &= m_1/(1-\beta_1), \qquad
    s_t = \frac{m_t}{1-\beta_1^t} - \frac{m_{t-1}}{1-\beta_1^{t-1}} \\
    b_t &= \beta_2 b_{t-1} + (1-\beta_2) s_t^2 \\
    x_t &= x_{t-1} - \eta_t \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}
           \frac{m_t}{\max(\sqrt{b_t}, \delta\sqrt{1-\beta_2^t})}

which is :math:`x \mathrel{-}= \eta\,\hat m_t / \max(\sqrt{\hat b_t}, \delta)`: a coordinate
takes the adaptive step when :math:`\sqrt{\hat b_t} > \delta` and an SGD step with EMA
momentum at rate :math:`\eta/\delta` otherwise.

No stored copy of :math:`m_{t-1}` is needed: with :math:`m_t` substituted,
:math:`s_t = c_m m_{t-1} + c_g g_t` with :math:`c_g = (1-\beta_1)/(1-\beta_1^t)` and
:math:`c_m = \beta_1/(1-\beta_1^t) - 1/(1-\beta_1^{t-1})` (:math:`c_m = 0` at :math:`t=1`),
so the state is :math:`(m, b)` like Adam's.

Options, as in the published code: ``weight_decouple`` (``p *= 1 - lr*wd`` before the
step, or ``p *= 1 - wd`` with ``fixed_decay``; otherwise L2 ``g += wd*p``, without
touching ``p.grad``: the shared pre-step, :mod:`precond.optim.functional._rule`), ``amsgrad`` (``b_max = max(b_max, b)`` in the denominator), ``clip``
(clamp of the ratio ``m / max(sqrt(b), delta*sqrt(1-b2^t))`` to ``[-clip, clip]``) and
``win`` (the Win-accelerated variant with state ``z``:
``z = (z - eta*u)/(1 + wd*eta)``, ``tau = 1/(3 + 2*eta*wd)``,
``p = tau*p - 2*tau*eta*u + 2*tau*z``, ``eta = lr*sqrt(1-b2^t)/(1-b1^t)``, weight decay
acting only through this formula).

The contract: :class:`AGDHyper`, :class:`AGDCoefficients` from :func:`agd_coefficients`; loop
:func:`_agd_tensor`, foreach and fused :mod:`precond.optim.kernels.agd` (C++
``kernels/csrc/agd.cpp``); which coordinates took the adaptive branch:
:func:`agd_adaptive_mask`, reduced by :meth:`precond.optim.AGD.adaptive_fraction`; tests
``tests/optim/test_agd_against_authors.py``, ``tests/optim/test_against_numpy.py``,
``tests/optim/test_fast_paths.py``.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass
from typing import NamedTuple

import torch

from .. import _checks
from ._common import add_scaled_, ema_square_
from ._rule import Hyper, Rule, hp

WIN_Z_INITS = ("param", "zeros")


@dataclass(frozen=True)
class AGDHyper(Hyper):
    """The hyperparameters of :class:`precond.optim.AGD` (the authors' order and defaults)."""

    lr: float = hp(1e-3, _checks.lr())
    betas: tuple[float, float] = hp((0.9, 0.999), _checks.BETAS)
    delta: float = hp(1e-5, _checks.EPS)
    weight_decay: float = hp(0.0, _checks.NON_NEGATIVE)
    weight_decouple: bool = True
    fixed_decay: bool = False
    amsgrad: bool = False
    win: bool = False
    clip: float | None = hp(None, _checks.optional(_checks.within(0.0, low_inclusive=False)))
    _: KW_ONLY
    win_z_init: str = hp("param", _checks.one_of(*WIN_Z_INITS))
    maximize: bool = False

    @property
    def weight_decay_mode(self) -> str:
        if self.win or self.weight_decay == 0.0:  # under win, weight decay acts through its formula
            return "none"
        if not self.weight_decouple:
            return "l2"
        return "fixed" if self.fixed_decay else "decoupled"


class AGDCoefficients(NamedTuple):
    """The per-step scalars of AGD, computed once per tensor on the host in double."""

    beta1: float
    beta2: float
    c_m: float  # coefficient of m_{t-1} in s_t
    c_g: float  # coefficient of g_t in s_t
    floor: float  # delta * sqrt(1 - beta2^t): the switch, on the un-corrected b
    eta: float  # lr * sqrt(1 - beta2^t) / (1 - beta1^t)
    win_z: float  # 1 / (1 + wd*eta)                       (win only)
    win_tau: float  # 1 / (3 + 2*eta*wd)                    (win only)


def agd_coefficients(h: AGDHyper, step: int) -> AGDCoefficients:
    beta1, beta2 = h.betas
    bc1 = 1.0 - beta1**step
    bc2 = 1.0 - beta2**step
    c_g = (1.0 - beta1) / bc1
    c_m = 0.0 if step == 1 else beta1 / bc1 - 1.0 / (1.0 - beta1 ** (step - 1))
    sqrt_bc2 = math.sqrt(bc2)
    eta = h.lr * sqrt_bc2 / bc1
    wd = h.weight_decay
    return AGDCoefficients(beta1, beta2, c_m, c_g, h.delta * sqrt_bc2, eta, 1.0 / (1.0 + wd * eta), 1.0 / (3.0 + 2.0 * eta * wd))


def _agd_tensor(p, g, m, b, bmax, z, c: AGDCoefficients, h: AGDHyper) -> None:
    s = g.mul(c.c_g)
    if c.c_m != 0.0:
        s.add_(m, alpha=c.c_m)
    m.mul_(c.beta1).add_(g, alpha=1.0 - c.beta1)
    b = ema_square_(b, s, c.beta2, 1.0 - c.beta2, bmax if h.amsgrad else None)
    u = m / b.sqrt().clamp_(min=c.floor)
    if h.clip is not None:
        u.clamp_(-h.clip, h.clip)
    if not h.win:
        add_scaled_(p, u, -c.eta)
    else:
        add_scaled_(z, u, -c.eta).mul_(c.win_z)
        add_scaled_(add_scaled_(p.mul_(c.win_tau), u, -2.0 * c.win_tau * c.eta), z, 2.0 * c.win_tau)


#: ``agd(params, grads, state, hyper, impl="loop")``: one AGD step (state lists ``exp_avg``,
#: ``exp_avg_sq``, ``max_exp_avg_sq`` under amsgrad, ``z`` under win)
agd = Rule("agd", AGDHyper, AGDCoefficients, agd_coefficients, ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "z"), _agd_tensor,
           optional={"max_exp_avg_sq": "amsgrad", "z": "win"})  # fmt: skip


def agd_adaptive_mask(exp_avg_sq: torch.Tensor, step: int, *, beta2: float, delta: float) -> torch.Tensor:
    """Coordinates that took the adaptive branch at step ``step``: ``sqrt(b_hat) > delta``.

    Pass ``max_exp_avg_sq`` as ``exp_avg_sq`` under ``amsgrad``. Read off the state after
    the step, so it costs nothing unless asked for.
    """
    return exp_avg_sq.float().sqrt() > delta * math.sqrt(1.0 - beta2**step)
