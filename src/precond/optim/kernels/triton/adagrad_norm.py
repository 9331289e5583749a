r"""AdaGrad-Norm in Triton (:func:`precond.optim.functional.adagrad_norm.adagrad_norm`): two
launches per param group of a scope, the accumulator on the device.

.. math::

    u = \pm g + \lambda\theta,\qquad b_t^2 = b_{t-1}^2 + \sum_{\text{scope}} \|u\|^2,\qquad
    \theta \mathrel{-}= \frac{\gamma}{b_t + \epsilon}\, u

Pass 1 (:func:`sumsq_kernel`) writes one float64 partial sum of :math:`u^2` per chunk; their
sum (``torch.sum`` in double on the device, a fixed order for a fixed plan) is added to
:math:`b^2`. Pass 2 (:func:`apply_kernel`) reads :math:`b^2` from the device and the group's
``(lr, eps)``, and applies the step: g read twice, p read and written (p read in pass 1 too
under weight decay), as the C++ kernel. No host sync when the accumulator is on the params'
device (:class:`precond.optim.AdaGradNorm` keeps it there on this path; a CPU accumulator is
copied there and back: one sync). GradScaler's ``grad_scale`` divides ``g`` in both passes; a
set ``skip`` flag (GradScaler's ``found_inf`` or the non-finite check) masks every block of
both, so :math:`b^2`, the params and the step counters stay as they were, on the device.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import triton
import triton.language as tl

from ...functional.adagrad_norm import Scope, adagrad_norm, adagrad_norm_coefficients
from . import _lang as L
from . import _plan
from ._config import CONFIG, TL_DTYPES
from ._driver import buckets, hyper_row


@triton.jit
def sumsq_kernel(ptrs, n_tensors, numels, chunk_tensor, chunk_start, hyper, scale_ptr, skip_ptr, out, DT: tl.constexpr,
                 WD: tl.constexpr, MAXIMIZE: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_SKIP: tl.constexpr,
                 BLOCK: tl.constexpr, CHUNK: tl.constexpr, VEC: tl.constexpr):  # fmt: skip
    t, start, n = L.chunk(chunk_tensor, chunk_start, numels, skip_ptr, HAS_SKIP, VEC)  # skipped: n = 0, a sum of 0
    p_ptr = L.tensor_ptr(ptrs, 0, n_tensors, t, DT, VEC)
    g_ptr = L.tensor_ptr(ptrs, 1, n_tensors, t, DT, VEC)
    acc = tl.zeros((BLOCK,), dtype=tl.float64)
    for i in range(0, CHUNK, BLOCK):
        offs, mask = L.block(start, i, n, BLOCK, VEC)
        p, g = L.pre_step(p_ptr, g_ptr, offs, mask, hyper, scale_ptr, tl.float64, HAS_SCALE, WD, MAXIMIZE)  # (-g + wd p)^2 under L2
        acc += g * g
    tl.store(out + tl.program_id(0), tl.sum(acc, axis=0))


@triton.jit
def apply_kernel(ptrs, n_tensors, numels, chunk_tensor, chunk_start, hyper, scale_ptr, skip_ptr, acc_ptr,
                 DT: tl.constexpr, CT: tl.constexpr, WD: tl.constexpr, MAXIMIZE: tl.constexpr, HAS_SCALE: tl.constexpr,
                 HAS_SKIP: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr, VEC: tl.constexpr):  # fmt: skip
    t, start, n = L.chunk(chunk_tensor, chunk_start, numels, skip_ptr, HAS_SKIP, VEC)
    p_ptr = L.tensor_ptr(ptrs, 0, n_tensors, t, DT, VEC)
    g_ptr = L.tensor_ptr(ptrs, 1, n_tensors, t, DT, VEC)
    scale = (-tl.load(hyper + 1) / (tl.sqrt(tl.load(acc_ptr)) + tl.load(hyper + 2))).to(CT)  # -lr / (b_t + eps)
    for i in range(0, CHUNK, BLOCK):
        offs, mask = L.block(start, i, n, BLOCK, VEC)
        p, g = L.pre_step(p_ptr, g_ptr, offs, mask, hyper, scale_ptr, CT, HAS_SCALE, WD, MAXIMIZE)
        L.store(p_ptr, offs, p + scale * g, mask)


def takes(groups: Scope, device: torch.device) -> bool:
    """Whether the kernels take every tensor of the scope: on ``device``, float32/float64/bfloat16,
    contiguous, its gradient of its dtype (else the caller runs the loop)."""
    return all(p.device == device and p.dtype in TL_DTYPES and g.dtype == p.dtype and g.device == device
               and p.is_contiguous() and g.is_contiguous() for ps, gs, _ in groups for p, g in zip(ps, gs))  # fmt: skip


def adagrad_norm_step(groups: Scope, accumulator: torch.Tensor, state_steps: list[torch.Tensor], *,
                      grad_scale: Optional[torch.Tensor] = None, skip: Optional[torch.Tensor] = None) -> None:  # fmt: skip
    """One AdaGrad-Norm step over a scope (the signature of the other paths). Every tensor on
    one device, of a kernel dtype, contiguous, its gradient of its dtype (:func:`takes`); L2
    weight decay only (AdaGrad-Norm's); else ``ValueError``. ``grad_scale``: divide the
    gradients by it (GradScaler's scale); ``skip``: a 0-dim device tensor, nonzero to leave
    :math:`b^2`, the params and the counters unchanged (as :func:`._driver.step`)."""
    params = [p for ps, _, _ in groups for p in ps]
    if not params:
        return
    device = params[0].device
    if not takes(groups, device):
        raise ValueError("adagrad_norm_step (Triton): every tensor on one device, float32/float64/bfloat16, "
                         "contiguous, with a gradient of its dtype; use the loop for others")  # fmt: skip
    acc = accumulator if accumulator.device == device else accumulator.to(device)
    ptrs = dict(scale_ptr=acc if grad_scale is None else grad_scale, skip_ptr=acc if skip is None else skip)
    flags = dict(HAS_SCALE=grad_scale is not None, HAS_SKIP=skip is not None, **CONFIG.launch_options())
    plans = []
    sums = []
    for ps, gs, h in groups:
        pre = h.pre_step()
        c = adagrad_norm_coefficients(h)
        row = hyper_row([float(pre.factor), c.lr, c.eps], device)
        for dtype, idx in buckets(ps).items():
            columns = [[ps[i] for i in idx], [gs[i] for i in idx]]
            for plan in _plan.plan(columns, CONFIG.chunk, device, _plan.vector_width(columns, ps[idx[0]].element_size())):
                part = torch.empty(plan.n_chunks, dtype=torch.float64, device=device)
                sumsq_kernel[(plan.n_chunks,)](plan.ptrs, plan.n_tensors, plan.numels, plan.chunk_tensor, plan.chunk_start,
                                               row, out=part, DT=TL_DTYPES[dtype], WD=L.WD_CODES[pre.weight_decay],
                                               MAXIMIZE=bool(pre.maximize), VEC=plan.vec, **ptrs, **flags)  # fmt: skip
                sums.append(part.sum())
                plans.append((plan, row, dtype, pre))
    if sums:
        acc += torch.stack(sums).sum()  # skipped: every partial sum is 0
    for plan, row, dtype, pre in plans:
        ct = torch.float64 if dtype == torch.float64 else torch.float32
        apply_kernel[(plan.n_chunks,)](plan.ptrs, plan.n_tensors, plan.numels, plan.chunk_tensor, plan.chunk_start, row,
                                       acc_ptr=acc, DT=TL_DTYPES[dtype], CT=TL_DTYPES[ct], WD=L.WD_CODES[pre.weight_decay],
                                       MAXIMIZE=bool(pre.maximize), VEC=plan.vec, **ptrs, **flags)  # fmt: skip
    if acc is not accumulator:
        accumulator.copy_(acc)
    if state_steps:
        torch._foreach_add_(state_steps, 1.0)
        if skip is not None:
            torch._foreach_add_(state_steps, skip, alpha=-1.0)  # a skipped step is not counted


def optimizer_step(opt: Any, groups: Scope, accumulator: torch.Tensor, state_steps: list[torch.Tensor]) -> None:
    """What :class:`precond.optim.AdaGradNorm` runs for one scope on the Triton path: this step's
    GradScaler scale and skip flag (:func:`._driver.begin_step`) on the device; a scope holding a
    tensor the kernels do not take (float16, non-contiguous) runs the loop (``foreach`` off the
    CPU), reading the flag on the host and unscaling there (one sync, on that path only)."""
    scale, skip = getattr(opt, "grad_scale", None), opt.__dict__.get("_triton_skip")
    params = [p for ps, _, _ in groups for p in ps]
    if params and takes(groups, params[0].device):
        return adagrad_norm_step(groups, accumulator, state_steps, grad_scale=scale, skip=skip)
    if skip is not None and float(skip) != 0.0:
        return
    if scale is not None:
        groups = [(ps, [g / scale.to(g.device, g.dtype) for g in gs], h) for ps, gs, h in groups]
    adagrad_norm(groups, accumulator, state_steps, impl="loop" if all(p.is_cpu for p in params) else "foreach")
