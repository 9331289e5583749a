r"""AdaBound and AMSBound in Triton (:data:`precond.optim.functional.adabound.adabound`), element
for element the loop and ``csrc/adabound.cpp``; the step size and the bounds of
:class:`~precond.optim.functional.adabound.AdaBoundCoefficients` from the step in the kernel.

.. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
    p \mathrel{-}= \mathrm{clamp}\Big(\frac{\alpha_t}{\sqrt{v\ \text{or}\ v_{max}} + \epsilon}, \eta_l(t), \eta_u(t)\Big)\, m
"""

from __future__ import annotations

import triton
import triton.language as tl

from ...functional.adabound import adabound
from . import _lang as L
from ._driver import TritonRule


@L.helper
def adabound_coefficients(hyper, t):
    """:class:`AdaBoundCoefficients` of step ``t`` from ``(factor, beta1, beta2, lr, eps, gamma, scaled_final)``."""
    beta1 = tl.load(hyper + 1)
    beta2 = tl.load(hyper + 2)
    lr = tl.load(hyper + 3)
    eps = tl.load(hyper + 4)
    gamma = tl.load(hyper + 5)
    final = tl.load(hyper + 6)  # final_lr * lr / base_lr
    step_size = lr * tl.sqrt(1.0 - L.power(beta2, t)) / (1.0 - L.power(beta1, t))
    lower = final * (1.0 - 1.0 / (gamma * t + 1.0))
    upper = final * (1.0 + 1.0 / (gamma * t))
    return beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps, step_size, lower, upper


@triton.jit
def adabound_kernel(ptrs, n_tensors, numels, chunk_tensor, chunk_start, hyper, scale_ptr, skip_ptr,
                    DT: tl.constexpr, CT: tl.constexpr, WD: tl.constexpr, MAXIMIZE: tl.constexpr,
                    HAS_SCALE: tl.constexpr, HAS_SKIP: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr, VEC: tl.constexpr,
                    AMSBOUND: tl.constexpr):  # fmt: skip
    t, start, n = L.chunk(chunk_tensor, chunk_start, numels, skip_ptr, HAS_SKIP, VEC)
    p_ptr = L.tensor_ptr(ptrs, 0, n_tensors, t, DT, VEC)
    g_ptr = L.tensor_ptr(ptrs, 1, n_tensors, t, DT, VEC)
    m_ptr = L.tensor_ptr(ptrs, 2, n_tensors, t, DT, VEC)
    v_ptr = L.tensor_ptr(ptrs, 3, n_tensors, t, DT, VEC)
    vm_ptr = L.tensor_ptr(ptrs, 4, n_tensors, t, DT, VEC)
    k = adabound_coefficients(hyper, L.step_of(ptrs, 5, n_tensors, t))
    beta1, one_m_b1, beta2, one_m_b2 = k[0].to(CT), k[1].to(CT), k[2].to(CT), k[3].to(CT)
    eps, step_size, lower, upper = k[4].to(CT), k[5].to(CT), k[6].to(CT), k[7].to(CT)
    for i in range(0, CHUNK, BLOCK):
        offs, mask = L.block(start, i, n, BLOCK, VEC)
        p, g = L.pre_step(p_ptr, g_ptr, offs, mask, hyper, scale_ptr, CT, HAS_SCALE, WD, MAXIMIZE)
        m = L.load(m_ptr, offs, mask, CT) * beta1 + one_m_b1 * g
        v = L.load(v_ptr, offs, mask, CT) * beta2 + one_m_b2 * (g * g)
        den = L.running_max(vm_ptr, offs, mask, v, CT, AMSBOUND)
        rate = tl.minimum(tl.maximum(L.div(step_size + tl.zeros_like(den), L.sqrt(den) + eps), lower), upper)
        p = p - rate * m
        L.store(p_ptr, offs, p, mask)
        L.store(m_ptr, offs, m, mask)
        L.store(v_ptr, offs, v, mask)


def _hyper(h) -> tuple[float, ...]:
    final = h.final_lr * h.lr / (h.lr if h.base_lr is None else h.base_lr)
    return (*h.betas, h.lr, h.eps, h.gamma, final)


TritonRule(adabound, adabound_kernel, adabound_coefficients, _hyper, ("AMSBOUND",), lambda h: (bool(h.amsbound),))
