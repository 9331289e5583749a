"""Batched sweeps of network problems: ``C`` runs of a stackable problem as one stacked model.

Run ``i`` (config ``cfgs[i]``) starts from ``problem.model(seed_i)``, whose parameters are row
``i`` of one ``(C, n_k)`` tensor per parameter (:meth:`precond.problems.stacked.RowLayout.stack`),
and sees at step ``t`` the ``t``-th batch of ``problem.batches(seed_i)``: exactly the
initialization and the data order of its one-by-one run
(:func:`precond.experiments.runner.run_one`). Each distinct seed's stream is drawn once per
step; runs of one seed share its batch without copies when they are equally many and side by
side (:func:`.vectorized.run_group` orders the rows by seed), and when every stream gives the
same tensors (full batch) all rows take them. The losses of all rows come from one stacked forward
(:class:`precond.problems.stacked.StackedProblem`: batched matrix products for the known
models, ``functional_call`` under ``vmap`` for others), so one ``backward`` and one optimizer
step advance every run; the driver (divergence per row, evaluations, records) is
:func:`precond.experiments.vectorized.run_group`'s, shared with the flat problems.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from .run_config import RunConfig

if TYPE_CHECKING:
    from precond.problems import ProblemHandle

#: the most rows of one stacked task (the speed-up per run levels off before: docs/experiments.md)
STACK_ROWS = 64
#: the most floating-point operations one stacked task does per step (forward and backward of all its
#: rows): past about this, a task's products stop gaining on the loop's (mnist1d_cnn: 9 rows of
#: 61 MFLOP are 1.6x to 1.7x the loop, 35 rows 1.2x to 1.4x; docs/experiments.md, "Batched network sweeps")
STACK_FLOPS = 6e8


def step_flops(problem: ProblemHandle) -> float:
    """FLOPs of one training step of one run of ``problem`` (forward and backward of its loss on
    seed 0's first batch; matrix products and convolutions, by ``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    p = problem.build()
    model = p.model(0)
    with FlopCounterMode(display=False) as counter:
        p.loss(model, next(p.batches(0))).backward()
    return float(counter.get_total_flops())


def stack_rows(problem: ProblemHandle) -> int:
    """The most rows a stacked task of ``problem`` should have: :data:`STACK_ROWS`, or fewer so that
    a step stays under :data:`STACK_FLOPS` (1: batching does not pay; the runs go one by one)."""
    return max(1, min(STACK_ROWS, int(STACK_FLOPS // max(step_flops(problem), 1.0))))


def chunks(n: int, groups: int, workers: int, max_rows: int = STACK_ROWS) -> int:
    """Rows per task for a group of ``n`` configs, one of ``groups`` groups: at most ``max_rows``, in
    equal parts, and enough parts that ``workers`` tasks can run at once."""
    parts = max(math.ceil(n / max_rows), math.ceil(workers / max(groups, 1)))
    return max(1, math.ceil(n / parts))


class Rows:
    """The rows of a batch of runs, as :func:`.vectorized.run_group` drives them: ``P0`` the
    initial rows as ``(C, n_k)`` tensors (run ``i``'s point is the concatenation of their rows
    ``i``: one ``(C, d)`` tensor for flat problems, one per parameter for stacked models),
    ``loss(P, t)`` the ``(C,)`` training losses at step ``t`` (called once per step, in order),
    ``metrics(P, rows, wanted)`` ``problem.evaluate`` of the given rows; here row by row, each
    loaded into ``probe``'s parameters ``probe_params``."""

    mode = ""
    problem: Any
    P0: list[torch.Tensor]
    probe: torch.nn.Module
    probe_params: list[torch.Tensor]

    def loss(self, P: list[torch.Tensor], t: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def metrics(self, P: list[torch.Tensor], rows: list[int], wanted: tuple[str, ...]) -> list[dict[str, Any]]:
        from .runner import _metrics_of

        out = []
        for i in rows:
            with torch.no_grad():
                torch.nn.utils.vector_to_parameters(torch.cat([q[i].detach() for q in P]), self.probe_params)
            out.append(_metrics_of(self.problem, self.probe, wanted))
        return out


class StackedRows(Rows):
    """The rows of a batch of runs of a stackable ``problem`` (one per config in ``cfgs``): the
    flattened initial models and their losses from one stacked model
    (:class:`precond.problems.stacked.StackedProblem`); evaluated row by row (a stacked forward
    over the whole data set measured 1.6 to 3.5 times slower)."""

    mode = "stacked"

    def __init__(self, problem: Any, cfgs: list[RunConfig]) -> None:
        from precond.problems import Batch
        from precond.problems.stacked import RowLayout, StackedProblem

        seeds = sorted({c.seed for c in cfgs})
        made = {s: self._model(problem, s) for s in seeds}  # one model per seed
        self.probe = self._model(problem, cfgs[0].seed)
        models = [made[c.seed] for c in cfgs]
        self.probe_params = [p for p in self.probe.parameters() if p.requires_grad]
        self.layout = RowLayout(self.probe)
        self.P0 = self.layout.stack(models)
        frozen = [n for n, p in self.probe.named_parameters() if not p.requires_grad]
        self.frozen = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]) for n in frozen}
        stream = [seeds.index(c.seed) for c in cfgs]
        self.row_stream = torch.tensor(stream)
        n = len(cfgs) // len(seeds)  # rows of one seed side by side, as many for each: they read its batch as it is
        self.blocks = stream == [k for k in range(len(seeds)) for _ in range(n)]
        self.joint = problem.stacked_batches(seeds)  # (S, ...) a step, or (1, ...) when all rows share it
        self.first = next(self.joint)
        first = Batch(self.first.inputs[0], self.first.targets[0], self.first.t)
        self.problem, self.stacked = problem, StackedProblem(problem, self.probe, first)

    @staticmethod
    def _model(problem: Any, seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)  # as run_one makes it
        return problem.model(seed)

    def _rows(self, t: int) -> Any:
        """The step's batches stacked to ``(S, ...)`` as :meth:`StackedProblem.loss` reads them: one
        (``S = 1``) when all rows share it (one seed, or full batch), one per seed when the rows of
        each seed are side by side (:attr:`blocks`), else one per row."""
        from precond.problems import Batch

        if t == 1:
            b, self.first = self.first, None
        else:
            b = next(self.joint)
        if b.inputs.shape[0] == 1 or self.blocks:
            return b
        return Batch(b.inputs.index_select(0, self.row_stream), b.targets.index_select(0, self.row_stream), t)

    def loss(self, P: list[torch.Tensor], t: int) -> torch.Tensor:
        return self.stacked.loss(self.layout(P, self.frozen), self._rows(t))
