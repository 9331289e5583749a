"""Feed a curvature-driven optimizer (``needs_curvature = True``) from a training loop.

The one interface: ``optimizer.update_curvature(diag)`` with one tensor per parameter in
``param_groups`` order. :class:`CurvatureFeeder` computes the estimate the optimizer asks for
(``optimizer.curvature_estimator``, every ``optimizer.curvature_every`` steps, with
``optimizer.curvature_samples`` samples; each may be overridden) and maps it from the
model's parameters to the optimizer's order. For a :class:`precond.curvature.RotatedOptimizer`
it estimates ``diag(U^T C U)``, the curvature of the rotated coordinates (with the wrapped
optimizer's settings)::

    opt = Sophia(model.parameters(), lr=1e-3)
    feeder = CurvatureFeeder(opt, model, loss_type="cross_entropy")
    for x, y in batches:
        feeder.maybe_update(outputs_fn=lambda m: (m(x), y), loss_fn=lambda m: F.cross_entropy(m(x), y))
        opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()

The estimate is computed with ``torch.autograd.grad`` and never touches ``p.grad``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from .basis import RotatedOptimizer
from .estimators import canonical_estimator, estimate_diagonal
from .losses import check_loss_type
from .params import trainable


class CurvatureFeeder:
    """Computes a curvature diagonal every ``every`` calls and hands it to ``optimizer.update_curvature``.

    Args:
        optimizer: an optimizer with ``update_curvature`` (``needs_curvature = True``).
        model: the module whose trainable parameters the optimizer updates.
        loss_type: ``"mse"``, ``"logistic"`` or ``"cross_entropy"`` (for ``ggn``/``gnb``).
        estimator, every, n_samples: override the optimizer's ``curvature_estimator``,
            ``curvature_every`` and ``curvature_samples`` (``estimator`` is required when the
            optimizer has no ``curvature_estimator``; ``every`` and ``n_samples`` default to 1).
        generator: random generator for GNB labels / Hutchinson probes (reproducibility).
        first: the call of the first refresh (0: before the first step, which
            :class:`precond.optim.GaussNewtonDiag` needs). The official Sophia loop refreshes
            after steps k-1, 2k-1, ... (its first k steps see ``h = 0``): ``first=k``.

    :meth:`maybe_update` is called once per training step *before* ``optimizer.step()``;
    it refreshes the curvature on calls ``first, first+k, first+2k, ...``.
    """

    def __init__(
        self,
        optimizer: Any,
        model: nn.Module,
        *,
        loss_type: str | None = None,
        estimator: str | None = None,
        every: int | None = None,
        n_samples: int | None = None,
        generator: torch.Generator | None = None,
        first: int = 0,
    ) -> None:
        if not callable(getattr(optimizer, "update_curvature", None)) or getattr(optimizer, "needs_curvature", True) is False:
            raise TypeError(f"{type(optimizer).__name__} has no update_curvature(diag): it does not take curvature")
        self.optimizer = optimizer
        self.model = model
        self.loss_type = None if loss_type is None else check_loss_type(loss_type)
        if estimator is None:
            estimator = getattr(optimizer, "curvature_estimator", None)
            if estimator is None:
                raise ValueError(f"{type(optimizer).__name__} has no curvature_estimator: pass estimator= ('ggn', 'gnb', 'hessian' or 'hutchinson')")
        self.estimator = canonical_estimator(estimator)
        self.every = int(every if every is not None else getattr(optimizer, "curvature_every", 1))
        if self.every < 1:
            raise ValueError(f"invalid every={every!r}: must be an integer >= 1")
        self.n_samples = int(n_samples if n_samples is not None else getattr(optimizer, "curvature_samples", 1))
        if self.estimator in ("ggn", "gnb") and self.loss_type is None:
            raise ValueError(f"estimator {self.estimator!r} needs loss_type ('mse', 'logistic' or 'cross_entropy')")
        if isinstance(first, bool) or not isinstance(first, int) or first < 0:
            raise ValueError(f"invalid first={first!r}: must be an integer >= 0")
        self.first = first
        self.generator = generator
        if isinstance(optimizer, RotatedOptimizer):
            optimizer.basis_in(model)  # its parameters must be the model's: fail here, not at the first refresh
        self.calls = 0
        self.updates = 0

    def estimate(self, *, loss_fn: Callable[[nn.Module], torch.Tensor] | None = None, outputs_fn: Callable | None = None) -> list[torch.Tensor | None]:
        """The estimate, in the optimizer's parameter order (``None`` for params not in the model);
        for a :class:`RotatedOptimizer`, ``[diag(U^T C U)]`` (one flat tensor)."""
        rotated = isinstance(self.optimizer, RotatedOptimizer)
        diag = estimate_diagonal(
            self.model, self.estimator, loss_fn=loss_fn, outputs_fn=outputs_fn, loss_type=self.loss_type,
            n_samples=self.n_samples, generator=self.generator, basis=self.optimizer.basis_in(self.model) if rotated else None,
        )  # fmt: skip
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
        due = self.calls >= self.first and (self.calls - self.first) % self.every == 0
        self.calls += 1
        if due:
            self.update(loss_fn=loss_fn, outputs_fn=outputs_fn)
        return due
