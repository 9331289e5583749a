"""Feed a curvature-driven optimizer (``needs_curvature = True``) from a training loop.

The one interface: ``optimizer.update_curvature(diag)`` with one tensor per parameter in
``param_groups`` order. :class:`CurvatureFeeder` computes the estimate of its
:class:`precond.curvature.CurvatureSchedule` on the calls the schedule names (by default the
one the optimizer asks for, :meth:`CurvatureSchedule.of`: its ``curvature_estimator``, every
``curvature_every`` steps, with ``curvature_samples`` samples; each field may be overridden)
and maps it from the model's parameters to the optimizer's order. For a :class:`precond.curvature.RotatedOptimizer`
it estimates ``diag(U^T C U)``, the curvature of the rotated coordinates (with the wrapped
optimizer's settings)::

    opt = Sophia(model.parameters(), lr=1e-3)
    feeder = CurvatureFeeder(opt, model, loss_type="cross_entropy")
    for x, y in batches:
        feeder.maybe_update(outputs_fn=lambda m: (m(x), y), loss_fn=lambda m: F.cross_entropy(m(x), y))
        opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()

The estimate is computed with ``torch.autograd.grad`` and never touches ``p.grad``.

**Distributed training** (DDP, FSDP2): the seam is ``reduction=`` (a :class:`Reduction`): it
names the module the estimate is computed on (:meth:`Reduction.source`: the model itself, or
a full-parameter replica of a sharded one) and turns this rank's estimate into the one every
rank feeds (:meth:`Reduction.reduce`: the mean over ranks). :mod:`precond.curvature.distributed`
has the two that DDP and FSDP2 need.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from .basis import RotatedOptimizer
from .estimators import OUTPUT_SPACE_ESTIMATORS, estimate_diagonal
from .losses import check_loss_type
from .params import trainable
from .schedule import CurvatureSchedule


class Reduction:
    """The distributed seam of :class:`CurvatureFeeder` (this base: one process, nothing to do).

    :meth:`source` gives the module to estimate on, whose trainable parameters correspond one
    to one, in order, to the feeder's model's (the model itself by default); :meth:`reduce`
    maps this rank's estimates (that order) to the ones fed, the same on every rank.
    """

    def source(self, model: nn.Module) -> nn.Module:
        return model

    def reduce(self, diag: list[torch.Tensor]) -> list[torch.Tensor]:
        return diag


class CurvatureFeeder:
    """Computes a curvature diagonal on the calls of a :class:`CurvatureSchedule` and hands it to
    ``optimizer.update_curvature``.

    Args:
        optimizer: an optimizer with ``update_curvature`` (``needs_curvature = True``).
        model: the module whose trainable parameters the optimizer updates.
        schedule: the estimator and the calls that refresh (default:
            ``CurvatureSchedule.of(optimizer, estimator=..., every=..., n_samples=..., first=...)``,
            the optimizer's ``curvature_estimator``, ``curvature_every`` and ``curvature_samples``).
        loss_type: ``"mse"``, ``"logistic"`` or ``"cross_entropy"`` (for ``ggn``/``gnb``).
        estimator, every, n_samples, first: without ``schedule``, override the fields of the
            optimizer's schedule (``estimator`` is required when the optimizer has no
            ``curvature_estimator``; ``every`` and ``n_samples`` default to 1). ``first`` is
            the call of the first refresh (0: before the first step, which
            :class:`precond.optim.GaussNewtonDiag` needs). The official Sophia loop refreshes
            after steps k-1, 2k-1, ... (its first k steps see ``h = 0``): ``first=k``.
        generator: random generator for GNB labels / Hutchinson probes (reproducibility).
        reduction: the distributed seam (:class:`Reduction`; default: one process).

    :meth:`maybe_update` is called once per training step *before* ``optimizer.step()``;
    it refreshes the curvature on calls ``first, first+k, first+2k, ...``. ``estimator``,
    ``every``, ``n_samples`` and ``first`` read the schedule's fields.
    """

    def __init__(
        self,
        optimizer: Any,
        model: nn.Module,
        *,
        schedule: CurvatureSchedule | None = None,
        loss_type: str | None = None,
        estimator: str | None = None,
        every: int | None = None,
        n_samples: int | None = None,
        generator: torch.Generator | None = None,
        first: int | None = None,
        reduction: Reduction | None = None,
    ) -> None:
        if not callable(getattr(optimizer, "update_curvature", None)) or getattr(optimizer, "needs_curvature", True) is False:
            raise TypeError(f"{type(optimizer).__name__} has no update_curvature(diag): it does not take curvature")
        overrides = dict(estimator=estimator, every=every, n_samples=n_samples, first=first)
        if schedule is None:
            schedule = CurvatureSchedule.of(optimizer, **overrides)
        elif not isinstance(schedule, CurvatureSchedule):
            raise TypeError(f"schedule must be a CurvatureSchedule, got {type(schedule).__name__}")
        elif any(v is not None for v in overrides.values()):
            raise TypeError("CurvatureFeeder: pass schedule= or the fields estimator=, every=, n_samples=, first=, not both")
        self.schedule = schedule
        self.optimizer = optimizer
        self.model = model
        self.loss_type = None if loss_type is None else check_loss_type(loss_type)
        if self.estimator in OUTPUT_SPACE_ESTIMATORS and self.loss_type is None:
            raise ValueError(f"estimator {self.estimator!r} needs loss_type ('mse', 'logistic' or 'cross_entropy')")
        self.generator = generator
        self.reduction = Reduction() if reduction is None else reduction
        if isinstance(optimizer, RotatedOptimizer):
            optimizer.basis_in(model)  # its parameters must be the model's: fail here, not at the first refresh
        self.calls = 0
        self.updates = 0

    estimator = property(lambda self: self.schedule.estimator, doc="The schedule's estimator (canonical name).")
    every = property(lambda self: self.schedule.every, doc="The schedule's refresh period.")
    n_samples = property(lambda self: self.schedule.n_samples, doc="The schedule's samples per estimate.")
    first = property(lambda self: self.schedule.first, doc="The schedule's first refreshing call.")

    def estimate(self, *, loss_fn: Callable[[nn.Module], torch.Tensor] | None = None, outputs_fn: Callable | None = None) -> list[torch.Tensor | None]:
        """The estimate, in the optimizer's parameter order (``None`` for params not in the model);
        for a :class:`RotatedOptimizer`, ``[diag(U^T C U)]`` (one flat tensor)."""
        rotated = isinstance(self.optimizer, RotatedOptimizer)
        diag = estimate_diagonal(
            self.reduction.source(self.model), self.estimator, loss_fn=loss_fn, outputs_fn=outputs_fn, loss_type=self.loss_type,
            n_samples=self.n_samples, generator=self.generator, basis=self.optimizer.basis_in(self.model) if rotated else None,
        )  # fmt: skip
        diag = self.reduction.reduce(diag)
        if rotated:
            return diag
        by_param = {id(p): d for (_, p), d in zip(trainable(self.model), diag)}
        return [by_param.get(id(p)) for g in self.optimizer.param_groups for p in g["params"]]

    def update(self, *, loss_fn: Callable[[nn.Module], torch.Tensor] | None = None, outputs_fn: Callable | None = None) -> None:
        """Compute the estimate now and feed it."""
        self.optimizer.update_curvature(self.estimate(loss_fn=loss_fn, outputs_fn=outputs_fn))
        self.updates += 1

    def maybe_update(self, *, loss_fn: Callable[[nn.Module], torch.Tensor] | None = None, outputs_fn: Callable | None = None) -> bool:
        """Call once per step before ``optimizer.step()``; refreshes on calls first, first+k, ...; returns whether it did."""
        due = self.schedule.due(self.calls)
        self.calls += 1
        if due:
            self.update(loss_fn=loss_fn, outputs_fn=outputs_fn)
        return due
