r"""SophiaG in Triton (:data:`precond.optim.functional.sophia.sophia`), element for element the
loop and ``csrc/sophia.cpp`` (no bias correction: one row of scalars at every step).

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g,\qquad
    p \mathrel{+}= -\gamma\,\mathrm{sign}(m)\,\min\Big(\frac{|m|}{\max(\rho\, b\, h, 0) + \epsilon}, 1\Big)
"""

from __future__ import annotations

import triton
import triton.language as tl

from ...functional.sophia import sophia
from . import _lang as L
from ._driver import TritonRule


@L.helper
def sophia_coefficients(hyper, t):
    """:class:`SophiaCoefficients` from ``(factor, beta1, rho*bs, eps, lr)``."""
    return tl.load(hyper + 1), tl.load(hyper + 2), tl.load(hyper + 3), -tl.load(hyper + 4)


@triton.jit
def sophia_kernel(ptrs, n_tensors, numels, chunk_tensor, chunk_start, hyper, scale_ptr, skip_ptr,
                  DT: tl.constexpr, CT: tl.constexpr, WD: tl.constexpr, MAXIMIZE: tl.constexpr,
                  HAS_SCALE: tl.constexpr, HAS_SKIP: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr, VEC: tl.constexpr):  # fmt: skip
    t, start, n = L.chunk(chunk_tensor, chunk_start, numels, skip_ptr, HAS_SKIP, VEC)
    p_ptr = L.tensor_ptr(ptrs, 0, n_tensors, t, DT, VEC)
    g_ptr = L.tensor_ptr(ptrs, 1, n_tensors, t, DT, VEC)
    m_ptr = L.tensor_ptr(ptrs, 2, n_tensors, t, DT, VEC)
    h_ptr = L.tensor_ptr(ptrs, 3, n_tensors, t, DT, VEC)
    k = sophia_coefficients(hyper, L.step_of(ptrs, 4, n_tensors, t))
    beta1, one_m_b1, rho_bs, eps, neg_lr = k[0].to(CT), (1.0 - k[0]).to(CT), k[1].to(CT), k[2].to(CT), k[3].to(CT)
    for i in range(0, CHUNK, BLOCK):
        offs, mask = L.block(start, i, n, BLOCK, VEC)
        p, g = L.pre_step(p_ptr, g_ptr, offs, mask, hyper, scale_ptr, CT, HAS_SCALE, WD, MAXIMIZE)
        m = L.load(m_ptr, offs, mask, CT) * beta1 + one_m_b1 * g
        h = L.load(h_ptr, offs, mask, CT)
        ratio = tl.minimum(L.div(tl.abs(m), tl.maximum(h * rho_bs, 0.0) + eps), 1.0)
        p = p + (neg_lr * L.sign(m)) * ratio
        L.store(p_ptr, offs, p, mask)
        L.store(m_ptr, offs, m, mask)


TritonRule(sophia, sophia_kernel, sophia_coefficients, lambda h: (h.betas[0], h.rho * h.bs, h.eps, h.lr))
