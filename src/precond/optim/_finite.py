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

from .distributed import agree_any, any_dtensor, local_list


def _kernel_ops():
    from .kernels import _build  # noqa: F811  (imported on first use; the module global afterwards)

    globals()["_kernel_ops"] = _build.load  # later calls skip the import statement (a step calls this once)
    return _build.load()


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """True when every element of every tensor is finite (one host sync per device; with
    ``DTensor`` s, of every shard on every rank of their meshes: one ``all_reduce`` per mesh)."""
    if any_dtensor(tensors):
        return not agree_any(not _local_all_finite(local_list(tensors)), tensors)
    return _local_all_finite(tensors)


def _local_all_finite(tensors: list[torch.Tensor]) -> bool:
    if not tensors:
        return True
    if all(t.is_cpu for t in tensors):  # the common case: one kernel call
        ops = _kernel_ops()
        if ops is not None:
            return bool(ops.all_finite(tensors))
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for t in tensors:
        by_device.setdefault(t.device, []).append(t)
    for device, ts in by_device.items():
        if device.type == "cpu":
            ops = _kernel_ops()
            if ops is not None:
                if not ops.all_finite(ts):
                    return False
                continue
        flags = torch.stack([torch.isfinite(t).all() for t in ts])
        if not bool(flags.all()):
            return False
    return True
