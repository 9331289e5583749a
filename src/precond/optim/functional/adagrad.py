r"""AdaGrad (Duchi, Hazan, Singer 2011).

:math:`s_t = s_{t-1} + g_t^2`, :math:`\theta \mathrel{-}= \gamma_t\, g_t / (\sqrt{s_t} + \epsilon)`
(torch's form, default) or :math:`\gamma_t\, g_t / \sqrt{s_t + \epsilon}` (the lecture notes,
``eps_inside_sqrt=True``), with :math:`s_0` = ``initial_accumulator_value`` and
:math:`\gamma_t = \gamma / (1 + (t-1)\,\text{lr\_decay})` as ``torch.optim.Adagrad``.
The anisotropic-smoothness paper's form (seed 001: :math:`v_{-1} = \epsilon\mathbf{1}`,
divide by :math:`\sqrt{v_t}`) is ``initial_accumulator_value=eps, eps=0``.
"""

from __future__ import annotations

import torch

from ._common import addcdiv_scaled_, fast_impl, signed_grad, step_all, working_precision


def adagrad_lr(step: int, *, lr: float, lr_decay: float) -> float:
    """The step size of step ``step``, ``lr / (1 + (t-1) lr_decay)`` (used by the loop and the fast paths)."""
    return lr / (1.0 + (step - 1) * lr_decay)


def adagrad(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    state_sums: list[torch.Tensor],
    state_steps: list[torch.Tensor],
    *,
    lr: float,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    eps_inside_sqrt: bool,
    maximize: bool,
    impl: str = "loop",
) -> None:
    if impl != "loop":
        return fast_impl("adagrad", impl)(
            params, grads, state_sums, state_steps, lr=lr, lr_decay=lr_decay,
            weight_decay=weight_decay, eps=eps, eps_inside_sqrt=eps_inside_sqrt, maximize=maximize,
        )  # fmt: skip
    for i, step in enumerate(step_all(state_steps)):
        with working_precision(params[i], grads[i], state_sums[i]) as (p, g, s):
            g = signed_grad(g, maximize)
            if weight_decay != 0.0:
                g = g.add(p, alpha=weight_decay)
            clr = adagrad_lr(step, lr=lr, lr_decay=lr_decay)
            s.addcmul_(g, g, value=1.0)
            std = (s + eps).sqrt_() if eps_inside_sqrt else s.sqrt().add_(eps)
            addcdiv_scaled_(p, g, std, -clr)
