r"""Curvature estimates under data parallelism: the :class:`~precond.curvature.feed.Reduction` s
that make :class:`~precond.curvature.CurvatureFeeder` feed the same curvature on every rank.

With ``W`` ranks, rank ``r`` holding rows :math:`B_r` of the global batch (equal sizes), the
mean loss is :math:`L = \frac1W \sum_r L_r` and every curvature diagonal the feeder computes is
linear in the loss, so

.. math:: \operatorname{diag} C(L) = \frac1W \sum_r \operatorname{diag} C(L_r)

for the exact GGN and Hessian diagonals; a Hutchinson estimate with the same probes on every
rank (the same ``generator`` seed) is :math:`z \odot \frac1W\sum_r H_r z`, the one-process
estimate on the whole batch; a GNB estimate is the mean of ``W`` independent unbiased
estimates (each rank draws its own labels), unbiased as well. :class:`AllReduceMean` takes that
mean (one ``all_reduce`` of the concatenated estimates; with unequal shares, weighted): under DDP give the feeder the
wrapped module (``ddp.module``, whose parameters are the optimizer's) and this reduction.

Under FSDP2 each rank holds shards of the parameters, and the estimators need whole ones (a
per-sample Jacobian, a Hessian-vector product): :class:`FullReplica` estimates on a plain copy of
the model taken before sharding, into which it gathers the full parameters first
(``DTensor.full_tensor()``, one all-gather per parameter and refresh), then averages like
:class:`AllReduceMean`; the optimizer keeps its shard of the averaged estimate
(:meth:`precond.optim.curvature_base.CurvatureOptimizer.update_curvature`). The replica costs
one unsharded copy of the model per rank: FSDP2's memory saving does not extend to the
curvature-fed optimizers.
"""

from __future__ import annotations

import torch
from torch import nn

from precond.optim.distributed import is_dtensor

from .feed import Reduction
from .params import trainable


class AllReduceMean(Reduction):
    """The mean over the ranks of ``group`` (default: the whole world) of every estimate, each
    rank's times its ``weight`` (``W n_r / B`` when rank ``r`` holds ``n_r`` of the ``B`` rows:
    then the result is the whole batch's estimate for unequal shares too; 1 by default)."""

    def __init__(self, group: object | None = None, weight: float = 1.0) -> None:
        self.group = group
        self.weight = weight

    def reduce(self, diag: list[torch.Tensor]) -> list[torch.Tensor]:
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            return diag
        flat = torch.cat([d.reshape(-1) for d in diag])
        home = flat.device
        flat = flat.to(comm_device(dist.get_backend(self.group), home))  # NCCL reduces CUDA tensors only
        if self.weight != 1.0:
            flat *= self.weight
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=self.group)
        flat = (flat / dist.get_world_size(self.group)).to(home)
        return [chunk.view_as(d) for chunk, d in zip(torch.split(flat, [d.numel() for d in diag]), diag)]


def comm_device(backend: str, device: torch.device) -> torch.device:
    """Where a tensor on ``device`` must be for a collective of ``backend``: the current CUDA device
    for NCCL (which takes CUDA tensors only, e.g. an estimate made on a CPU replica), else ``device``."""
    if str(backend).lower() == "nccl" and device.type != "cuda":
        return torch.device("cuda")
    return device


class FullReplica(AllReduceMean):
    """FSDP2: estimate on ``replica``, a plain copy of the model made before ``fully_shard``
    (``FullReplica(copy.deepcopy(model))``), holding the full parameters gathered from the
    sharded model at every refresh; then the mean over ranks."""

    def __init__(self, replica: nn.Module, group: object | None = None) -> None:
        super().__init__(group)
        self.replica = replica

    @torch.no_grad()
    def source(self, model: nn.Module) -> nn.Module:
        mine, theirs = trainable(self.replica), trainable(model)
        if [n for n, _ in mine] != [n for n, _ in theirs]:
            raise ValueError("FullReplica: the replica's trainable parameters are not the model's (same names, same order): "
                             "make it with copy.deepcopy(model) before fully_shard(model)")  # fmt: skip
        for (_, r), (_, p) in zip(mine, theirs):
            r.copy_(p.full_tensor() if is_dtensor(p) else p)
        for r, b in zip(self.replica.buffers(), model.buffers()):
            r.copy_(b.full_tensor() if is_dtensor(b) else b)
        for r, m in zip(self.replica.modules(), model.modules()):
            r.training = m.training
        return self.replica
