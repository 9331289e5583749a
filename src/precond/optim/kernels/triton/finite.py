"""The non-finite gradient check on the device: one flag, no host sync.

``nonfinite_flag(tensors)`` is a float32 0-dim tensor on the tensors' device, 1.0 when any
element of any tensor is NaN or inf, else 0.0: one launch per dtype over the same chunk plans
as the update kernels (:mod:`._plan`); a program that meets a bad element stores 1.0 (every
writer writes the same value, so the stores need no atomics). The update kernels read the flag
and change nothing when it is set (``HAS_SKIP``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import _lang as L
from . import _plan
from ._config import CONFIG, TL_DTYPES


@triton.jit
def nonfinite_kernel(ptrs, n_tensors, numels, chunk_tensor, chunk_start, flag, DT: tl.constexpr,
                     BLOCK: tl.constexpr, CHUNK: tl.constexpr, VEC: tl.constexpr):  # fmt: skip
    t, start, n = L.chunk(chunk_tensor, chunk_start, numels, flag, False, VEC)
    x_ptr = L.tensor_ptr(ptrs, 0, n_tensors, t, DT, VEC)
    bad = tl.zeros((BLOCK,), dtype=tl.int32)
    for i in range(0, CHUNK, BLOCK):
        offs, mask = L.block(start, i, n, BLOCK, VEC)
        x = L.load(x_ptr, offs, mask, tl.float32)
        bad = bad | ((x != x) | (tl.abs(x) == float("inf"))).to(tl.int32)  # NaN, +-inf (no fast-math folding)
    tl.store(flag, 1.0, mask=tl.max(bad, axis=0) > 0)


def nonfinite_flag(tensors: list[torch.Tensor]) -> torch.Tensor:
    """1.0 (float32, 0-dim, on the device) when any tensor holds NaN or inf, else 0.0.

    Tensors of a kernel dtype that are contiguous are checked by :func:`nonfinite_kernel`;
    others by ``isfinite`` (device ops, still no host sync)."""
    flag = torch.zeros((), dtype=torch.float32, device=tensors[0].device)
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        if t.dtype in TL_DTYPES and t.is_contiguous() and t.device == flag.device:
            by_dtype.setdefault(t.dtype, []).append(t)
        else:
            flag = torch.maximum(flag, (~torch.isfinite(t).all()).to(torch.float32).to(flag.device))
    for dtype, ts in by_dtype.items():
        for p in _plan.plan([ts], CONFIG.chunk, flag.device, _plan.vector_width([ts], ts[0].element_size())):
            nonfinite_kernel[(p.n_chunks,)](p.ptrs, p.n_tensors, p.numels, p.chunk_tensor, p.chunk_start, flag,
                                            DT=TL_DTYPES[dtype], VEC=p.vec, **CONFIG.launch_options())  # fmt: skip
    return flag
