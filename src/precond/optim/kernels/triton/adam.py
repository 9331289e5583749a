r"""Adam, AdamW and AMSGrad in Triton (:data:`precond.optim.functional.adam.adam`), element for
element the loop's ``_adam_tensor`` and ``csrc/adam.cpp``; coefficients
(:class:`~precond.optim.functional.adam.AdamCoefficients`) from the step in the kernel.

.. math::

    m \leftarrow \mathrm{lerp}(m, g, 1-\beta_1),\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
    p \mathrel{+}= -\frac{\gamma}{1-\beta_1^t}\,\frac{m}{\sqrt{v\ \text{or}\ v_{max}}/\sqrt{1-\beta_2^t} + \epsilon}
"""

from __future__ import annotations

import triton
import triton.language as tl

from ...functional.adam import adam
from . import _lang as L
from ._driver import TritonRule


@L.helper
def adam_coefficients(hyper, t):
    """:class:`AdamCoefficients` of step ``t`` from the row ``(factor, beta1, beta2, lr, eps)``."""
    beta1 = tl.load(hyper + 1)
    beta2 = tl.load(hyper + 2)
    lr = tl.load(hyper + 3)
    eps = tl.load(hyper + 4)
    bc1 = 1.0 - L.power(beta1, t)
    bc2 = 1.0 - L.power(beta2, t)
    return 1.0 - beta1, beta2, 1.0 - beta2, eps, -lr / bc1, tl.sqrt(bc2), bc2


@triton.jit
def adam_kernel(ptrs, n_tensors, numels, chunk_tensor, chunk_start, hyper, scale_ptr, skip_ptr,
                DT: tl.constexpr, CT: tl.constexpr, WD: tl.constexpr, MAXIMIZE: tl.constexpr,
                HAS_SCALE: tl.constexpr, HAS_SKIP: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr, VEC: tl.constexpr,
                AMSGRAD: tl.constexpr, EPS_INSIDE: tl.constexpr):  # fmt: skip
    t, start, n = L.chunk(chunk_tensor, chunk_start, numels, skip_ptr, HAS_SKIP, VEC)
    p_ptr = L.tensor_ptr(ptrs, 0, n_tensors, t, DT, VEC)
    g_ptr = L.tensor_ptr(ptrs, 1, n_tensors, t, DT, VEC)
    m_ptr = L.tensor_ptr(ptrs, 2, n_tensors, t, DT, VEC)
    v_ptr = L.tensor_ptr(ptrs, 3, n_tensors, t, DT, VEC)
    vm_ptr = L.tensor_ptr(ptrs, 4, n_tensors, t, DT, VEC)
    k = adam_coefficients(hyper, L.step_of(ptrs, 5, n_tensors, t))
    w, beta2, one_m_b2, eps = k[0].to(CT), k[1].to(CT), k[2].to(CT), k[3].to(CT)
    neg_step, sqrt_bc2, bc2 = k[4].to(CT), k[5].to(CT), k[6].to(CT)
    for i in range(0, CHUNK, BLOCK):
        offs, mask = L.block(start, i, n, BLOCK, VEC)
        p, g = L.pre_step(p_ptr, g_ptr, offs, mask, hyper, scale_ptr, CT, HAS_SCALE, WD, MAXIMIZE)
        m = L.lerp(L.load(m_ptr, offs, mask, CT), g, w)
        v = L.load(v_ptr, offs, mask, CT) * beta2 + one_m_b2 * (g * g)
        den = L.running_max(vm_ptr, offs, mask, v, CT, AMSGRAD)
        if EPS_INSIDE:
            denom = L.sqrt(L.div(den, bc2) + eps)
        else:
            denom = L.div(L.sqrt(den), sqrt_bc2) + eps
        p = p + neg_step * L.div(m, denom)
        L.store(p_ptr, offs, p, mask)
        L.store(m_ptr, offs, m, mask)
        L.store(v_ptr, offs, v, mask)


TritonRule(adam, adam_kernel, adam_coefficients, lambda h: (*h.betas, h.lr, h.eps), ("AMSGRAD", "EPS_INSIDE"),
           lambda h: (bool(h.amsgrad), bool(h.eps_inside_sqrt)))  # fmt: skip
