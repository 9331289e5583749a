"""Batched sweeps: many runs of a vectorizable problem as one computation.

precond's update rules are elementwise, so ``C`` independent runs of a problem that is a
function of one flat vector (``problem.value(x)`` over ``(..., d)``) can be stacked as the
rows of one ``(C, d)`` parameter: one ``value`` call, one ``backward`` and one optimizer
step advance all of them. Rows differ in their seed (initial point) and learning rate.
Which optimizers can run so is a capability of the class (``cls.batchable``: the
elementwise rules), and the optimizer is made by its own constructor for batches,
``cls.batched(P, lrs, **hyperparameters)``, which validates every row's lr and steps the
rows by the rule's fused kernel with one coefficient row per run
(:meth:`precond.optim.PrecondOptimizer.batched`, :func:`precond.optim.kernels._host.run_table`).
Runs whose other hyperparameters differ go to different groups. (Stacked networks,
:mod:`.batched_modules`, hold one ``(C, n_k)`` tensor per parameter instead of one ``(C, d)``;
the driver is the same.)

Each row's record equals what :func:`precond.experiments.runner.run_one` gives for the
same config (tested to tight tolerance): the same divergence rule per row (loss NaN, inf
or above the bound, or a non-finite gradient), the same evaluation points, metrics read
by ``problem.evaluate`` on a model holding the row.
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any

import torch

from .batched_modules import Rows, StackedRows
from .run_config import RunConfig, canonical_json
from .runner import append_evaluation

if TYPE_CHECKING:
    from precond.problems import ProblemHandle


def batchable(name: str) -> bool:
    """Whether the optimizer called ``name`` can run a batch of configs (its class's ``batchable``)."""
    from precond.optim import get_optimizer

    try:
        return bool(getattr(get_optimizer(name), "batchable", False))
    except KeyError:
        return False


def can_batch(problem: ProblemHandle) -> bool:
    """Whether runs of ``problem`` can be batched: as ``(C, d)`` points (``vectorizable``) or as
    one stacked model (``stackable``: :mod:`.batched_modules`)."""
    return problem.vectorizable or problem.stackable


def batchable_config(cfg: RunConfig) -> bool:
    """Whether ``cfg`` can run in a batch: a batchable optimizer, no diagnostics, a constant lr and
    non-finite gradients refused (``nan_policy="raise"``, the default: a batch records them as divergence)."""
    return (batchable(cfg.optimizer) and not cfg.diagnostics and cfg.lr_schedule == "constant"
            and cfg.hyperparameters.get("nan_policy", "raise") == "raise")  # fmt: skip


def nonfinite_rows(grads: list[torch.Tensor]) -> torch.Tensor:
    """``(C,)``: which rows of the ``(C, n_k)`` tensors ``grads`` hold a NaN or an inf. A row's sum is
    finite when all its entries are (one cheap pass); only rows whose sum is not (an entry is not,
    or the sum overflowed) are checked entry by entry."""
    out = ~torch.isfinite(torch.stack([g.sum(-1) for g in grads]).sum(0))
    if bool(out.any()):
        out[out.clone()] = ~torch.stack([torch.isfinite(g[out]).all(-1) for g in grads]).all(0)
    return out


def group_key(cfg: RunConfig) -> str:
    """Configs with the same key run as one batch (everything but seed and lr agree)."""
    hp = {k: v for k, v in cfg.hyperparameters.items() if k != "lr"}
    return canonical_json([cfg.experiment, cfg.problem, cfg.problem_args, cfg.optimizer, cfg.label, hp, cfg.steps,
                           cfg.eval_every, cfg.divergence_bound, cfg.dtype, cfg.trajectory, list(cfg.metrics), cfg.target])  # fmt: skip


def run_group(cfgs: list[RunConfig], problem: ProblemHandle | None = None) -> list[dict[str, Any]]:
    """Run configs that share :func:`group_key` as one batch; one record per config, in order.
    ``problem``: their problem as their sweep resolved it (default: resolved from the first config)."""
    from precond.optim import get_optimizer
    from precond.optim._finite import all_finite
    from precond.problems import DTYPES

    t0 = time.perf_counter()
    c0 = cfgs[0]
    if any(group_key(c) != group_key(c0) for c in cfgs):
        raise ValueError("run_group: configs differ in more than seed and lr")
    handle = problem or c0.resolve_problem()
    problem = handle.build()
    order = sorted(range(len(cfgs)), key=lambda i: cfgs[i].seed)  # the rows of one seed side by side: they share its batches
    cfgs = [cfgs[i] for i in order]
    if handle.vectorizable:
        runs: Rows = FlatRows(problem, cfgs, DTYPES[c0.dtype])
    elif handle.stackable:
        runs = StackedRows(problem, cfgs)
    else:
        raise ValueError(f"run_group: problem {handle.name!r} is neither vectorizable nor stackable; run its configs one by one")
    C = len(cfgs)
    P = [p.clone().requires_grad_(True) for p in runs.P0]  # (C, n_k) each
    d = sum(p.shape[1] for p in P)
    cls = get_optimizer(c0.optimizer)
    default_lr = inspect.signature(cls.__init__).parameters["lr"].default
    lrs = [float(c.hyperparameters.get("lr", default_lr)) for c in cfgs]
    hp = {k: v for k, v in c0.hyperparameters.items() if k != "lr"}
    # one lr per row, each validated; the rule's fused kernel with one coefficient row per run. The
    # driver checks every row's gradient itself (a non-finite one is that row's divergence) and
    # zeroes the rows it stops, so the optimizer's own all-rows check is not needed: 'propagate'
    opt = cls.batched(P, lrs, **dict(hp, nan_policy="propagate"))
    active = torch.ones(C, dtype=torch.bool)
    everyone = True  # every row still runs (active.all())
    diverged_step = [None] * C
    histories: list[dict[str, list[Any]]] = [{"step": [], "train_loss": []} for _ in range(C)]
    track = c0.trajectory and d in (1, 2)
    traj = [torch.cat(P, 1).detach()] if track else []

    def record(step: int, losses: torch.Tensor, with_frac: bool) -> None:
        fr = opt.adaptive_fraction()["rows"] if with_frac and hasattr(opt, "adaptive_fraction") else None
        rows = torch.nonzero(active).flatten().tolist()
        for i, metrics in zip(rows, runs.metrics(P, rows, c0.metrics)):
            h = histories[i]
            append_evaluation(h, step, float(losses[i]), metrics)
            if fr is not None:
                h.setdefault("adaptive_fraction", []).append(float(fr[i]))

    reached = torch.full((C,), -1, dtype=torch.long)  # budget.target: the first step whose loss is <= target, minus 1
    for t in range(1, c0.steps + 1):
        loss = runs.loss(P, t)
        lv = loss.detach()
        if t == 1:
            record(0, lv, False)
        if c0.target is not None:
            reached[active & (reached < 0) & (lv <= c0.target)] = t - 1
        fine = torch.isfinite(lv) & (lv <= c0.divergence_bound)
        for p in P:
            p.grad = None  # opt.zero_grad(set_to_none=True) without its profiler scaffolding
        if everyone and bool(fine.all()):  # the common step: every row runs, no loss diverged, no masks
            loss.sum().backward()
            bad = None if all_finite([p.grad for p in P]) else nonfinite_rows([p.grad for p in P])
        else:
            bad = active & ~fine
            torch.where(active & ~bad, loss, torch.zeros_like(loss)).sum().backward()
            bad |= active & nonfinite_rows([p.grad for p in P])
        if bad is not None:
            for i in torch.nonzero(bad).flatten().tolist():
                diverged_step[i] = t
            active &= ~bad
            everyone = bool(active.all())
            if not bool(active.any()):
                break
            for p in P if not everyone else ():
                p.grad[~active] = 0.0
        opt.step()
        if track:
            traj.append(torch.cat(P, 1).detach())
        if t % c0.eval_every == 0 or t == c0.steps:
            record(t, lv, True)
    wall = (time.perf_counter() - t0) / C
    out = []
    steps_rows = torch.stack(traj).transpose(0, 1) if track else None  # (C, steps + 1, d): one tensor, then a list per row
    for i, c in enumerate(cfgs):
        h = histories[i]
        status = "done" if diverged_step[i] is None else "diverged"
        final: dict[str, Any] = {}
        if status == "done":
            final = {k: v[-1] for k, v in h.items() if k != "step" and v}
            final["train_loss"] = float(lv[i])  # the last step's loss, as run_one
            if c0.target is not None:
                final["steps_to_target"] = int(reached[i]) if reached[i] >= 0 else c0.steps + 1
        if track:
            n = len(traj) if diverged_step[i] is None else diverged_step[i]
            h["trajectory"] = steps_rows[i, :n].tolist()
        out.append({"status": status, "diverged_step": diverged_step[i], "final_metrics": final, "history": h,
                    "wall_time": wall, "mode": f"{runs.mode}[{C}]"})  # fmt: skip
    back = [None] * C
    for k, i in enumerate(order):
        back[i] = out[k]
    return back


class FlatRows(Rows):
    """The rows of a batch of runs of a vectorizable ``problem`` (:class:`.batched_modules.Rows`):
    ``P0`` the initial points as one ``(C, d)`` tensor, ``loss(P, t)`` the values ``problem.value(X, t)``."""

    mode = "vectorized"

    def __init__(self, problem: Any, cfgs: list[RunConfig], dtype: torch.dtype) -> None:
        rows = []
        for c in cfgs:
            torch.manual_seed(c.seed)
            rows.append(problem.initial_point(c.seed).reshape(-1).to(dtype))
        self.problem, self.P0 = problem, [torch.stack(rows)]
        self.probe = problem.model(cfgs[0].seed).to(dtype)
        self.probe_params = [p for p in self.probe.parameters() if p.requires_grad]
        if sum(p.numel() for p in self.probe_params) != self.P0[0].shape[1] or not torch.equal(
            torch.nn.utils.parameters_to_vector(self.probe_params).detach(), rows[0]
        ):
            raise ValueError(f"{type(problem).__name__}: initial_point(seed) is not the flattened model(seed); cannot vectorize")

    def loss(self, P: list[torch.Tensor], t: int) -> torch.Tensor:
        return self.problem.value(P[0], t)

