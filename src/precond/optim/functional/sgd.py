r"""Gradient descent with heavy-ball or EMA momentum, Nesterov, and L2 or decoupled decay.

Two momentum forms of the lecture notes (seed 003):

* heavy ball, ``momentum_style="heavy_ball"`` (``torch.optim.SGD``):
  :math:`v_t = \beta v_{t-1} + (1-\tau) g_t` with :math:`v_1 = g_1`, step
  :math:`\theta \mathrel{-}= \gamma v_t` (Nesterov: :math:`\gamma (g_t + \beta v_t)`);
* EMA, ``momentum_style="ema"`` (the notes' slide): :math:`v_t = \beta v_{t-1} + (1-\beta) g_t`,
  :math:`v_0 = 0`, step :math:`\theta \mathrel{-}= \gamma v_t` (Nesterov:
  :math:`\gamma(\beta v_t + (1-\beta) g_t)`).

Weight decay is L2 (:math:`g \leftarrow g + \lambda\theta`) or, with
``decoupled_weight_decay``, :math:`\theta \leftarrow (1-\gamma\lambda)\theta` first (the shared
pre-step, :mod:`precond.optim.functional._rule`).

The contract: :class:`SGDHyper`, :class:`SGDCoefficients` from :func:`sgd_coefficients`; loop
:func:`_sgd_tensor`, foreach and fused :mod:`precond.optim.kernels.sgd` (``kernels/csrc/sgd.cpp``);
tests ``tests/optim/test_fast_paths.py``, ``tests/optim/test_against_torch.py``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar, Mapping, NamedTuple

from .. import _checks
from ._common import add_scaled_
from ._rule import Hyper, Rule, hp

MOMENTUM_STYLES = ("heavy_ball", "ema")


@dataclass(frozen=True)
class SGDHyper(Hyper):
    """The hyperparameters of :class:`precond.optim.SGD`."""

    decoupled: ClassVar[str] = "decoupled_weight_decay"

    lr: float = hp(1e-3, _checks.lr())
    momentum: float = hp(0.0, _checks.BETA)
    dampening: float = hp(0.0, _checks.within(0.0, 1.0))
    weight_decay: float = hp(0.0, _checks.NON_NEGATIVE)
    nesterov: bool = False
    _: KW_ONLY
    momentum_style: str = hp("heavy_ball", _checks.one_of(*MOMENTUM_STYLES))
    decoupled_weight_decay: bool = False
    maximize: bool = False

    @classmethod
    def check_together(cls, values: Mapping[str, Any]) -> None:
        if values["nesterov"] and (values["momentum"] <= 0 or (values["momentum_style"] == "heavy_ball" and values["dampening"] != 0)):
            raise ValueError("invalid nesterov=True: needs momentum > 0 (and dampening = 0 with heavy-ball momentum)")

    @property
    def style(self) -> str:
        """The momentum buffer's form: ``"heavy_ball"``, ``"ema"`` or ``"none"`` (momentum 0)."""
        return self.momentum_style if self.momentum != 0.0 else "none"


class SGDCoefficients(NamedTuple):
    """Per-step scalars of SGD, in double."""

    neg_lr: float
    momentum: float
    one_m_dampening: float
    first_step: float  # 1 at step 1 (heavy-ball momentum starts with v = g), else 0
    one_m_momentum: float


def sgd_coefficients(h: SGDHyper, step: int) -> SGDCoefficients:
    return SGDCoefficients(-h.lr, h.momentum, 1.0 - h.dampening, 1.0 if step == 1 else 0.0, 1.0 - h.momentum)


def _sgd_tensor(p, g, v, c: SGDCoefficients, h: SGDHyper) -> None:
    if h.style == "ema":
        v.mul_(c.momentum).add_(g, alpha=c.one_m_momentum)
        g = v.mul(c.momentum).add_(g, alpha=c.one_m_momentum) if h.nesterov else v
    elif h.style == "heavy_ball":
        if c.first_step:
            v.copy_(g)
        else:
            v.mul_(c.momentum).add_(g, alpha=c.one_m_dampening)
        g = g.add(v, alpha=c.momentum) if h.nesterov else v
    add_scaled_(p, g, c.neg_lr)


#: ``sgd(params, grads, state, hyper, impl="loop")``: one SGD step (state list
#: ``momentum_buffer``, unused without momentum)
sgd = Rule("sgd", SGDHyper, SGDCoefficients, sgd_coefficients, ("momentum_buffer",), _sgd_tensor,
           optional={"momentum_buffer": "momentum"})  # fmt: skip
