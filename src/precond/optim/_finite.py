"""The non-finite gradient check used by ``nan_policy``.

On CPU the check is one read-only pass over the gradients by the C++ kernels' ``all_finite``
(an OpenMP reduction over the exponent bits, stopping at the first bad block), built with
the fused kernels (:mod:`precond.optim.kernels._build`). Elsewhere, or when the kernels are
unavailable, it is ``isfinite(t).all()`` per tensor with one host sync per device.

``DTensor`` s (FSDP2's sharded gradients) are checked on their local shards, and the answer is
agreed over their meshes (:func:`precond.optim.distributed.agree_any`): every rank sees a
non-finite entry of any shard, so under ``nan_policy="skip"`` all ranks skip the same step.
"""

from __future__ import annotations

import torch

from ._dispatch import kernel_ops
from .distributed import agree_any, any_dtensor, local_list




def all_finite(tensors: list[torch.Tensor]) -> bool:
    """True when every element of every tensor is finite (one host sync per device; with
    ``DTensor`` s, of every shard on every rank of their meshes: one ``all_reduce`` per mesh)."""
    if any_dtensor(tensors):
        return not agree_any(not _local_all_finite(local_list(tensors)), tensors)
    return _local_all_finite(tensors)


def _local_all_finite(tensors: list[torch.Tensor]) -> bool:
    if not tensors:
        return True
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    if all(t.is_cpu for t in tensors):  # the common case, one group (t.device makes an object per call)
        by_device[tensors[0].device] = tensors
    else:
        for t in tensors:
            by_device.setdefault(t.device, []).append(t)
    for device, ts in by_device.items():
        if device.type == "cpu":
            ops = kernel_ops()
            if ops is not None:
                if not ops.all_finite(ts):
                    return False
                continue
        flags = torch.stack([torch.isfinite(t).all() for t in ts])
        if not bool(flags.all()):
            return False
    return True
