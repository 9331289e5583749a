"""Sophia, official SophiaG semantics (the rule: :data:`precond.optim.functional.sophia.sophia`)."""

from __future__ import annotations

from typing import Any

import torch

from .curvature_base import CurvatureOptimizer
from .distributed import fraction_summary, local
from .functional.sophia import sophia, sophia_ratio


def _work(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class Sophia(CurvatureOptimizer):
    r"""Sophia (Liu et al. 2023, arXiv 2305.14342) as the official ``SophiaG``.

    ``p *= 1 - lr*wd``; ``m = b1 m + (1-b1) g``;
    ``p -= lr * sign(m) * min(|m| / (max(rho*bs*h, 0) + 1e-15), 1)``; no bias correction; ``h`` is
    the EMA (``b2``) of the curvature estimates received through :meth:`update_curvature`
    (the official ``update_hessian``), refreshed every ``update_every`` = 10 steps by the
    training loop (:class:`precond.curvature.CurvatureFeeder`). Before the first estimate
    ``h = 0`` and the step is ``lr * sign(m)``, as in the official code.

    Negative curvature (``estimator="hessian"`` or ``"hutchinson"``, Sophia-H): where
    ``h < 0`` the denominator is ``eps``, so the step there is the sign-momentum step
    ``lr * sign(m)`` (the paper's ``clip(m / max(rho*h, eps), 1)``); the official code's
    ``rho*bs*h + eps`` would make the ratio negative and the step unbounded uphill. Where
    ``h >= 0`` the two are the same bit for bit. Every coordinate moves against ``sign(m)``
    by at most ``lr`` (after the weight decay).

    Scaling: precond's estimators give an unbiased estimate of the curvature diagonal of
    the mean loss, so the default ``bs=1``. To reproduce the official loop exactly, feed
    ``g_hat**2`` (the squared gradient of the mean loss over ``B`` samples with sampled
    labels) and pass ``bs=B`` (the official ``step(bs=...)``, a group option here).

    Args (the fields of :class:`~precond.optim.functional.sophia.SophiaHyper`; ``help(Sophia)``):
        params: iterable of tensors or of dicts defining param groups.
        lr: learning rate (official default 1e-4).
        betas: ``(beta1, beta2)``: EMA of gradients and of curvature (0.965, 0.99).
        rho: clipping scale, the paper's gamma (0.04).
        weight_decay: decoupled decay (0.1).
        bs: multiplier of ``h`` in the denominator (see Scaling).
        eps: the denominator's constant (official 1e-15).
        estimator: curvature the feeder computes: ``"gnb"`` (the paper's Sophia-G,
            default), ``"hutchinson"`` (Sophia-H), ``"ggn"`` or ``"hessian"`` (exact); names
            checked by :class:`precond.curvature.CurvatureSchedule`.
        update_every: k, the refresh period (10).
        curvature_samples: samples per estimate (1).
        maximize, foreach, fused, nan_policy: see :class:`PrecondOptimizer`. The step has all
            three paths (default: ``fused`` on CPU, see :mod:`precond.optim.kernels.sophia`);
            :meth:`update_curvature` always runs the reference loop.

    :meth:`win_rate` gives the fraction of coordinates not clipped at the last step
    (``|m| < max(rho*bs*h, 0) + eps``).
    """

    rule = sophia
    _curvature_key = "hessian"

    def _curvature_beta2(self, group: dict[str, Any]) -> float:
        return group["betas"][1]  # the official update_hessian: h = b2 h + (1-b2) c

    @torch.no_grad()
    def win_rate(self) -> dict[str, Any]:
        """Fraction of coordinates *not* clipped (``|m| < max(rho*bs*h, 0) + eps``) at the last step.

        Read off the state (``m`` and ``h`` after the step are those the step used), so it
        costs nothing unless called. Returns ``{"overall": f, "groups": [f, ...],
        "params": [[f or None, ...], ...]}`` (``None`` where a parameter has no state).
        """
        counts = []
        for group in self.param_groups:
            entries = []
            for p in group["params"]:
                state = self.state.get(p)
                if not state or float(state["step"]) < 1:
                    entries.append(None)
                    continue
                m, h = local(state["exp_avg"]), local(state["hessian"])  # DTensor shards: summed over shards below
                r = sophia_ratio(_work(m), _work(h), rho_bs=group["rho"] * group["bs"], eps=group["eps"])
                entries.append((state["exp_avg"], int((r < 1.0).sum()), r.numel()))
            counts.append(entries)
        return fraction_summary(counts)  # global under FSDP2 (precond.optim.distributed)
