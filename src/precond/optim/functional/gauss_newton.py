r"""Diagonal Gauss-Newton preconditioning: GN^-1 and GN^-1/2 (seed 002, arXiv 2510.13680).

The update of the paper, in the identity basis (other bases: :mod:`precond.curvature.basis`):

.. math::

    \theta_{t} = \theta_{t-1} - \eta\, D_t\, u_t,\qquad
    D_t = \operatorname{diag}\big(|\hat h_t| + \lambda\big)^{p},\quad p \in \{-1, -\tfrac12\},
    \qquad D_{t,ii} = 0 \ \text{where}\ |\hat h_{t,i}| + \lambda = 0

with :math:`\hat h_t` the curvature diagonal (the Gauss-Newton / GGN diagonal, or an estimate of
it, or the Hessian diagonal) fed by :func:`precond.optim.functional.curvature_ema.update_curvature_ema`, kept as an EMA

.. math::

    h_k = \beta_2 h_{k-1} + (1-\beta_2)\, c_k,\qquad \hat h = h_k / (1-\beta_2^{k})

over the ``k`` curvature estimates :math:`c_1..c_k` received so far (``beta2 = 0``: the
latest estimate), :math:`\lambda` the damping, and :math:`u_t` the gradient or, with
``momentum`` :math:`\beta_1 > 0`, the bias-corrected EMA
:math:`\hat m_t = m_t/(1-\beta_1^t)`, :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t`.
Decoupled weight decay ``p *= 1 - lr*wd`` comes first.

**Non-positive curvature.** The GGN diagonal and its GNB estimate are :math:`\ge 0`; there
:math:`|\hat h| = \hat h` and the rule is the paper's :math:`(\hat h + \lambda)^p` bit for bit.
The Hessian diagonal and the Hutchinson estimate can be negative. Clipping them at 0 (the
rule before) turns every negative entry into the step :math:`\eta\,\lambda^{p} u`
(:math:`10^8\,\eta u` for GN^-1 at the default :math:`\lambda = 10^{-8}`). precond uses the magnitude
:math:`|\hat h|` instead, as saddle-free Newton does (Dauphin et al. 2014, arXiv 1406.2572;
Apollo's rectified :math:`|B|`, Ma 2020, arXiv 2009.13586): the coordinate still moves
downhill (against :math:`u`), and by exactly what a positive curvature of the same size
would give, so a negative entry never makes a step a positive one could not. Where
:math:`|\hat h| + \lambda = 0` (:math:`\lambda = 0` and :math:`\hat h = 0`, e.g. a dead ReLU
unit in the Newton setting) :math:`D = 0`: the coordinate does not move, instead of
:math:`0\cdot\infty = \mathrm{NaN}`. :func:`nonpositive_curvature_counts` counts both cases
(``GaussNewtonDiag`` warns once when one occurs).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._common import fast_impl, signed_grad, step_all, working_precision

POWERS = (-1.0, -0.5)


def check_power(power: object) -> float:
    """``power`` as a float, or ``ValueError`` unless it is -1 (GN^-1) or -1/2 (GN^-1/2)."""
    if isinstance(power, bool) or not isinstance(power, (int, float)):
        raise TypeError(f"power must be a number (-1 or -0.5), got {power!r}")
    for p in POWERS:
        if abs(float(power) - p) < 1e-12:
            return p
    raise ValueError(f"invalid power={power!r}: must be -1 (GN^-1) or -0.5 (GN^-1/2)")


def nonpositive_curvature_counts(curvatures: list[torch.Tensor], *, damping: float) -> tuple[int, int, int]:
    """``(negative, zero_undamped, total)`` over the curvature EMAs ``h``: entries ``h < 0``
    (where the step uses ``|h_hat|``), entries ``h == 0`` when ``damping == 0`` (where it
    takes no step), and the number of entries (``h_hat = h / (1 - beta2^k)`` has ``h``'s signs)."""
    if not curvatures:
        return 0, 0, 0
    neg = torch.stack([(h < 0).sum() for h in curvatures]).sum()
    zero = torch.stack([(h == 0).sum() for h in curvatures]).sum() if damping == 0.0 else neg.new_zeros(())
    return int(neg), int(zero), sum(h.numel() for h in curvatures)


def gauss_newton_preconditioner(h_hat: torch.Tensor, *, damping: float, power: float) -> torch.Tensor:
    """``D = (|h_hat| + damping)**power``, and ``D = 0`` where ``|h_hat| + damping == 0``
    (module docstring, Non-positive curvature). A new tensor; ``h_hat`` is not changed."""
    x = h_hat.abs().add_(damping)
    zero = x == 0.0 if damping == 0.0 else None  # x >= damping > 0 otherwise
    d = x.pow_(power)
    return d if zero is None else d.masked_fill_(zero, 0.0)


class GaussNewtonCoefficients(NamedTuple):
    """The per-tensor scalars of a GN^p step, in double, shared by the loop and the fast paths."""

    decay: float  # 1 - lr*wd (1 without weight decay)
    beta1: float  # the momentum
    bc1: float  # 1 - beta1^t (1 without momentum): m_hat = m / bc1
    bc2: float  # 1 - beta2^k (1 when beta2 = 0): h_hat = h / bc2
    damping: float
    neg_lr: float  # -lr


def gauss_newton_coefficients(
    step: int, curvature_step: int, *, lr: float, momentum: float, beta2: float, damping: float, weight_decay: float
) -> GaussNewtonCoefficients:
    """Scalars of step ``t = step`` after ``k = curvature_step`` curvature estimates."""
    return GaussNewtonCoefficients(
        decay=1.0 - lr * weight_decay if weight_decay != 0.0 else 1.0,
        beta1=momentum,
        bc1=1.0 - momentum**step if momentum > 0.0 else 1.0,
        bc2=1.0 - beta2**curvature_step if beta2 > 0.0 else 1.0,
        damping=damping,
        neg_lr=-lr,
    )


def curvature_counts(curvature_steps: list[torch.Tensor]) -> list[int]:
    """The curvature counts ``k`` as ints, or ``RuntimeError`` (nothing changed) if one is 0."""
    ks = [int(k) for k in torch.stack(curvature_steps).tolist()] if curvature_steps else []
    if any(k < 1 for k in ks):
        raise RuntimeError(
            "GaussNewtonDiag.step() before any curvature was received: call "
            "optimizer.update_curvature(diag) first (precond.curvature.CurvatureFeeder does it every k steps)"
        )
    return ks


def gauss_newton_diag(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    curvatures: list[torch.Tensor],
    curvature_steps: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    *,
    lr: float,
    power: float,
    momentum: float,
    beta2: float,
    damping: float,
    weight_decay: float,
    maximize: bool,
    impl: str = "loop",
) -> None:
    """Apply one GN^p step to every tensor (equations in the module docstring).

    ``exp_avgs`` may be empty when ``momentum == 0``. Every ``curvature_steps`` entry must
    be >= 1 (a curvature estimate received), else ``RuntimeError`` before anything changes.
    ``impl="foreach"``/``"fused"`` run :mod:`precond.optim.kernels.gauss_newton` (same
    scalars, :func:`gauss_newton_coefficients`).
    """
    if impl != "loop":
        return fast_impl("gauss_newton_diag", impl)(
            params, grads, exp_avgs, curvatures, curvature_steps, state_steps, lr=lr, power=power,
            momentum=momentum, beta2=beta2, damping=damping, weight_decay=weight_decay,
            maximize=maximize,
        )  # fmt: skip
    ks = curvature_counts(curvature_steps)
    for i, step in enumerate(step_all(state_steps)):
        c = gauss_newton_coefficients(
            step, ks[i], lr=lr, momentum=momentum, beta2=beta2, damping=damping, weight_decay=weight_decay
        )
        m = exp_avgs[i] if momentum > 0.0 else None
        with working_precision(params[i], grads[i], m, curvatures[i]) as (p, g, mm, h):
            g = signed_grad(g, maximize)
            if weight_decay != 0.0:
                p.mul_(c.decay)  # theta <- (1 - lr wd) theta
            if mm is not None:
                mm.mul_(c.beta1).add_(g, alpha=1.0 - c.beta1)  # m_t = b1 m_{t-1} + (1-b1) g_t
                u = mm / c.bc1  # m_hat_t = m_t / (1 - b1^t)
            else:
                u = g
            h_hat = h / c.bc2 if beta2 > 0.0 else h  # h_hat = h_k / (1 - b2^k)
            d = gauss_newton_preconditioner(h_hat, damping=c.damping, power=power)  # D = (|h_hat| + lambda)^p
            p.addcmul_(d, u, value=c.neg_lr)  # theta_t = theta_{t-1} - eta D u
