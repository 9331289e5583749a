"""Helpers of tests/optim/test_distributed_*.py: a tiny float64 classifier trained on one process,
under DDP and under FSDP2 (gloo, CPU, ``torch.multiprocessing.spawn``), with
``torch.distributed.checkpoint`` saves and loads through torch's own state-dict API.

Every run trains the same model on the same global batches: rank ``r`` of ``W`` takes rows
``r*B/W ... (r+1)*B/W`` of batch ``t``, so the mean of the ranks' mean losses is the
one-process mean loss on the whole batch.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

import precond.optim as po

BATCH, DIN, HIDDEN, CLASSES = 8, 6, 10, 3

#: case -> (optimizer, hyperparameters); Adam and AdaGradNorm run their default (fused) path
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "agd_loop": ("AGD", dict(lr=2e-2, delta=0.01, foreach=False, fused=False, weight_decay=1e-2)),
    "agd_fused": ("AGD", dict(lr=2e-2, delta=0.01, fused=True, weight_decay=1e-2)),
    "adam": ("Adam", dict(lr=2e-2)),
    "adagrad_norm": ("AdaGradNorm", dict(lr=0.3)),
    "adagrad_norm_global": ("AdaGradNorm", dict(lr=0.3, scope="global", weight_decay=1e-2)),
    "gauss_newton": ("GaussNewtonDiag", dict(lr=0.1, damping=0.1, estimator="ggn", beta2=0.5, momentum=0.5, update_every=3)),
    "sophia": ("Sophia", dict(lr=2e-2, estimator="hutchinson", update_every=2, weight_decay=1e-2)),
}
#: every other optimizer, and the foreach path, under FSDP2 only
FOREACH_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "agd_foreach": ("AGD", dict(lr=2e-2, delta=0.01, foreach=True, amsgrad=True)),
    "adam_foreach": ("Adam", dict(lr=2e-2, foreach=True)),
    "adamw": ("AdamW", dict(lr=2e-2, weight_decay=0.1)),
    "adabound": ("AdaBound", dict(lr=2e-2, foreach=True)),
    "adagrad": ("AdaGrad", dict(lr=0.1)),
    "rmsprop": ("RMSProp", dict(lr=1e-2, foreach=True)),
    "sgd": ("SGD", dict(lr=0.1, momentum=0.9)),
    "adagrad_norm_foreach": ("AdaGradNorm", dict(lr=0.3, foreach=True)),
    "gauss_newton_foreach": ("GaussNewtonDiag", dict(lr=0.1, damping=0.1, estimator="ggn", foreach=True)),
}
ALL_CASES = {**CASES, **FOREACH_CASES}
#: the cases also run on a 2-D mesh (HSDP: replicated over 2 ranks, sharded over 1)
HSDP_CASES = ("agd_fused", "adagrad_norm_global", "sophia")
#: the cases checkpointed at step CUT and resumed on the other world size
CHECKPOINTED = ("agd_fused", "adagrad_norm", "gauss_newton", "sophia")
STEPS, CUT = 20, 10
NAN_STEP = 5  # the "skip" case: a NaN in rank 1's shard of one gradient at this step


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(DIN, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, CLASSES)).double()


def batch(t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``t``: Gaussian inputs, labels of a fixed linear teacher (learnable)."""
    teacher = torch.randn(DIN, CLASSES, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    x = torch.randn(BATCH, DIN, generator=torch.Generator().manual_seed(1000 + t), dtype=torch.float64)
    return x, (x @ teacher).argmax(1)


class Run:
    """One model and optimizer (and feeder) of one case on this process, however wrapped."""

    def __init__(self, case: str, mode: str, *, nan_policy: str = "raise") -> None:
        import torch.distributed as dist

        from precond.curvature import CurvatureFeeder
        from precond.curvature.distributed import AllReduceMean, FullReplica

        name, hyper = ALL_CASES[case]
        self.mode = mode
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if mode != "single" else (0, 1)
        model = make_model()
        reduction, inner = None, model
        if mode == "ddp":
            model = nn.parallel.DistributedDataParallel(model)
            inner, reduction = model.module, AllReduceMean()
        elif mode in ("fsdp", "hsdp"):
            from torch.distributed.device_mesh import init_device_mesh
            from torch.distributed.fsdp import fully_shard

            # hsdp: a 2-D mesh, replicated over the 2 ranks and sharded over 1 (Replicate(), Shard(0)):
            # nothing may be summed over the replicated dimension
            mesh = (init_device_mesh("cpu", (self.world, 1), mesh_dim_names=("replicate", "shard")) if mode == "hsdp"
                    else init_device_mesh("cpu", (self.world,)))  # fmt: skip
            reduction = FullReplica(copy.deepcopy(model))
            fully_shard(model[0], mesh=mesh)
            fully_shard(model[2], mesh=mesh)
            fully_shard(model, mesh=mesh)
            inner = model
        self.model, self.inner = model, inner
        self.opt = getattr(po, name)(model.parameters(), nan_policy=nan_policy, **hyper)
        self.feeder = None
        if getattr(self.opt, "needs_curvature", False):
            self.feeder = CurvatureFeeder(self.opt, inner, loss_type="cross_entropy", reduction=reduction,
                                          generator=torch.Generator().manual_seed(7))  # fmt: skip
        self.losses: list[float] = []

    def rows(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch(t)
        n = BATCH // self.world
        return x[self.rank * n:(self.rank + 1) * n], y[self.rank * n:(self.rank + 1) * n]

    def train(self, start: int, stop: int, inject: Callable[["Run", int], None] | None = None) -> None:
        for t in range(start, stop):
            x, y = self.rows(t)
            self.opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.model(x), y)
            loss.backward()
            if inject is not None:
                inject(self, t)
            if self.feeder is not None:
                self.feeder.calls = t  # the schedule counts from the run's first step (resumed runs too)
                self.feeder.maybe_update(loss_fn=lambda m: F.cross_entropy(m(x), y), outputs_fn=lambda m: (m(x), y))
            self.opt.step()
            self.losses.append(self.global_mean(loss.item()))

    def global_mean(self, value: float) -> float:
        if self.mode == "single":
            return value
        import torch.distributed as dist

        v = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(v)
        return float(v) / self.world

    def params(self) -> list[torch.Tensor]:
        """The full parameters (gathered from the shards under FSDP2)."""
        return [(p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone() for p in self.model.parameters()]

    def diagnostics(self) -> dict[str, Any]:
        if hasattr(self.opt, "adaptive_fraction"):
            return self.opt.adaptive_fraction()
        if hasattr(self.opt, "win_rate"):
            return self.opt.win_rate()
        return {}

    # ---- torch.distributed.checkpoint -----------------------------------------------------
    def save(self, path: str) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        msd, osd = get_state_dict(self.model, self.opt)
        dcp.save({"model": msd, "optim": osd, **self._extra()}, checkpoint_id=path)

    def _extra(self) -> dict[str, Any]:
        """The feeder's random state (Hutchinson's probes), the same on every rank."""
        return {} if self.feeder is None else {"generator": self.feeder.generator.get_state()}

    def load(self, path: str) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        msd, osd = get_state_dict(self.model, self.opt)  # the template: a fresh optimizer steps once with zero grads and lr=0
        state = {"model": msd, "optim": osd, **self._extra()}
        dcp.load(state, checkpoint_id=path)
        set_state_dict(self.model, self.opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
        if self.feeder is not None:
            self.feeder.generator.set_state(state["generator"])


def nan_in_rank1_shard(run: Run, t: int) -> None:
    """At NAN_STEP, one NaN in rank 1's local shard of the last layer's weight gradient (its
    other ranks' shards stay finite: only a check agreed over the mesh makes them skip too)."""
    if t == NAN_STEP and run.rank == (1 if run.world > 1 else 0):
        g = run.model[2].weight.grad
        (g.to_local() if hasattr(g, "to_local") else g).view(-1)[-1] = float("nan")


def reference(out: Path) -> dict[str, Any]:
    """The one-process runs: every case to STEPS, checkpointed at CUT (the checkpointed cases),
    and the NaN-skip run; their checkpoints go to ``out/single/<case>``."""
    res: dict[str, Any] = {}
    for case in ALL_CASES:
        run = Run(case, "single")
        run.train(0, CUT)
        if case in CHECKPOINTED:
            run.save(str(out / "single" / case))
        run.train(CUT, STEPS)
        res[case] = {"params": run.params(), "losses": run.losses, "diagnostics": run.diagnostics()}
    run = Run("agd_fused", "single", nan_policy="skip")
    run.train(0, STEPS, inject=nan_in_rank1_shard)
    res["skip"] = {"params": run.params(), "skipped": run.opt.skipped_steps}
    return res


def _worker(rank: int, world: int, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=world)
    out_dir = Path(out)
    res: dict[str, Any] = {}
    try:
        for case in ALL_CASES:
            for mode in (("ddp", "fsdp") if case in CASES else ("fsdp",)) + (("hsdp",) if case in HSDP_CASES else ()):
                run = Run(case, mode)
                run.train(0, CUT)
                if mode == "fsdp" and case in CHECKPOINTED:
                    run.save(str(out_dir / "fsdp" / case))
                run.train(CUT, STEPS)
                res[f"{case}/{mode}"] = {"params": run.params(), "losses": run.losses, "diagnostics": run.diagnostics()}
            if case in CHECKPOINTED:  # the one-process checkpoint, resumed by 2 FSDP2 ranks
                run = Run(case, "fsdp")
                run.load(str(out_dir / "single" / case))
                run.train(CUT, STEPS)
                res[f"{case}/resumed"] = {"params": run.params(), "losses": run.losses}
        run = Run("agd_fused", "fsdp", nan_policy="skip")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            run.train(0, STEPS, inject=nan_in_rank1_shard)
        res["skip/fsdp"] = {"params": run.params(), "skipped": run.opt.skipped_steps}
    finally:
        torch.save(res, out_dir / f"rank{rank}.pt")
        dist.destroy_process_group()


def distributed(out: Path, world: int = 2) -> list[dict[str, Any]]:
    """Every case under DDP and FSDP2 on ``world`` gloo processes; one result dict per rank."""
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(world, str(out)), nprocs=world, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)]


def resumed_single(out: Path) -> dict[str, Any]:
    """The FSDP2 checkpoints (2 ranks, at CUT) resumed on one process to STEPS."""
    res = {}
    for case in CHECKPOINTED:
        run = Run(case, "single")
        run.load(str(out / "fsdp" / case))
        run.train(CUT, STEPS)
        res[case] = {"params": run.params(), "losses": run.losses}
    return res


def all_results() -> dict[str, Any]:
    """Reference, distributed and resumed results, computed once in a temporary directory."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        ref = reference(out)
        ranks = distributed(out)
        resumed = resumed_single(out)
    return {"single": ref, "ranks": ranks, "resumed": resumed}
