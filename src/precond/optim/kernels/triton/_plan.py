"""Launch plans: the pointer table and chunk table of one launch, built once per tensor set.

A plan for ``columns`` (lists of tensors of equal length ``n``: params, grads, each state list,
the step counters; an unused state list is empty) holds, on the tensors' device:

* ``ptrs``: int64 ``(len(columns), n)``, the data addresses (0 for an empty column: its kernel
  option is off and never reads it);
* ``numels``: int64 ``(n,)``;
* ``chunk_tensor`` (int32) and ``chunk_start`` (int64), one entry per chunk of ``chunk``
  elements of each tensor: the grid of the launch (torch's ``multi_tensor_apply`` splits the
  tensors into chunks the same way; here the table is a device tensor, so one launch covers any
  number of tensors).

With a vector width ``vec > 1`` (every tensor 16-byte aligned, ``vec`` elements in 16 bytes) a
plan is two launches: the *main* one over each tensor's first ``n - n % vec`` elements (its
``numels`` are those counts, multiples of ``vec``, so a block's mask is constant over runs of
``vec`` elements and the compiler may use 16-byte loads and stores), and a *tail* one, one chunk
per tensor whose size ``vec`` does not divide, over its last ``n % vec`` elements.

Plans are cached by the addresses, sizes and chunk size (:func:`plan`): a training loop's
tensors keep their storage, so after the first step a plan costs a dictionary lookup and no
host-to-device copy, and a step can be captured in a CUDA graph (build the plan in a warm-up
step before capture, as torch asks for capturable optimizers).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple, Sequence

import torch

#: most plans kept (least recently used dropped first)
CACHE_SIZE = 64
_CACHE: "OrderedDict[tuple, Plan]" = OrderedDict()


class Plan(NamedTuple):
    ptrs: torch.Tensor
    numels: torch.Tensor
    chunk_tensor: torch.Tensor
    chunk_start: torch.Tensor
    n_tensors: int
    n_chunks: int
    vec: int  # the launch's VEC (1 for a tail)


def plan(columns: Sequence[Sequence[torch.Tensor]], chunk: int, device: torch.device, vec: int = 1) -> tuple[Plan, ...]:
    """The (cached) launches of ``columns`` in chunks of ``chunk`` elements: ``(main,)`` or
    ``(main, tail)`` (see the module docstring); a launch of no chunk is left out."""
    n = len(columns[0])
    addresses = tuple(tuple(t.data_ptr() for t in col) if col else (0,) * n for col in columns)
    numels = tuple(t.numel() for t in columns[0])
    key = (device, chunk, vec, addresses, numels)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    ptrs = torch.tensor(addresses, dtype=torch.int64).to(device)
    mains = [size - size % vec for size in numels]
    launches = [_launch(ptrs, mains, [range(0, m, chunk) for m in mains], vec, device)]
    if vec > 1 and any(size % vec for size in numels):
        launches.append(_launch(ptrs, list(numels), [range(m, size, chunk) for m, size in zip(mains, numels)], 1, device))
    built = tuple(p for p in launches if p.n_chunks)
    _CACHE[key] = built
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return built


def _launch(ptrs: torch.Tensor, counts: list[int], starts: list[range], vec: int, device: torch.device) -> Plan:
    tensor_of = [i for i, r in enumerate(starts) for _ in r]
    start_of = [s for r in starts for s in r]
    return Plan(ptrs, torch.tensor(counts, dtype=torch.int64).to(device), torch.tensor(tensor_of, dtype=torch.int32).to(device),
                torch.tensor(start_of, dtype=torch.int64).to(device), len(counts), len(tensor_of), vec)  # fmt: skip


def vector_width(columns: Sequence[Sequence[torch.Tensor]], element_size: int) -> int:
    """Elements per 16 bytes when every tensor of ``columns`` starts on a 16-byte boundary, else 1."""
    if any(t.data_ptr() % 16 for col in columns for t in col):
        return 1
    return max(1, 16 // element_size)


def clear() -> None:
    """Drop every cached plan (their device tables)."""
    _CACHE.clear()
