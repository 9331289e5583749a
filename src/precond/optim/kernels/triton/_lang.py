"""Triton helpers shared by every rule's kernel (:mod:`precond.optim.kernels.triton`).

A launch covers one dtype bucket of a param group: program ``pid`` takes chunk ``pid`` of the
launch plan (:mod:`._plan`): tensor ``t = chunk_tensor[pid]``, elements
``[chunk_start[pid], chunk_start[pid] + CHUNK)`` of it, in ``CHUNK // BLOCK`` blocks. The
tensors' addresses are an int64 table ``ptrs[column, tensor]`` (column 0 the params, 1 the
gradients, then the rule's state lists in :attr:`Rule.state` order, the step counters last),
cast to typed pointers in the kernel (``tl.pointer_type``): one launch for any number of
tensors. Everything here is plain ``triton.language`` (no libdevice, no inline assembly), so
Triton's interpreter (``TRITON_INTERPRET=1``) runs it on CPU tensors.
"""

from __future__ import annotations

import os

import triton
import triton.language as tl

#: decorator of the device helpers (and the rules' coefficient functions): ``@triton.jit``, or,
#: under Triton's interpreter, plain Python, which the interpreter runs the same way: it
#: re-patches ``triton.language`` on every call of a nested ``@triton.jit`` function (about
#: 0.4 ms each, measured with cProfile: 80% of an interpreted step)
helper = (lambda fn: fn) if os.environ.get("TRITON_INTERPRET") == "1" else triton.jit
#: running under Triton's interpreter (a constexpr: jit code may read it)
INTERPRETED = tl.constexpr(os.environ.get("TRITON_INTERPRET") == "1")

#: weight-decay modes of the pre-step as kernel constants (precond.optim.functional._rule.WEIGHT_DECAY_MODES)
WD_CODES = {"none": 0, "l2": 1, "decoupled": 2, "fixed": 3}


@helper
def tensor_ptr(ptrs, column, n_tensors, t, DT: tl.constexpr, VEC: tl.constexpr):
    """The typed pointer to tensor ``t`` of list ``column``; ``VEC > 1``: 16-byte aligned (the
    launch checked it), so that the compiler may use vector loads and stores."""
    ptr = tl.load(ptrs + column * n_tensors + t).to(tl.pointer_type(DT))
    if VEC > 1:
        ptr = tl.multiple_of(ptr, 16)
    return ptr


@helper
def step_of(ptrs, column, n_tensors, t):
    """Tensor ``t``'s step counter (a float32 scalar, already incremented), in double."""
    return tl.load(tensor_ptr(ptrs, column, n_tensors, t, tl.float32, 1)).to(tl.float64)


@helper
def power(base, t):
    r""":math:`\text{base}^t` in double for ``t >= 0`` (``0^0 = 1``), as ``exp2(t log2 base)``:
    the interpreter has no ``pow``; relative error a few ulps times :math:`|t \log_2 \text{base}|`."""
    return tl.where(t == 0.0, 1.0, tl.exp2(t * tl.log2(base)))


@helper
def sqrt(x):
    """Correctly rounded square root (``tl.sqrt`` is approximate in float32 on GPUs)."""
    if x.dtype == tl.float64:
        return tl.sqrt(x)
    else:
        return tl.sqrt_rn(x)


@helper
def div(a, b):
    """Correctly rounded division (float32 ``/`` is approximate on GPUs)."""
    if a.dtype == tl.float64:
        return a / b
    else:
        return tl.div_rn(a, b)


@helper
def chunk(chunk_tensor, chunk_start, numels, skip_ptr, HAS_SKIP: tl.constexpr, VEC: tl.constexpr):
    """This program's tensor index ``t``, first element, and the launch's element count of the
    tensor (0 when the step is skipped on the device: every block is then masked off). Under
    ``VEC > 1`` (a main launch, :mod:`._plan`) the first element and the count are multiples of
    ``VEC``."""
    pid = tl.program_id(0)
    t = tl.load(chunk_tensor + pid)
    start = tl.load(chunk_start + pid)
    if VEC > 1:
        start = tl.multiple_of(start, VEC)
    return t, start, live(tl.load(numels + t), skip_ptr, HAS_SKIP)


