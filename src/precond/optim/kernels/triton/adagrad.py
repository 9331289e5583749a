r"""AdaGrad in Triton (:data:`precond.optim.functional.adagrad.adagrad`), element for element the
loop and ``csrc/adagrad.cpp``; the decayed step size from the step in the kernel.

.. math::

    s \leftarrow s + g^2,\qquad p \mathrel{+}= -\frac{\gamma}{1 + (t-1)\,\text{lr\_decay}}\,\frac{g}{\sqrt{s} + \epsilon}
"""

from __future__ import annotations

import triton
import triton.language as tl

from ...functional.adagrad import adagrad
from . import _lang as L
from ._driver import TritonRule


@L.helper
def adagrad_coefficients(hyper, t):
    """:class:`AdaGradCoefficients` of step ``t`` from ``(factor, lr, lr_decay, eps)``."""
    lr = tl.load(hyper + 1)
    lr_decay = tl.load(hyper + 2)
    eps = tl.load(hyper + 3)
    return -(lr / (1.0 + (t - 1.0) * lr_decay)), eps


@triton.jit
def adagrad_kernel(ptrs, n_tensors, numels, chunk_tensor, chunk_start, hyper, scale_ptr, skip_ptr,
                   DT: tl.constexpr, CT: tl.constexpr, WD: tl.constexpr, MAXIMIZE: tl.constexpr,
                   HAS_SCALE: tl.constexpr, HAS_SKIP: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr, VEC: tl.constexpr,
                   EPS_INSIDE: tl.constexpr):  # fmt: skip
    t, start, n = L.chunk(chunk_tensor, chunk_start, numels, skip_ptr, HAS_SKIP, VEC)
    p_ptr = L.tensor_ptr(ptrs, 0, n_tensors, t, DT, VEC)
    g_ptr = L.tensor_ptr(ptrs, 1, n_tensors, t, DT, VEC)
    s_ptr = L.tensor_ptr(ptrs, 2, n_tensors, t, DT, VEC)
    k = adagrad_coefficients(hyper, L.step_of(ptrs, 3, n_tensors, t))
    neg_clr, eps = k[0].to(CT), k[1].to(CT)
    for i in range(0, CHUNK, BLOCK):
        offs, mask = L.block(start, i, n, BLOCK, VEC)
        p, g = L.pre_step(p_ptr, g_ptr, offs, mask, hyper, scale_ptr, CT, HAS_SCALE, WD, MAXIMIZE)
        s = L.load(s_ptr, offs, mask, CT) + g * g
        p = p + neg_clr * L.div(g, L.sqrt_eps(s, eps, EPS_INSIDE))
        L.store(p_ptr, offs, p, mask)
        L.store(s_ptr, offs, s, mask)


TritonRule(adagrad, adagrad_kernel, adagrad_coefficients, lambda h: (h.lr, h.lr_decay, h.eps), ("EPS_INSIDE",),
           lambda h: (bool(h.eps_inside_sqrt),))  # fmt: skip
