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


def plan(columns: Sequence[Sequence[torch.Tensor]], chunk: int, device: torch.device) -> Plan:
    """The (cached) plan of ``columns`` in chunks of ``chunk`` elements (see the module docstring)."""
    n = len(columns[0])
    addresses = tuple(tuple(t.data_ptr() for t in col) if col else (0,) * n for col in columns)
    numels = tuple(t.numel() for t in columns[0])
    key = (device, chunk, addresses, numels)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    tensor_of, start_of = [], []
    for i, size in enumerate(numels):
        for start in range(0, size, chunk):
            tensor_of.append(i)
            start_of.append(start)
    built = Plan(
        torch.tensor(addresses, dtype=torch.int64).to(device),
        torch.tensor(numels, dtype=torch.int64).to(device),
        torch.tensor(tensor_of, dtype=torch.int32).to(device),
        torch.tensor(start_of, dtype=torch.int64).to(device),
        n,
        len(tensor_of),
    )
    _CACHE[key] = built
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return built


def clear() -> None:
    """Drop every cached plan (their device tables)."""
    _CACHE.clear()