@helper
def block(start, i, n, BLOCK: tl.constexpr, VEC: tl.constexpr):
    """Offsets and mask of block ``i`` of the chunk starting at ``start`` (the mask constant
    over runs of ``VEC`` elements: ``n`` is a multiple of ``VEC``)."""
    offs = start + i + tl.arange(0, BLOCK)
    mask = offs < n
    if VEC > 1:
        mask = tl.max_constancy(mask, VEC)
    return offs, mask


@helper
def live(n, skip_ptr, HAS_SKIP: tl.constexpr):
    """The number of elements to update: ``n``, or 0 when the step is skipped on the device
    (GradScaler's found_inf, or the non-finite check). (A mask would read better, but the
    interpreter cannot ``&`` a scalar boolean with a block.)"""
    if HAS_SKIP:
        return tl.where(tl.load(skip_ptr) == 0.0, n, 0)
    else:
        return n


@helper
def load(ptr, offs, mask, CT: tl.constexpr):
    return tl.load(ptr + offs, mask=mask, other=0.0).to(CT)


@helper
def store(ptr, offs, x, mask):
    """``x`` stored in the pointer's dtype, rounded to nearest even."""
    if INTERPRETED and ptr.dtype.element_ty == tl.bfloat16:
        x = bf16_rne(x)
    tl.store(ptr + offs, x.to(ptr.dtype.element_ty), mask=mask)


@helper
def bf16_rne(x):
    """float32 -> bfloat16 rounded to nearest even, by bits (interpreter only: its float32 ->
    bfloat16 cast truncates, ``runtime/interpreter.py`` ``cast_impl``; GPUs round to nearest even)."""
    bits = x.to(tl.uint32, bitcast=True)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    rounded = tl.where(x != x, 0x7FC0, rounded)  # NaN stays NaN
    return rounded.to(tl.uint16).to(tl.bfloat16, bitcast=True)


@helper
def pre_step(p_ptr, g_ptr, offs, mask, hyper, scale_ptr, CT: tl.constexpr, HAS_SCALE: tl.constexpr,
             WD: tl.constexpr, MAXIMIZE: tl.constexpr):  # fmt: skip
    """One block of ``p`` and ``g`` after the pre-step: unscaled (GradScaler's ``grad_scale``),
    ``-g`` under maximize, then L2 ``g += factor p`` or decay ``p *= factor`` (``factor`` the
    hyper row's first entry). Returns ``(p, g)``."""
    factor = tl.load(hyper).to(CT)
    p = load(p_ptr, offs, mask, CT)
    g = load(g_ptr, offs, mask, CT)
    if HAS_SCALE:
        g = div(g, tl.load(scale_ptr).to(g.dtype))
    if MAXIMIZE:
        g = -g
    if WD == 1:
        g = g + factor * p
    if WD == 2 or WD == 3:
        p = p * factor
    return p, g


@helper
def running_max(ptr, offs, mask, x, CT: tl.constexpr, ON: tl.constexpr):
    """AMSGrad's running maximum: ``x_max = max(x_max, x)`` stored at ``ptr`` and returned, or
    ``x`` unchanged (``ON`` false: the column is not read)."""
    if ON:
        x = tl.maximum(load(ptr, offs, mask, CT), x)
        store(ptr, offs, x, mask)
    return x


@helper
def lerp(a, b, w):
    """torch.lerp's formula (exact at both ends), as ``csrc/common.h``."""
    return tl.where(w < 0.5, a + w * (b - a), b - (b - a) * (1.0 - w))


@helper
def sqrt_eps(x, eps, INSIDE: tl.constexpr):
    """``sqrt(x) + eps``, or ``sqrt(x + eps)`` (``INSIDE``)."""
    if INSIDE:
        return sqrt(x + eps)
    else:
        return sqrt(x) + eps


@helper
def sign(x):
    return tl.where(x > 0, 1.0, tl.where(x < 0, -1.0, 0.0)).to(x.dtype)
