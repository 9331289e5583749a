r"""AdaGrad-Norm (Ward, Wu, Bottou 2019): one scalar step size for all coordinates.

:math:`b_t^2 = b_{t-1}^2 + \|g_t\|^2`, :math:`\theta \mathrel{-}= \gamma\, g_t / (b_t + \epsilon)`,
with :math:`b_0^2` = ``initial_accumulator_value``. The norm runs over every coordinate of
the param group (``scope="group"``) or of all groups (``scope="global"``): the
"uniform step size" comparator of the anisotropic-smoothness paper (seed 001). Weight decay
is L2 (the shared pre-step, :mod:`precond.optim.functional._rule`: ``g`` below is the
effective gradient).

The contract: :class:`AdaGradNormHyper` per param group, :class:`AdaGradNormCoefficients`
from :func:`adagrad_norm_coefficients` (the scale :math:`-\gamma/(b_t+\epsilon)` is computed
from them once :math:`b_t` is known); loop :func:`adagrad_norm`, foreach and fused
:mod:`precond.optim.kernels.adagrad_norm` (``kernels/csrc/adagrad_norm.cpp``); tests
``tests/optim/test_fast_paths_curvature.py``, ``tests/optim/test_against_numpy.py``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, Callable, Mapping, NamedTuple

import torch

from .. import _checks
from ._common import fast_impl, step_all
from ._rule import COEFFICIENTS, Hyper, apply_pre_step, hp

SCOPES = ("group", "global")


@dataclass(frozen=True)
class AdaGradNormHyper(Hyper):
    """The hyperparameters of :class:`precond.optim.AdaGradNorm` (``scope`` holds for the whole optimizer)."""

    lr: float = hp(1e-1, _checks.lr())
    initial_accumulator_value: float = hp(0.0, _checks.NON_NEGATIVE)
    eps: float = hp(1e-10, _checks.NON_NEGATIVE)
    weight_decay: float = hp(0.0, _checks.NON_NEGATIVE)
    _: KW_ONLY
    scope: str = hp("group", _checks.one_of(*SCOPES))
    maximize: bool = False

    @classmethod
    def check_together(cls, values: Mapping[str, Any]) -> None:
        _checks.check_denominator_start(values)


class AdaGradNormCoefficients(NamedTuple):
    """The scalars of one param group's AdaGrad-Norm step (the kernel's row for each of its tensors)."""

    lr: float
    eps: float


COEFFICIENTS["adagrad_norm"] = AdaGradNormCoefficients


def adagrad_norm_coefficients(h: AdaGradNormHyper) -> AdaGradNormCoefficients:
    return AdaGradNormCoefficients(h.lr, h.eps)


def adagrad_norm_scale(b: float, c: AdaGradNormCoefficients) -> float:
    r"""The step's multiplier of the gradient, :math:`-\gamma / (b_t + \epsilon)` (loop and foreach)."""
    return -c.lr / (b + c.eps)


Scope = list[tuple[list[torch.Tensor], list[torch.Tensor], AdaGradNormHyper]]


#: ``reduce(squares) -> total``: the squared norms of a scope's tensors (one 0-dim double each,
#: in the scope's order) to their sum over every shard on every rank (FSDP2:
#: :func:`precond.optim.distributed.shard_sum`); ``None``: the plain sum
Reduce = Callable[[list[torch.Tensor]], torch.Tensor]


def squared_norm(squares: list[torch.Tensor], reduce: Reduce | None, device: torch.device) -> torch.Tensor:
    r""":math:`\|g_t\|^2` of a scope from its tensors' squared norms (0-dim double)."""
    if reduce is not None:
        return reduce(squares).to(device=device, dtype=torch.float64)
    sq = torch.zeros((), dtype=torch.float64, device=device)
    for s in squares:
        sq += s.to(sq.device)
    return sq


def adagrad_norm(groups: Scope, accumulator: torch.Tensor, state_steps: list[torch.Tensor], *, impl: str = "loop",
                 reduce: Reduce | None = None) -> None:  # fmt: skip
    r"""One step over the ``(params, grads, hyper)`` of each param group of one scope.

    ``accumulator`` is the scope's 0-dim float64 :math:`b^2`, updated in place; pass all
    groups at once for a global accumulator, one group at a time for per-group ones.
    ``impl="foreach"``/``"fused"`` run :mod:`precond.optim.kernels.adagrad_norm`: the same
    sum of squares in double (in another order, so equal to rounding) and the same step size
    :math:`-\gamma/(b_t + \epsilon)` in double. ``reduce`` (loop and foreach; see
    :data:`Reduce`) sums the squares over the shards of sharded tensors.
    """
    if impl != "loop":
        extra = {} if reduce is None else {"reduce": reduce}
        return fast_impl("adagrad_norm", impl)(groups, accumulator, state_steps, **extra)
    step_all(state_steps)
    effective = []
    squares = []
    for params, grads, h in groups:
        pre = h.pre_step()
        gs = []
        for p, g in zip(params, grads):
            g = apply_pre_step(p, g, pre)
            squares.append(g.double().square().sum())  # ||g||^2 of this tensor, in double
            gs.append(g)
        effective.append(gs)
    accumulator += squared_norm(squares, reduce, accumulator.device)  # b_t^2 = b_{t-1}^2 + ||g_t||^2
    b = float(accumulator.sqrt())
    for (params, _, h), gs in zip(groups, effective):
        scale = adagrad_norm_scale(b, adagrad_norm_coefficients(h))
        for p, g in zip(params, gs):
            p.add_(g.to(p.dtype), alpha=scale)  # theta -= lr g_t / (b_t + eps)
