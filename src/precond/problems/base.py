"""The interface every problem implements, so that any optimizer runs on any problem.

A problem makes a seeded model (an ``nn.Module``; analytic functions hold their point as
one parameter ``x``), an endless stream of training batches, the training loss, and its
evaluation metrics. Problems that are a pure function of one flat vector (analytic
functions, quadratics) also expose ``value(x)`` over a batch of points, which the
experiments engine uses to run whole sweeps as one vectorized computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Sequence

import torch
from torch import nn

from precond.curvature import losses
from precond.curvature.losses import LOSS_TYPES  # re-exported: the loss types problems may declare


@dataclass
class Batch:
    """One training batch: ``inputs``/``targets`` (either may be ``None``) and the step ``t`` (from 1)."""

    inputs: Any = None
    targets: Any = None
    t: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Problem:
    """Base class. Subclasses set the class attributes and implement the methods marked so."""

    #: registry name, e.g. "rosenbrock"
    name: ClassVar[str] = ""
    #: "analytic", "online", "quadratic", "regression", "classification", "language", ...
    kind: ClassVar[str] = ""
    #: which seed document (or paper) the problem comes from
    source: ClassVar[str] = ""
    #: one of LOSS_TYPES (the curvature layer's) when the loss is that function of ``forward``'s outputs, else None
    loss_type: ClassVar[str | None] = None
    #: the metric the tuning protocol selects on, and the one it reports
    val_metric: ClassVar[str] = "val_loss"
    test_metric: ClassVar[str] = "test_loss"
    #: True when larger metric values are better (accuracy); False for losses
    higher_is_better: ClassVar[bool] = False
    #: True when ``value(x)`` is implemented (vectorized sweeps)
    vectorizable: ClassVar[bool] = False
    #: True when runs can be stacked as one batched model (:mod:`precond.problems.stacked`): the
    #: model is a function of its parameters and inputs only, and ``batches(seed)`` does not
    #: depend on the model
    stackable: ClassVar[bool] = False
    #: the files or package data the problem reads, where they are looked up; None when generated in memory
    needs_data: ClassVar[str | None] = None

    #: known optimal loss value, where there is one
    optimum: float | None = None
    #: ``describe()``'s entries beyond name, kind, size and source: key -> attribute
    described: ClassVar[dict[str, str]] = {}

    # ---- to implement -------------------------------------------------------------
    def model(self, seed: int) -> nn.Module:
        """A freshly initialized model; the same seed gives the same initial parameters."""
        raise NotImplementedError

    def batches(self, seed: int) -> Iterator[Batch]:
        """An endless iterator of training batches (the same seed gives the same sequence)."""
        raise NotImplementedError

    def forward(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(outputs, targets)``; the training loss is ``loss_from_outputs`` of them."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Metrics of the current model, including ``val_metric`` and ``test_metric``."""
        raise NotImplementedError

    # ---- provided -----------------------------------------------------------------
    def stacked_batches(self, seeds: Sequence[int]) -> Iterator[Batch]:
        """Step by step, the batches of ``batches(s)`` for every seed ``s`` in ``seeds``, stacked to
        ``(S, ...)``; ``(1, ...)`` when they are the same tensors (full batch, or one seed). What the
        batched sweeps read (:mod:`precond.experiments.batched_modules`); the array problems gather
        them from their arrays at once."""
        streams = [self.batches(s) for s in seeds]
        while True:
            bs = [next(g) for g in streams]
            b0 = bs[0]
            if all(b.inputs is b0.inputs and b.targets is b0.targets for b in bs):
                yield Batch(b0.inputs.unsqueeze(0), b0.targets.unsqueeze(0), b0.t)
            else:
                yield Batch(torch.stack([b.inputs for b in bs]), torch.stack([b.targets for b in bs]), b0.t)

    @property
    def size(self) -> int:
        """Number of trainable parameters of the model."""
        return sum(p.numel() for p in self.model(0).parameters() if p.requires_grad)

    def loss_from_outputs(self, outputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        """The mean loss of ``loss_type`` (:func:`precond.curvature.losses.loss_from_outputs`: the one
        definition the curvature estimators use too; shapes checked, never broadcast)."""
        if self.loss_type not in LOSS_TYPES:
            raise NotImplementedError(f"{type(self).__name__} must implement loss_from_outputs or loss")
        return losses.loss_from_outputs(self.loss_type, outputs, targets)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The scalar training loss on ``batch``."""
        outputs, targets = self.forward(model, batch)
        return self.loss_from_outputs(outputs, targets)

    def after_step(self, model: nn.Module, t: int) -> None:
        """Called after every optimizer step (projection onto a domain, ...). No-op by default."""

    # ---- vectorizable problems --------------------------------------------------------
    def initial_point(self, seed: int) -> torch.Tensor:
        """The flat starting point for ``seed`` (vectorizable problems)."""
        raise NotImplementedError

    def value(self, x: torch.Tensor, t: int | None = None) -> torch.Tensor:
        """The objective at points ``x`` of shape ``(..., d)``, returning shape ``(...)``."""
        raise NotImplementedError

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Projection of points ``x`` (..., d) onto the problem's domain; identity by default.

        Constrained problems (the online counterexamples on [-1, 1]) override it, and their
        ``after_step`` applies it to the model's parameter, so vectorized sweeps can call it too.
        """
        return x

    def describe(self) -> dict[str, Any]:
        """Name, kind, size, source and the ``described`` attributes (``precond problems list``)."""
        return {"name": self.name, "kind": self.kind, "size": self.size, "source": self.source,
                **{key: getattr(self, attr) for key, attr in self.described.items()}}
