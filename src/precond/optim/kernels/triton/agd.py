r"""AGD in Triton (:data:`precond.optim.functional.agd.agd`): the loop's ``_agd_tensor`` and the
C++ ``csrc/agd.cpp``, element for element, with
:class:`~precond.optim.functional.agd.AGDCoefficients` computed in the kernel from the step
counter (:func:`agd_coefficients`, field for field :func:`~precond.optim.functional.agd.agd_coefficients`).

.. math::

    s = c_m m + c_g g,\quad m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
    b \leftarrow \beta_2 b + (1-\beta_2) s^2,\quad
    u = \mathrm{clip}\big(m / \max(\sqrt{b\ \text{or}\ b_{max}}, \text{floor})\big),\quad
    p \mathrel{-}= \eta u \ \text{(or the Win update)}
"""

from __future__ import annotations

import triton
import triton.language as tl

from ...functional.agd import agd
from . import _lang as L
from ._driver import TritonRule


@L.helper
def agd_coefficients(hyper, t):
    """:class:`AGDCoefficients` of step ``t`` (double) from the hyper row
    ``(factor, beta1, beta2, lr, delta, weight_decay, clip)``."""
    beta1 = tl.load(hyper + 1)
    beta2 = tl.load(hyper + 2)
    lr = tl.load(hyper + 3)
    delta = tl.load(hyper + 4)
    wd = tl.load(hyper + 5)
    bc1 = 1.0 - L.power(beta1, t)
    bc2 = 1.0 - L.power(beta2, t)
    c_g = (1.0 - beta1) / bc1
    c_m = tl.where(t == 1.0, 0.0, beta1 / bc1 - 1.0 / (1.0 - L.power(beta1, t - 1.0)))
    sqrt_bc2 = tl.sqrt(bc2)
    eta = lr * sqrt_bc2 / bc1
    return beta1, beta2, c_m, c_g, delta * sqrt_bc2, eta, 1.0 / (1.0 + wd * eta), 1.0 / (3.0 + 2.0 * eta * wd)


@triton.jit
def agd_kernel(ptrs, n_tensors, numels, chunk_tensor, chunk_start, hyper, scale_ptr, skip_ptr,
               DT: tl.constexpr, CT: tl.constexpr, WD: tl.constexpr, MAXIMIZE: tl.constexpr,
               HAS_SCALE: tl.constexpr, HAS_SKIP: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr, VEC: tl.constexpr,
               AMSGRAD: tl.constexpr, WIN: tl.constexpr, CLIP: tl.constexpr):  # fmt: skip
    t, start, n = L.chunk(chunk_tensor, chunk_start, numels, skip_ptr, HAS_SKIP, VEC)
    p_ptr = L.tensor_ptr(ptrs, 0, n_tensors, t, DT, VEC)
    g_ptr = L.tensor_ptr(ptrs, 1, n_tensors, t, DT, VEC)
    m_ptr = L.tensor_ptr(ptrs, 2, n_tensors, t, DT, VEC)
    b_ptr = L.tensor_ptr(ptrs, 3, n_tensors, t, DT, VEC)
    bm_ptr = L.tensor_ptr(ptrs, 4, n_tensors, t, DT, VEC)
    z_ptr = L.tensor_ptr(ptrs, 5, n_tensors, t, DT, VEC)
    k = agd_coefficients(hyper, L.step_of(ptrs, 6, n_tensors, t))
    beta1, beta2, c_m, c_g = k[0].to(CT), k[1].to(CT), k[2].to(CT), k[3].to(CT)
    floor, win_z, win_tau = k[4].to(CT), k[6].to(CT), k[7].to(CT)
    one_m_b1, one_m_b2 = (1.0 - k[0]).to(CT), (1.0 - k[1]).to(CT)
    neg_eta = (-k[5]).to(CT)
    win_u, win_zc = (-2.0 * k[7] * k[5]).to(CT), (2.0 * k[7]).to(CT)
    clip = tl.load(hyper + 6).to(CT)
    for i in range(0, CHUNK, BLOCK):
        offs, mask = L.block(start, i, n, BLOCK, VEC)
        p, g = L.pre_step(p_ptr, g_ptr, offs, mask, hyper, scale_ptr, CT, HAS_SCALE, WD, MAXIMIZE)
        m = L.load(m_ptr, offs, mask, CT)
        b = L.load(b_ptr, offs, mask, CT)
        s = g * c_g + c_m * m
        m = m * beta1 + one_m_b1 * g
        b = b * beta2 + one_m_b2 * (s * s)
        den = L.running_max(bm_ptr, offs, mask, b, CT, AMSGRAD)
        u = L.div(m, tl.maximum(L.sqrt(den), floor))
        if CLIP:
            u = tl.minimum(tl.maximum(u, -clip), clip)
        if WIN:
            z = (L.load(z_ptr, offs, mask, CT) + neg_eta * u) * win_z
            p = p * win_tau + win_u * u + win_zc * z
            L.store(z_ptr, offs, z, mask)
        else:
            p = p + neg_eta * u
        L.store(p_ptr, offs, p, mask)
        L.store(m_ptr, offs, m, mask)
        L.store(b_ptr, offs, b, mask)


TritonRule(agd, agd_kernel, agd_coefficients,
           lambda h: (*h.betas, h.lr, h.delta, h.weight_decay, 0.0 if h.clip is None else h.clip),
           ("AMSGRAD", "WIN", "CLIP"), lambda h: (bool(h.amsgrad), bool(h.win), h.clip is not None))  # fmt: skip
