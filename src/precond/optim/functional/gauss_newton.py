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
Decoupled weight decay ``p *= 1 - lr*wd`` comes first (the shared pre-step,
:mod:`precond.optim.functional._rule`).

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

The contract: :class:`GaussNewtonHyper`, :class:`GaussNewtonCoefficients` from
:func:`gauss_newton_coefficients` (of the step ``t`` and the curvature count ``k``); loop
:func:`_gauss_newton_tensor`, foreach and fused :mod:`precond.optim.kernels.gauss_newton`
(``kernels/csrc/gauss_newton.cpp``); tests ``tests/optim/test_fast_paths_curvature.py``,
``tests/curvature/test_optimizers.py``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar, Mapping, NamedTuple

import torch

from .. import _checks
from ._rule import Hyper, Rule, hp

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


@dataclass(frozen=True)
class GaussNewtonHyper(Hyper):
    """The hyperparameters of :class:`precond.optim.GaussNewtonDiag` (``estimator``,
    ``update_every``, ``curvature_samples``: settings of the whole optimizer, checked by
    :class:`precond.optim.curvature_base.CurvatureOptimizer`)."""

    decoupled: ClassVar[bool] = True

    lr: float = hp(1.0, _checks.lr())
    power: float = hp(-1.0, lambda name, value: check_power(value))
    momentum: float = hp(0.0, _checks.BETA)
    beta2: float = hp(0.0, _checks.BETA)
    damping: float = hp(1e-8, _checks.NON_NEGATIVE)
    weight_decay: float = hp(0.0, _checks.NON_NEGATIVE)
    _: KW_ONLY
    estimator: str = "ggn"
    update_every: int = 1
    curvature_samples: int = 1
    maximize: bool = False


class GaussNewtonCoefficients(NamedTuple):
    """The per-tensor scalars of a GN^p step, in double, shared by the loop and the fast paths."""

    beta1: float  # the momentum
    bc1: float  # 1 - beta1^t (1 without momentum): m_hat = m / bc1
    bc2: float  # 1 - beta2^k (1 when beta2 = 0): h_hat = h / bc2
    damping: float
    neg_lr: float  # -lr


def gauss_newton_coefficients(h: GaussNewtonHyper, step: int, curvature_step: int) -> GaussNewtonCoefficients:
    """Scalars of step ``t = step`` after ``k = curvature_step`` curvature estimates."""
    return GaussNewtonCoefficients(
        beta1=h.momentum,
        bc1=1.0 - h.momentum**step if h.momentum > 0.0 else 1.0,
        bc2=1.0 - h.beta2**curvature_step if h.beta2 > 0.0 else 1.0,
        damping=h.damping,
        neg_lr=-h.lr,
    )


def check_curvature_counts(state: Mapping[str, list[Any]]) -> None:
    """``RuntimeError`` (before anything changes) where a parameter never received curvature."""
    counts = state["curvature_step"]
    if counts and float(torch.stack(counts).min()) < 1:
        raise RuntimeError(
            "GaussNewtonDiag.step() before any curvature was received for some parameter: call "
            "optimizer.update_curvature(diag) first (precond.curvature.CurvatureFeeder does it every k steps)"
        )


def _gauss_newton_tensor(p, g, m, h, c: GaussNewtonCoefficients, hyper: GaussNewtonHyper) -> None:
    if hyper.momentum > 0.0:
        m.mul_(c.beta1).add_(g, alpha=1.0 - c.beta1)  # m_t = b1 m_{t-1} + (1-b1) g_t
        u = m / c.bc1  # m_hat_t = m_t / (1 - b1^t)
    else:
        u = g
    h_hat = h / c.bc2 if hyper.beta2 > 0.0 else h  # h_hat = h_k / (1 - b2^k)
    d = gauss_newton_preconditioner(h_hat, damping=c.damping, power=hyper.power)  # D = (|h_hat| + lambda)^p
    p.addcmul_(d, u, value=c.neg_lr)  # theta_t = theta_{t-1} - eta D u


#: ``gauss_newton_diag(params, grads, state, hyper, impl="loop")``: one GN^p step (state lists
#: ``exp_avg`` with momentum, ``curvature``, and ``curvature_step``, the counts k, each >= 1:
#: else ``RuntimeError`` before anything changes)
gauss_newton_diag = Rule("gauss_newton_diag", GaussNewtonHyper, GaussNewtonCoefficients, gauss_newton_coefficients,
                         ("exp_avg", "curvature"), _gauss_newton_tensor, optional={"exp_avg": "momentum"},
                         counts=("curvature_step",),
                         check=check_curvature_counts)  # fmt: skip
