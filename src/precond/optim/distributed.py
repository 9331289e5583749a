r"""precond's optimizers on sharded parameters (FSDP2's DTensors) and across ranks.

Under ``torch.nn.parallel.DistributedDataParallel`` every rank holds the whole parameter and the
same averaged gradient, so every rule already gives the same result on every rank: nothing
here is needed. Under FSDP2 (``torch.distributed.fsdp.fully_shard``) a parameter, its gradient
and its state are ``DTensor`` s: each rank holds one shard (``Shard(dim)`` placements on a
``DeviceMesh``). What precond does with them:

* **Elementwise math** (every rule's step, the curvature EMA) runs on the local shards
  (:func:`local`): ``p_i \leftarrow f(p_i, g_i, s_i)`` for each coordinate ``i`` needs
  nothing from other shards. The fused kernels and ``foreach`` ops thus never see a
  ``DTensor`` (DTensor has no sharding rule for ``torch.ops.precond.*``), and the state stays a
  ``DTensor`` of the parameter's layout, so ``torch.distributed.checkpoint`` saves it sharded.
* **Sums over coordinates** (AdaGradNorm's :math:`\|g\|^2`, the counts behind AGD's
  ``adaptive_fraction`` and Sophia's ``win_rate``) are the local sums added over the ranks
  that hold the other shards (:func:`shard_sums`: an ``all_reduce(SUM)`` over the mesh
  dimensions the tensor is sharded on; a replicated dimension is not summed, it holds copies).
* **Decisions** (the non-finite check behind ``nan_policy``) are made on every rank of the
  mesh alike (:func:`agree_any`: an ``all_reduce(MAX)`` of the local flag over every mesh
  dimension), so a rank never steps while another skips.

Plain tensors (one process, DDP) pass through every function unchanged and without any
communication. The collectives are issued in the order the tensors come, which is the same
on every rank (every rank steps the same param groups): call the optimizer's ``step`` and
its diagnostics on every rank.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

import torch

#: where torch defines DTensor (torch >= 2.5; 2.4: torch.distributed._tensor)
_DTENSOR_MODULES = ("torch.distributed.tensor", "torch.distributed._tensor")


def _tensor_api() -> Any:
    """torch's DTensor package if something imported it (FSDP2 does), else None: no tensor can be
    a DTensor before, and importing it costs about 2 s, so precond never does so itself."""
    for name in _DTENSOR_MODULES:
        mod = sys.modules.get(name)
        if mod is not None and hasattr(mod, "DTensor"):
            return mod
    return None


def is_dtensor(t: Any) -> bool:
    """Whether ``t`` is a ``DTensor`` (a sharded or replicated parameter, gradient or state)."""
    api = _tensor_api()
    return api is not None and isinstance(t, api.DTensor)


def any_dtensor(tensors: Sequence[Any]) -> bool:
    api = _tensor_api()
    return api is not None and any(isinstance(t, api.DTensor) for t in tensors)


def local(t: Any) -> Any:
    """The local shard of a ``DTensor`` (the same storage: in-place updates of it update the
    DTensor), anything else as it is."""
    if is_dtensor(t):
        with torch.no_grad():
            return t.to_local()
    return t


def local_list(tensors: Sequence[Any]) -> list[Any]:
    """:func:`local` of every element (``None`` kept)."""
    return [local(t) for t in tensors]


def like(estimate: torch.Tensor, param: Any) -> torch.Tensor:
    """``estimate`` (a full tensor of ``param``'s global shape, the same on every rank) laid out
    as ``param``: for a ``DTensor`` parameter, the DTensor of its mesh and placements whose local
    shard is this rank's slice of ``estimate`` (no communication); else ``estimate`` itself."""
    if not is_dtensor(param) or is_dtensor(estimate):
        return estimate
    return _tensor_api().distribute_tensor(estimate.to(device=local(param).device), param.device_mesh, param.placements,
                                           src_data_rank=None)  # fmt: skip


def _sharded_dims(t: Any) -> tuple[int, ...]:
    shard = _tensor_api().Shard
    return tuple(i for i, pl in enumerate(t.placements) if isinstance(pl, shard))


def _all_reduce(value: torch.Tensor, mesh: Any, dims: Sequence[int], op: Any) -> torch.Tensor:
    import torch.distributed as dist

    device = mesh.device_type
    v = value if device == value.device.type else value.to(device)
    for d in dims:
        dist.all_reduce(v, op=op, group=mesh.get_group(d))
    return v.to(value.device)


def shard_sums(tensors: Sequence[Any], values: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``values[i]`` (a local quantity of ``tensors[i]``'s shard: a sum over its local elements,
    any shape) summed over the ranks that hold ``tensors[i]``'s other shards; values of plain
    tensors as they are. One ``all_reduce`` per distinct (mesh, sharded dimensions) and
    dimension, of the values stacked."""
    out = list(values)
    keys: dict[Any, list[int]] = {}
    for i, t in enumerate(tensors):
        if is_dtensor(t) and _sharded_dims(t):
            keys.setdefault((t.device_mesh, _sharded_dims(t)), []).append(i)
    if not keys:
        return out
    import torch.distributed as dist

    for (mesh, dims), idx in keys.items():  # first-appearance order: the same on every rank
        shapes = [values[i].shape for i in idx]
        flat = torch.cat([values[i].reshape(-1).to(torch.float64) for i in idx])
        flat = _all_reduce(flat, mesh, dims, dist.ReduceOp.SUM)
        for i, part, shape in zip(idx, torch.split(flat, [s.numel() for s in shapes]), shapes):
            out[i] = part.reshape(shape).to(values[i].dtype)
    return out


def shard_sum(tensors: Sequence[Any], values: Sequence[torch.Tensor]) -> torch.Tensor:
    """The sum over all ``tensors`` and all their shards of ``values`` (:func:`shard_sums`, added)."""
    parts = shard_sums(tensors, values)
    return torch.stack([p.to(torch.float64) for p in parts]).sum(0)


def agree_any(flag: bool, tensors: Sequence[Any]) -> bool:
    """``flag`` or that of any rank of the meshes of the ``DTensor`` s among ``tensors`` (an
    ``all_reduce(MAX)`` over every dimension of each mesh); ``flag`` itself without DTensors."""
    meshes: list[Any] = []
    for t in tensors:
        if is_dtensor(t) and t.device_mesh not in meshes:
            meshes.append(t.device_mesh)
    if not meshes:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], dtype=torch.float64)
    for mesh in meshes:
        value = _all_reduce(value, mesh, range(mesh.ndim), dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def fraction_summary(counts: list[list[tuple[Any, int, int] | None]]) -> dict[str, Any]:
    """``{"overall": f, "groups": [f, ...], "params": [[f or None, ...], ...]}`` from, per param
    group, per parameter, ``(parameter, hits, total)`` over its local elements (``None``: no
    state yet): every count summed over the parameter's shards first (:func:`shard_sums`), so
    each fraction is that of the whole parameter on every rank (AGD's ``adaptive_fraction``,
    Sophia's ``win_rate``)."""
    entries = [e for group in counts for e in group if e is not None]
    summed = iter(shard_sums([e[0] for e in entries], [torch.tensor([e[1], e[2]], dtype=torch.float64) for e in entries]))
    groups, per_param, hits_all, total_all = [], [], 0, 0
    for group in counts:
        fracs, hits, total = [], 0, 0
        for e in group:
            if e is None:
                fracs.append(None)
                continue
            n, m = (int(round(v)) for v in next(summed).tolist())
            hits, total = hits + n, total + m
            fracs.append(n / max(m, 1))
        groups.append(hits / total if total else None)
        per_param.append(fracs)
        hits_all, total_all = hits_all + hits, total_all + total
    return {"overall": hits_all / total_all if total_all else None, "groups": groups, "params": per_param}
