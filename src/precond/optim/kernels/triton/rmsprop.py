r"""RMSProp in Triton (:data:`precond.optim.functional.rmsprop.rmsprop`), element for element the
loop and ``csrc/rmsprop.cpp`` (centered, momentum, eps inside the square root).

.. math::

    s \leftarrow \alpha s + (1-\alpha) g^2,\quad
    \bar g \leftarrow \mathrm{lerp}(\bar g, g, 1-\alpha),\quad
    d = \sqrt{s - \bar g^2} + \epsilon,\quad
    u \leftarrow \mu u + g/d,\quad p \mathrel{-}= \gamma u\ \ (\text{or } \gamma\, g/d)
"""

from __future__ import annotations

import triton
import triton.language as tl

from ...functional.rmsprop import rmsprop
from . import _lang as L
from ._driver import TritonRule


@L.helper
def rmsprop_coefficients(hyper, t):
    """:class:`RMSPropCoefficients` (the same at every step) from ``(factor, lr, alpha, eps, momentum)``."""
    lr = tl.load(hyper + 1)
    alpha = tl.load(hyper + 2)
    return -lr, alpha, 1.0 - alpha, tl.load(hyper + 3), tl.load(hyper + 4)


@triton.jit
def rmsprop_kernel(ptrs, n_tensors, numels, chunk_tensor, chunk_start, hyper, scale_ptr, skip_ptr,
                   DT: tl.constexpr, CT: tl.constexpr, WD: tl.constexpr, MAXIMIZE: tl.constexpr,
                   HAS_SCALE: tl.constexpr, HAS_SKIP: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr, VEC: tl.constexpr,
                   CENTERED: tl.constexpr, MOMENTUM: tl.constexpr, EPS_INSIDE: tl.constexpr):  # fmt: skip
    t, start, n = L.chunk(chunk_tensor, chunk_start, numels, skip_ptr, HAS_SKIP, VEC)
    p_ptr = L.tensor_ptr(ptrs, 0, n_tensors, t, DT, VEC)
    g_ptr = L.tensor_ptr(ptrs, 1, n_tensors, t, DT, VEC)
    s_ptr = L.tensor_ptr(ptrs, 2, n_tensors, t, DT, VEC)
    a_ptr = L.tensor_ptr(ptrs, 3, n_tensors, t, DT, VEC)
    u_ptr = L.tensor_ptr(ptrs, 4, n_tensors, t, DT, VEC)
    k = rmsprop_coefficients(hyper, L.step_of(ptrs, 5, n_tensors, t))
    neg_lr, alpha, one_m_alpha, eps, mu = k[0].to(CT), k[1].to(CT), k[2].to(CT), k[3].to(CT), k[4].to(CT)
    for i in range(0, CHUNK, BLOCK):
        offs, mask = L.block(start, i, n, BLOCK, VEC)
        p, g = L.pre_step(p_ptr, g_ptr, offs, mask, hyper, scale_ptr, CT, HAS_SCALE, WD, MAXIMIZE)
        s = L.load(s_ptr, offs, mask, CT) * alpha + one_m_alpha * (g * g)
        var = s
        if CENTERED:
            a = L.lerp(L.load(a_ptr, offs, mask, CT), g, one_m_alpha)
            var = s - a * a
            L.store(a_ptr, offs, a, mask)
        denom = L.sqrt_eps(var, eps, EPS_INSIDE)
        if MOMENTUM:
            u = L.load(u_ptr, offs, mask, CT) * mu + L.div(g, denom)
            p = p + neg_lr * u
            L.store(u_ptr, offs, u, mask)
        else:
            p = p + neg_lr * L.div(g, denom)
        L.store(p_ptr, offs, p, mask)
        L.store(s_ptr, offs, s, mask)


TritonRule(rmsprop, rmsprop_kernel, rmsprop_coefficients, lambda h: (h.lr, h.alpha, h.eps, h.momentum),
           ("CENTERED", "MOMENTUM", "EPS_INSIDE"),
           lambda h: (bool(h.centered), h.momentum > 0, bool(h.eps_inside_sqrt)))  # fmt: skip
