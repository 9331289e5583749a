r"""GaussNewtonDiag (GN^-1, GN^-1/2) in Triton
(:data:`precond.optim.functional.gauss_newton.gauss_newton_diag`), element for element the loop
and ``csrc/gauss_newton.cpp``; the bias corrections from each tensor's step ``t`` and curvature
count ``k`` (a second column of scalars) in the kernel.

.. math::

    u = g\ \text{or}\ \frac{m}{1-\beta_1^t},\ m \leftarrow \beta_1 m + (1-\beta_1) g;\qquad
    x = \Big|\frac{h}{1-\beta_2^k}\Big| + \lambda,\qquad
    p \mathrel{-}= \gamma\, x^{p} u\quad (x^p = 0 \text{ where } x = 0)
"""

from __future__ import annotations

import triton
import triton.language as tl

from ...functional.gauss_newton import gauss_newton_diag
from . import _lang as L
from ._driver import TritonRule


@L.helper
def gauss_newton_coefficients(hyper, t, k):
    """:class:`GaussNewtonCoefficients` of step ``t`` after ``k`` curvature estimates from
    ``(factor, momentum, beta2, damping, lr)``."""
    beta1 = tl.load(hyper + 1)
    beta2 = tl.load(hyper + 2)
    bc1 = tl.where(beta1 > 0.0, 1.0 - L.power(beta1, t), 1.0)
    bc2 = tl.where(beta2 > 0.0, 1.0 - L.power(beta2, k), 1.0)
    return beta1, bc1, bc2, tl.load(hyper + 3), -tl.load(hyper + 4)


@triton.jit
def gauss_newton_kernel(ptrs, n_tensors, numels, chunk_tensor, chunk_start, hyper, scale_ptr, skip_ptr,
                        DT: tl.constexpr, CT: tl.constexpr, WD: tl.constexpr, MAXIMIZE: tl.constexpr,
                        HAS_SCALE: tl.constexpr, HAS_SKIP: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr, VEC: tl.constexpr,
                        RSQRT: tl.constexpr, MOMENTUM: tl.constexpr):  # fmt: skip
    t, start, n = L.chunk(chunk_tensor, chunk_start, numels, skip_ptr, HAS_SKIP, VEC)
    p_ptr = L.tensor_ptr(ptrs, 0, n_tensors, t, DT, VEC)
    g_ptr = L.tensor_ptr(ptrs, 1, n_tensors, t, DT, VEC)
    m_ptr = L.tensor_ptr(ptrs, 2, n_tensors, t, DT, VEC)
    h_ptr = L.tensor_ptr(ptrs, 3, n_tensors, t, DT, VEC)
    c = gauss_newton_coefficients(hyper, L.step_of(ptrs, 4, n_tensors, t), L.step_of(ptrs, 5, n_tensors, t))
    beta1, one_m_b1, bc1, bc2 = c[0].to(CT), (1.0 - c[0]).to(CT), c[1].to(CT), c[2].to(CT)
    damping, neg_lr = c[3].to(CT), c[4].to(CT)
    for i in range(0, CHUNK, BLOCK):
        offs, mask = L.block(start, i, n, BLOCK, VEC)
        p, g = L.pre_step(p_ptr, g_ptr, offs, mask, hyper, scale_ptr, CT, HAS_SCALE, WD, MAXIMIZE)
        u = g
        if MOMENTUM:
            m = L.load(m_ptr, offs, mask, CT) * beta1 + one_m_b1 * g
            L.store(m_ptr, offs, m, mask)
            u = L.div(m, bc1 + tl.zeros_like(m))
        x = tl.abs(L.div(L.load(h_ptr, offs, mask, CT), bc2 + tl.zeros_like(g))) + damping
        one = tl.full(x.shape, 1.0, CT)
        if RSQRT:
            r = L.div(one, L.sqrt(x))
        else:
            r = L.div(one, x)
        d = tl.where(x == 0.0, 0.0, r)
        p = p + (neg_lr * d) * u
        L.store(p_ptr, offs, p, mask)


TritonRule(gauss_newton_diag, gauss_newton_kernel, gauss_newton_coefficients,
           lambda h: (h.momentum, h.beta2, h.damping, h.lr), ("RSQRT", "MOMENTUM"),
           lambda h: (float(h.power) == -0.5, h.momentum > 0.0))  # fmt: skip
