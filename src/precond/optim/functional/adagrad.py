r"""AdaGrad (Duchi, Hazan, Singer 2011).

:math:`s_t = s_{t-1} + g_t^2`, :math:`\theta \mathrel{-}= \gamma_t\, g_t / (\sqrt{s_t} + \epsilon)`
(torch's form, default) or :math:`\gamma_t\, g_t / \sqrt{s_t + \epsilon}` (the lecture notes,
``eps_inside_sqrt=True``), with :math:`s_0` = ``initial_accumulator_value`` and
:math:`\gamma_t = \gamma / (1 + (t-1)\,\text{lr\_decay})` as ``torch.optim.Adagrad``.
The anisotropic-smoothness paper's form (seed 001: :math:`v_{-1} = \epsilon\mathbf{1}`,
divide by :math:`\sqrt{v_t}`) is ``initial_accumulator_value=eps, eps=0``. Weight decay is
L2 (the shared pre-step, :mod:`precond.optim.functional._rule`).

The contract: :class:`AdaGradHyper`, :class:`AdaGradCoefficients` from
:func:`adagrad_coefficients`; loop :func:`_adagrad_tensor`, foreach and fused
:mod:`precond.optim.kernels.adagrad` (``kernels/csrc/adagrad.cpp``); tests
``tests/optim/test_fast_paths.py``, ``tests/optim/test_against_torch.py``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, Mapping, NamedTuple

from .. import _checks
from ._common import addcdiv_scaled_, sqrt_eps
from ._rule import Hyper, Rule, hp


@dataclass(frozen=True)
class AdaGradHyper(Hyper):
    """The hyperparameters of :class:`precond.optim.AdaGrad` (torch's ``Adagrad`` order)."""

    lr: float = hp(1e-2, _checks.lr())
    lr_decay: float = hp(0.0, _checks.NON_NEGATIVE)
    weight_decay: float = hp(0.0, _checks.NON_NEGATIVE)
    initial_accumulator_value: float = hp(0.0, _checks.NON_NEGATIVE)
    eps: float = hp(1e-10, _checks.NON_NEGATIVE)
    _: KW_ONLY
    eps_inside_sqrt: bool = False
    maximize: bool = False

    @classmethod
    def check_together(cls, values: Mapping[str, Any]) -> None:
        _checks.check_denominator_start(values)


class AdaGradCoefficients(NamedTuple):
    """Per-step scalars of AdaGrad, in double."""

    neg_clr: float  # -lr / (1 + (t-1) lr_decay): minus the step's decayed step size
    eps: float


def adagrad_coefficients(h: AdaGradHyper, step: int) -> AdaGradCoefficients:
    return AdaGradCoefficients(-(h.lr / (1.0 + (step - 1) * h.lr_decay)), h.eps)


def _adagrad_tensor(p, g, s, c: AdaGradCoefficients, h: AdaGradHyper) -> None:
    s.addcmul_(g, g, value=1.0)
    addcdiv_scaled_(p, g, sqrt_eps(s, c.eps, h.eps_inside_sqrt), c.neg_clr)


#: ``adagrad(params, grads, state, hyper, impl="loop")``: one AdaGrad step (state list ``sum``)
adagrad = Rule("adagrad", AdaGradHyper, AdaGradCoefficients, adagrad_coefficients, ("sum",), _adagrad_tensor)
