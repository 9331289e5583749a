r"""``foreach`` and ``fused`` AdaGrad-Norm (:func:`precond.optim.functional.adagrad_norm.adagrad_norm`).

One step over a scope (one param group, or all of them under ``scope="global"``):

.. math::

    u = \pm g + \lambda\theta,\qquad b_t^2 = b_{t-1}^2 + \sum_{\text{scope}} \|u\|^2,\qquad
    \theta \mathrel{-}= \frac{\gamma}{b_t + \epsilon}\, u

with the sum of squares in double, as the loop does. ``foreach``: ``torch._foreach_norm`` in
float64 per group, squared and summed, then ``torch._foreach_add_``. ``fused``: one call of the
C++ kernel (``csrc/adagrad_norm.cpp``) for the whole scope, given each tensor's row of
:class:`~precond.optim.functional.adagrad_norm.AdaGradNormCoefficients` and its group's pre-step,
which reduces in double over fixed blocks of the concatenated
elements (the same result for any number of threads), updates :math:`b^2` and applies the
step: it reads g (and p with weight decay) once for the norm, then p and g, and writes p
(4 floats per parameter, 5 with weight decay). Its norm needs every tensor of the scope, so a
scope holding a tensor the kernel does not take (float16, another device, a gradient laid out
unlike its parameter) runs the reference loop as a whole (``foreach`` off the CPU), and so
does an accumulator that is not a one-element CPU float64 tensor.
"""

from __future__ import annotations

import torch

from ..functional._common import register
from ..functional.adagrad_norm import Reduce, Scope, adagrad_norm, adagrad_norm_coefficients, adagrad_norm_scale
from . import _build
from ._host import fallback_impl, foreach_pre_step, increment_steps


def _all_params(groups: Scope) -> list[torch.Tensor]:
    return [p for params, _, _ in groups for p in params]


def _fallback(groups: Scope, accumulator: torch.Tensor, state_steps: list[torch.Tensor]) -> None:
    adagrad_norm(groups, accumulator, state_steps, impl=fallback_impl(_all_params(groups)))


@register("adagrad_norm", "fused")
def adagrad_norm_fused(groups: Scope, accumulator: torch.Tensor, state_steps: list[torch.Tensor], reduce: Reduce | None = None) -> None:
    if reduce is not None:  # the kernel sums the local norm and steps in one pass: no room for a reduction
        return adagrad_norm(groups, accumulator, state_steps, impl=fallback_impl(_all_params(groups)), reduce=reduce)
    params = _all_params(groups)
    if not params:
        return adagrad_norm(groups, accumulator, state_steps, impl="loop")
    ops = None if any(h.has_tensor() for _, _, h in groups) else _build.load()
    takes_acc = accumulator.dtype == torch.float64 and accumulator.device.type == "cpu" and accumulator.numel() == 1
    # (a CUDA tensor in the call would dispatch the CPU-only op to CUDA: decide here)
    if ops is None or not takes_acc or any(p.device.type != "cpu" for p in params):
        return _fallback(groups, accumulator, state_steps)
    grads = [g for _, gs, _ in groups for g in gs]
    rows, modes, factors, maximize = [], [], [], []  # one of each per tensor, from its group
    for ps, _, h in groups:
        pre = h.pre_step()
        rows += [adagrad_norm_coefficients(h)] * len(ps)
        modes += [pre.weight_decay] * len(ps)
        factors += [float(pre.factor)] * len(ps)
        maximize += [pre.maximize] * len(ps)
    table = torch.tensor(rows, dtype=torch.float64)
    skipped = ops.adagrad_norm_step(params, grads, table, modes, factors, maximize, accumulator)
    if skipped:  # nothing was changed: the whole scope takes the loop
        return _fallback(groups, accumulator, state_steps)
    increment_steps(state_steps)


@register("adagrad_norm", "foreach")
def adagrad_norm_foreach(groups: Scope, accumulator: torch.Tensor, state_steps: list[torch.Tensor], reduce: Reduce | None = None) -> None:
    if any(h.has_tensor() for _, _, h in groups):
        return adagrad_norm(groups, accumulator, state_steps, impl="loop", reduce=reduce)
    increment_steps(state_steps)
    sq = torch.zeros((), dtype=torch.float64, device=accumulator.device)
    squares: list[torch.Tensor] = []  # per tensor, for reduce
    effective = []
    for params, grads, h in groups:
        if not params:
            effective.append([])
            continue
        gs = foreach_pre_step(params, grads, h.pre_step())
        norms = torch._foreach_norm(gs, 2, dtype=torch.float64)  # ||u|| per tensor, in double
        if reduce is not None:
            squares += [n.square() for n in norms]
        else:
            by_device: dict[torch.device, list[torch.Tensor]] = {}
            for n in norms:
                by_device.setdefault(n.device, []).append(n)
            for ns in by_device.values():
                sq += torch.stack(ns).square().sum().to(sq.device)
        effective.append(gs)
    accumulator += sq if reduce is None else reduce(squares).to(accumulator.device)
    b = float(accumulator.sqrt())
    for (params, _, h), gs in zip(groups, effective):
        if params:
            torch._foreach_add_(params, gs, alpha=adagrad_norm_scale(b, adagrad_norm_coefficients(h)))
