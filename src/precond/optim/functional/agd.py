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
touching ``p.grad``), ``amsgrad`` (``b_max = max(b_max, b)`` in the denominator), ``clip``
(clamp of the ratio ``m / max(sqrt(b), delta*sqrt(1-b2^t))`` to ``[-clip, clip]``) and
``win`` (the Win-accelerated variant with state ``z``:
``z = (z - eta*u)/(1 + wd*eta)``, ``tau = 1/(3 + 2*eta*wd)``,
``p = tau*p - 2*tau*eta*u + 2*tau*z``, ``eta = lr*sqrt(1-b2^t)/(1-b1^t)``, weight decay
acting only through this formula).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._common import add_scaled_, differs, fast_impl, signed_grad, step_all, working_precision


class AGDCoefficients(NamedTuple):
    """The per-step scalars of AGD, computed once per tensor on the host in double."""

    beta1: float
    beta2: float
    c_m: float  # coefficient of m_{t-1} in s_t
    c_g: float  # coefficient of g_t in s_t
    floor: float  # delta * sqrt(1 - beta2^t): the switch, on the un-corrected b
    eta: float  # lr * sqrt(1 - beta2^t) / (1 - beta1^t)
    decay: float  # multiplier of p before the step (1 when no decoupled decay)
    l2: float  # coefficient of p added to g (0 unless coupled L2 decay)
    win_z: float  # 1 / (1 + wd*eta)                       (win only)
    win_tau: float  # 1 / (3 + 2*eta*wd)                    (win only)


def agd_coefficients(
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    delta: float,
    weight_decay: float = 0.0,
    weight_decouple: bool = True,
    fixed_decay: bool = False,
    win: bool = False,
) -> AGDCoefficients:
    bc1 = 1.0 - beta1**step
    bc2 = 1.0 - beta2**step
    c_g = (1.0 - beta1) / bc1
    c_m = 0.0 if step == 1 else beta1 / bc1 - 1.0 / (1.0 - beta1 ** (step - 1))
    sqrt_bc2 = math.sqrt(bc2)
    eta = lr * sqrt_bc2 / bc1
    decay, l2 = 1.0, 0.0
    if not win and weight_decay != 0.0:
        if weight_decouple:
            decay = 1.0 - (weight_decay if fixed_decay else lr * weight_decay)
        else:
            l2 = weight_decay
    return AGDCoefficients(
        beta1=beta1,
        beta2=beta2,
        c_m=c_m,
        c_g=c_g,
        floor=delta * sqrt_bc2,
        eta=eta,
        decay=decay,
        l2=l2,
        win_z=1.0 / (1.0 + weight_decay * eta),
        win_tau=1.0 / (3.0 + 2.0 * eta * weight_decay),
    )


def agd(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    max_exp_avg_sqs: list[torch.Tensor],
    zs: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    delta: float,
    weight_decay: float,
    weight_decouple: bool,
    fixed_decay: bool,
    amsgrad: bool,
    win: bool,
    clip: float | None,
    maximize: bool,
    impl: str = "loop",
) -> None:
    """Apply one AGD step to every tensor (see the module docstring for the equations)."""
    if impl != "loop":
        return fast_impl("agd", impl)(
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, zs, state_steps,
            lr=lr, beta1=beta1, beta2=beta2, delta=delta, weight_decay=weight_decay,
            weight_decouple=weight_decouple, fixed_decay=fixed_decay, amsgrad=amsgrad,
            win=win, clip=clip, maximize=maximize,
        )  # fmt: skip
    for i, step in enumerate(step_all(state_steps)):
        c = agd_coefficients(
            step, lr=lr, beta1=beta1, beta2=beta2, delta=delta, weight_decay=weight_decay,
            weight_decouple=weight_decouple, fixed_decay=fixed_decay, win=win,
        )  # fmt: skip
        bmax = max_exp_avg_sqs[i] if amsgrad else None
        z = zs[i] if win else None
        with working_precision(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], bmax, z) as (p, g, m, b, bm, zz):
            _agd_tensor(p, signed_grad(g, maximize), m, b, bm, zz, c, clip)


def _agd_tensor(
    p: torch.Tensor,
    g: torch.Tensor,
    m: torch.Tensor,
    b: torch.Tensor,
    bmax: torch.Tensor | None,
    z: torch.Tensor | None,
    c: AGDCoefficients,
    clip: float | None,
) -> None:
    if c.l2 != 0.0:
        g = g.add(p, alpha=c.l2)
    if differs(c.decay, 1.0):
        p.mul_(c.decay)
    s = g.mul(c.c_g)
    if c.c_m != 0.0:
        s.add_(m, alpha=c.c_m)
    m.mul_(c.beta1).add_(g, alpha=1.0 - c.beta1)
    b.mul_(c.beta2).addcmul_(s, s, value=1.0 - c.beta2)
    if bmax is not None:
        torch.maximum(bmax, b, out=bmax)
        b = bmax
    u = m / b.sqrt().clamp_(min=c.floor)
    if clip is not None:
        u.clamp_(-clip, clip)
    if z is None:
        add_scaled_(p, u, -c.eta)
    else:
        add_scaled_(z, u, -c.eta).mul_(c.win_z)
        add_scaled_(add_scaled_(p.mul_(c.win_tau), u, -2.0 * c.win_tau * c.eta), z, 2.0 * c.win_tau)


def agd_adaptive_mask(exp_avg_sq: torch.Tensor, step: int, *, beta2: float, delta: float) -> torch.Tensor:
    """Coordinates that took the adaptive branch at step ``step``: ``sqrt(b_hat) > delta``.

    Pass ``max_exp_avg_sq`` as ``exp_avg_sq`` under ``amsgrad``. Read off the state after
    the step, so it costs nothing unless asked for.
    """
    return exp_avg_sq.float().sqrt() > delta * math.sqrt(1.0 - beta2**step)
