"""GaussNewtonDiag: GN^-1 / GN^-1/2 (the rule: :data:`precond.optim.functional.gauss_newton.gauss_newton_diag`;
the curvature it receives: :mod:`precond.optim.curvature_base`)."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import torch

from .curvature_base import CurvatureOptimizer
from .distributed import local_list
from .functional.gauss_newton import gauss_newton_diag, nonpositive_curvature_counts

_unchecked = dataclasses.replace(gauss_newton_diag, check=None)  # the rule without its before-curvature check


class GaussNewtonDiag(CurvatureOptimizer):
    r"""Diagonal Gauss-Newton preconditioner GN^p, ``p`` in {-1, -1/2} (seed 002).

    ``x -= lr * (|h_hat| + damping)**power * u`` with ``h_hat`` the (bias-corrected
    EMA of the) curvature diagonal received through :meth:`update_curvature` and ``u`` the
    gradient (or its bias-corrected EMA with ``momentum > 0``). With ``power=-1``,
    ``lr=1``, ``damping=0`` and the exact curvature it is Newton's method on a separable
    quadratic. Equations in :mod:`precond.optim.functional.gauss_newton`.

    Non-positive curvature: the GGN (and GNB) diagonal is ``>= 0``, where ``|h_hat| = h_hat``.
    A negative entry (``estimator="hessian"`` or ``"hutchinson"``) is used by its magnitude
    (saddle-free Newton: the step is the one a positive curvature of that size gets, still
    downhill, instead of ``lr * u / damping``); where ``|h_hat| + damping = 0`` (``damping=0``
    and ``h_hat = 0``, e.g. a dead ReLU unit) the coordinate does not move (never
    ``0 * inf = NaN``). :meth:`update_curvature` warns (``RuntimeWarning``, once per
    optimizer) the first time either happens.

    Args (the fields of :class:`~precond.optim.functional.gauss_newton.GaussNewtonHyper`;
    ``help(GaussNewtonDiag)``):
        params: iterable of tensors or of dicts defining param groups.
        lr: learning rate.
        power: -1 (GN^-1) or -0.5 (GN^-1/2).
        momentum: beta1 of the EMA of gradients (0: none).
        beta2: EMA coefficient of the curvature over successive estimates (0: latest only).
        damping: added to ``|h_hat|`` before the power (0: no step where ``h_hat = 0``).
        weight_decay: decoupled decay ``p *= 1 - lr*wd``.
        estimator: which curvature the training loop should feed (read by
            :class:`precond.curvature.CurvatureFeeder`): ``"ggn"`` (exact GGN diagonal, the
            paper's GN; alias ``"exact"``), ``"hessian"`` (exact Hessian diagonal), ``"gnb"``
            (Gauss-Newton-Bartlett) or ``"hutchinson"`` (names checked by
            :class:`precond.curvature.CurvatureSchedule`, see :class:`CurvatureOptimizer`).
        update_every: refresh the curvature every k steps (read by the feeder).
        curvature_samples: samples per GNB/Hutchinson estimate (read by the feeder).
        maximize, foreach, fused, nan_policy: see :class:`PrecondOptimizer`. The step has all
            three paths (default: ``fused`` on CPU, see :mod:`precond.optim.kernels.gauss_newton`);
            :meth:`update_curvature` always runs the reference loop.

    ``step()`` before any :meth:`update_curvature` raises ``RuntimeError``, except with
    ``lr = 0`` (it moves nothing: the state-creating step of ``torch.distributed.checkpoint``).
    """

    rule = gauss_newton_diag
    _scalar_state_dtypes = {"step": torch.float32, "curvature_step": torch.float32}
    _curvature_count_key = "curvature_step"  # k, for the bias correction h_hat = h / (1 - beta2^k)

    def _curvature_beta2(self, group: dict[str, Any]) -> float:
        return group["beta2"]

    def _group_step(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor], impl: str) -> None:
        """A step with ``lr = 0`` moves nothing, so it is taken before any curvature too (it
        creates the state: what ``torch.distributed.checkpoint`` does to a fresh optimizer,
        zero gradients and ``lr = 0``); any other step before curvature raises."""
        if float(group["lr"]) != 0.0:
            return super()._group_step(group, params, grads, impl)
        params, grads, state = self._rule_inputs(group, params, grads)
        _unchecked(params, grads, state, self._hyper(group), impl=impl)

    def _apply_curvature(self, group: dict[str, Any], params: list[torch.Tensor], estimates: list[torch.Tensor]) -> None:
        super()._apply_curvature(group, params, estimates)
        if not getattr(self, "_warned_nonpositive", False):  # one check per update until it has warned once
            self._warn_nonpositive(local_list([self.state[p]["curvature"] for p in params]), group["damping"])

    def _warn_nonpositive(self, curvatures: list[torch.Tensor], damping: float) -> None:
        """``RuntimeWarning`` (once per optimizer) when the non-positive-curvature rule applies."""
        neg, zero, total = nonpositive_curvature_counts(curvatures, damping=damping)
        what = ([f"{neg} of {total} curvature entries are negative (a Hessian or Hutchinson estimate): "
                 "those coordinates are preconditioned with |h|"] if neg else [])
        what += [f"{zero} of {total} entries are 0 with damping=0: those coordinates take no step"] if zero else []
        if what:
            self._warned_nonpositive = True
            warnings.warn(f"GaussNewtonDiag: {'; '.join(what)} (see docs/curvature.md, non-positive curvature; "
                          "warned once per optimizer)", RuntimeWarning, stacklevel=5)  # fmt: skip
