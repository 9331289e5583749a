"""``foreach`` and ``fused`` SGD (:func:`precond.optim.functional.sgd`), both momentum styles.

No per-step scalar but "first step" (heavy-ball momentum starts with ``v = g``).
"""

from __future__ import annotations

import torch

from ..functional._common import register
from ..functional.sgd import sgd
from ._host import foreach_prelude, fused_step, run_foreach

_STYLE = {"heavy_ball": 0, "ema": 1}


@register("sgd", "fused")
def sgd_fused(params, grads, momentum_buffers, state_steps, *, lr, momentum, dampening, nesterov, momentum_style,
              weight_decay, decoupled_weight_decay, maximize) -> None:  # fmt: skip
    hp = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, momentum_style=momentum_style,
              weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)  # fmt: skip
    decay = 1.0 - lr * weight_decay if (weight_decay != 0.0 and decoupled_weight_decay) else 1.0
    l2 = weight_decay if (weight_decay != 0.0 and not decoupled_weight_decay) else 0.0
    style = _STYLE[momentum_style] if momentum != 0.0 else 2

    def row(step: int):
        return (-lr, momentum, 1.0 - dampening, 1.0 if step == 1 else 0.0, decay, l2, 1.0 - momentum)

    def launch(ops, lists, table):
        return ops.sgd_step(*lists, table, style, bool(nesterov), bool(maximize))

    fused_step(sgd, (params, grads, momentum_buffers), state_steps, hp, row, launch)


@register("sgd", "foreach")
def sgd_foreach(params, grads, momentum_buffers, state_steps, *, lr, momentum, dampening, nesterov, momentum_style,
                weight_decay, decoupled_weight_decay, maximize) -> None:  # fmt: skip
    hp = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, momentum_style=momentum_style,
              weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)  # fmt: skip

    def body(lists, step: int) -> None:
        p, g, v = lists
        decoupled = weight_decay != 0.0 and decoupled_weight_decay
        g = foreach_prelude(p, g, maximize=maximize, l2=0.0 if decoupled else weight_decay,
                            decay=1.0 - lr * weight_decay if decoupled else 1.0)
        if momentum != 0.0:
            if momentum_style == "ema":
                torch._foreach_mul_(v, momentum)
                torch._foreach_add_(v, g, alpha=1.0 - momentum)
                if nesterov:
                    d = torch._foreach_mul(v, momentum)
                    torch._foreach_add_(d, g, alpha=1.0 - momentum)
                    g = d
                else:
                    g = v
            else:
                if step == 1:
                    torch._foreach_copy_(v, g)
                else:
                    torch._foreach_mul_(v, momentum)
                    torch._foreach_add_(v, g, alpha=1.0 - dampening)
                g = torch._foreach_add(g, v, alpha=momentum) if nesterov else v
        torch._foreach_add_(p, g, alpha=-lr)

    run_foreach(sgd, (params, grads, momentum_buffers), state_steps, hp, body)
