"""CurvatureOptimizer: the base of the optimizers that receive a curvature diagonal from outside
(:class:`precond.optim.Sophia`, :class:`precond.optim.GaussNewtonDiag`).

What comes in: :meth:`CurvatureOptimizer.update_curvature`, one estimate per parameter, kept
as the EMA of :func:`precond.optim.functional.curvature_ema.update_curvature_ema`. What it asks
for: the settings ``estimator``, ``update_every`` and ``curvature_samples``, which
:class:`precond.curvature.CurvatureSchedule` reads (``CurvatureSchedule.of(optimizer)``) to
drive :class:`precond.curvature.CurvatureFeeder`. The estimator names are the curvature
layer's (:mod:`precond.curvature.estimators`); this layer does not import it, so a name is
checked here only for being a string, and against the names when the schedule is built.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import torch

from ._base import NonFiniteGradientError, PrecondOptimizer
from ._finite import all_finite
from .distributed import like, local_list
from .functional.curvature_ema import update_curvature_ema


class CurvatureOptimizer(PrecondOptimizer):
    """A :class:`PrecondOptimizer` that receives a curvature diagonal from outside.

    The one way curvature comes in: :meth:`update_curvature` with one tensor per parameter,
    in the order of ``param_groups`` (group 0's params, then group 1's, ...), each the
    estimate of the diagonal of the curvature of the *mean* training loss at the current
    parameters (``None`` leaves that parameter's curvature as it is). Each estimate ``c``
    goes into the state tensor :attr:`_curvature_key` as ``h = beta2*h + (1-beta2)*c``
    (``beta2`` from :meth:`_curvature_beta2`), counting the estimates in the scalar state
    :attr:`_curvature_count_key` when a subclass names one.
    :class:`precond.curvature.CurvatureFeeder` computes the estimate named by
    :attr:`curvature_estimator` every :attr:`curvature_every` steps and calls it.

    The constructor's ``estimator``, ``update_every`` and ``curvature_samples`` are settings of
    the whole optimizer (group keys of those names, see :class:`PrecondOptimizer`).
    ``estimator`` must be a string (kept lower-cased); which names exist is the curvature
    layer's to say, and :class:`precond.curvature.CurvatureSchedule` refuses an unknown one
    (``ValueError`` naming the choices) when the schedule is built. Complex parameters are
    refused: the curvature is a real diagonal of each parameter's shape.
    """

    #: tells a training loop (the experiments runner) to feed curvature
    needs_curvature = True
    supports_complex = False
    _optimizer_options = PrecondOptimizer._optimizer_options + ("estimator", "update_every", "curvature_samples")
    #: name of the per-parameter state tensor holding the curvature EMA
    _curvature_key = "curvature"
    #: name of the per-parameter scalar state counting the estimates received (None: not counted)
    _curvature_count_key: str | None = None

    def _check_options(self, group: dict[str, Any]) -> None:
        super()._check_options(group)
        if not isinstance(group["estimator"], str):
            raise TypeError(f"estimator must be a string, got {group['estimator']!r}")
        group["estimator"] = group["estimator"].lower()
        for key, what in (("update_every", "refresh the curvature every k steps"), ("curvature_samples", "samples per estimate")):
            value = group[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"invalid {key}={value!r}: must be an integer >= 1 ({what})")

    @property
    def curvature_estimator(self) -> str:
        """The estimator the feeder computes (the constructor's ``estimator``, lower-cased;
        aliases are resolved by :class:`precond.curvature.CurvatureSchedule`)."""
        return self._option("estimator")

    @property
    def curvature_every(self) -> int:
        """The refresh period k (the constructor's ``update_every``)."""
        return self._option("update_every")

    @property
    def curvature_samples(self) -> int:
        """Samples per estimate (the constructor's ``curvature_samples``)."""
        return self._option("curvature_samples")

    def _init_state(self, group: dict[str, Any], p: torch.Tensor, state: dict[str, Any]) -> None:
        super()._init_state(group, p, state)
        if self._curvature_count_key is not None:
            state[self._curvature_count_key] = torch.tensor(0.0, dtype=torch.float32)

    def _curvature_beta2(self, group: dict[str, Any]) -> float:  # pragma: no cover
        """The EMA coefficient of the curvature in ``group``."""
        raise NotImplementedError

    def _apply_curvature(self, group: dict[str, Any], params: list[torch.Tensor], estimates: list[torch.Tensor]) -> None:
        """Fold the (checked, finite) ``estimates`` of ``params`` of one group into the EMA."""
        count = self._curvature_count_key
        update_curvature_ema(  # on the local shards of DTensors: the EMA is elementwise
            local_list([self.state[p][self._curvature_key] for p in params]), local_list(estimates), beta2=self._curvature_beta2(group),
            counts=None if count is None else [self.state[p][count] for p in params],
        )  # fmt: skip

    @torch.no_grad()
    def update_curvature(self, diag: Sequence[torch.Tensor | None]) -> None:
        """Feed one curvature estimate per parameter (see the class docstring for the order).

        Raises ``ValueError`` on a wrong count or shape; a non-finite estimate follows the
        optimizer's ``nan_policy`` (``"raise"``: error, ``"skip"``: ignored with a warning).

        Under FSDP2 (``DTensor`` parameters) an estimate is either a DTensor of the parameter's
        layout or the full tensor of its global shape, the same on every rank (what
        :class:`precond.curvature.CurvatureFeeder` hands over after its reduction): each rank
        keeps its own shard of it (:func:`precond.optim.distributed.like`).
        """
        all_params = [p for g in self.param_groups for p in g["params"]]
        diag = list(diag)
        if len(diag) != len(all_params):
            raise ValueError(
                f"update_curvature got {len(diag)} tensors for {len(all_params)} parameters: pass one per "
                "parameter, in the order of optimizer.param_groups (None to leave one unchanged)"
            )
        for i, (p, c) in enumerate(zip(all_params, diag)):
            if c is not None and tuple(c.shape) != tuple(p.shape):
                raise ValueError(f"update_curvature: estimate {i} has shape {tuple(c.shape)}, its parameter {tuple(p.shape)}")
        if self.nan_policy != "propagate" and not all_finite([c for c in diag if c is not None]):
            if self.nan_policy == "raise":
                raise NonFiniteGradientError(
                    f"{type(self).__name__}.update_curvature: an estimate holds NaN or inf; nothing was changed "
                    "(use nan_policy='skip' to ignore such estimates)"
                )
            warnings.warn(f"{type(self).__name__}.update_curvature skipped: non-finite estimate", RuntimeWarning, stacklevel=2)
            return
        i = 0
        for group in self.param_groups:
            params, ests = [], []
            for p in group["params"]:
                c = diag[i]
                i += 1
                if c is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    self._init_state(group, p, state)
                params.append(p)
                ests.append(like(c.detach().to(device=p.device), p))  # a full estimate of a DTensor param: this rank's shard
            if params:
                self._apply_curvature(group, params, ests)

    def curvature(self) -> list[torch.Tensor | None]:
        """The current curvature EMA per parameter (``param_groups`` order; ``None`` if never fed)."""
        return [self.state[p].get(self._curvature_key) if p in self.state else None for g in self.param_groups for p in g["params"]]
