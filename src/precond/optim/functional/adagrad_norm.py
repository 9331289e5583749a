r"""AdaGrad-Norm (Ward, Wu, Bottou 2019): one scalar step size for all coordinates.

:math:`b_t^2 = b_{t-1}^2 + \|g_t\|^2`, :math:`\theta \mathrel{-}= \gamma\, g_t / (b_t + \epsilon)`,
with :math:`b_0^2` = ``initial_accumulator_value``. The norm runs over every coordinate of
the param group (``scope="group"``) or of all groups (``scope="global"``): the
"uniform step size" comparator of the anisotropic-smoothness paper (seed 001).
"""

from __future__ import annotations

import torch

from ._common import fast_impl, signed_grad, step_all


def adagrad_norm_scale(b: float, *, lr: float, eps: float) -> float:
    r"""The step's multiplier of the gradient, :math:`-\gamma / (b_t + \epsilon)` (loop and foreach)."""
    return -lr / (b + eps)


def adagrad_norm(
    groups: list[tuple[list[torch.Tensor], list[torch.Tensor], dict]],
    accumulator: torch.Tensor,
    state_steps: list[torch.Tensor],
    *,
    impl: str = "loop",
) -> None:
    r"""One step over the ``(params, grads, {"lr", "eps", "weight_decay", "maximize"})`` of one scope.

    ``accumulator`` is the scope's 0-dim float64 :math:`b^2`, updated in place; pass all
    groups at once for a global accumulator, one group at a time for per-group ones.
    ``impl="foreach"``/``"fused"`` run :mod:`precond.optim.kernels.adagrad_norm`: the same
    sum of squares in double (in another order, so equal to rounding) and the same step size
    :math:`-\gamma/(b_t + \epsilon)` in double.
    """
    if impl != "loop":
        return fast_impl("adagrad_norm", impl)(groups, accumulator, state_steps)
    step_all(state_steps)
    effective = []
    sq = torch.zeros((), dtype=torch.float64, device=accumulator.device)
    for params, grads, hp in groups:
        gs = []
        for p, g in zip(params, grads):
            g = signed_grad(g, hp["maximize"])
            if hp["weight_decay"] != 0.0:
                g = g.add(p, alpha=hp["weight_decay"])
            sq += g.double().square().sum().to(sq.device)  # ||g_t||^2, in double
            gs.append(g)
        effective.append(gs)
    accumulator += sq  # b_t^2 = b_{t-1}^2 + ||g_t||^2
    b = float(accumulator.sqrt())
    for (params, _, hp), gs in zip(groups, effective):
        scale = adagrad_norm_scale(b, lr=hp["lr"], eps=hp["eps"])
        for p, g in zip(params, gs):
            p.add_(g.to(p.dtype), alpha=scale)  # theta -= lr g_t / (b_t + eps)
