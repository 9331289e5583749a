"""The AGD optimizer class (bookkeeping only; the rule is :data:`precond.optim.functional.agd.agd`)."""

from __future__ import annotations

from typing import Any

import torch

from ._base import ROW_LR, PrecondOptimizer
from .distributed import fraction_summary, local
from .functional.agd import agd, agd_adaptive_mask


class AGD(PrecondOptimizer):
    r"""AGD: Auto-switchable optimizer using stepwise Gradient Difference as preconditioner.

    Yue et al., NeurIPS 2023 (arXiv 2312.01658), Algorithm 1:
    ``x -= lr * m_hat / max(sqrt(b_hat), delta)`` with ``b`` the EMA of the squared
    stepwise difference of bias-corrected momenta (equations in
    :mod:`precond.optim.functional.agd`). Options and defaults match the authors'
    published class ``AGD(params, lr=1e-3, betas=(0.9, 0.999), delta=1e-5,
    weight_decay=0.0, weight_decouple=True, fixed_decay=False, amsgrad=False, win=False,
    clip=None)``.

    Args (the fields of :class:`~precond.optim.functional.agd.AGDHyper`; ``help(AGD)``):
        params: iterable of tensors or of dicts defining param groups.
        lr: learning rate (the authors advise about 1/10 of AdamW's).
        betas: ``(beta1, beta2)`` for the EMA of the gradient and of the squared difference.
        delta: the switch and floor of the preconditioner (1e-5; the authors' README uses
            1e-14 for Transformers); must be > 0 (at 0 a zero gradient gives 0/0).
        weight_decay: decay coefficient.
        weight_decouple: decoupled decay ``p *= 1 - lr*wd`` (default) or L2 ``g + wd*p``
            (``p.grad`` itself is never modified).
        fixed_decay: with ``weight_decouple``, decay ``p *= 1 - wd`` irrespective of lr.
        amsgrad: use ``max`` of all ``b`` so far in the denominator.
        win: the Win-accelerated variant (extra state ``z``; weight decay acts only
            through its formula).
        win_z_init: how ``z`` starts under ``win``: ``"param"`` (default, ``z = p``: the
            authors' July-2023 code and nanoGPT example) or ``"zeros"`` (their current
            code, which pulls ``p`` to about ``p/3`` on the first step).
        clip: clamp the preconditioned ratio to ``[-clip, clip]`` (``None``: no clamp).
        maximize, foreach, fused, nan_policy: see :class:`PrecondOptimizer`.

    Call :meth:`adaptive_fraction` after a step for the fraction of coordinates that took
    the adaptive branch (the paper's section 4.5); it costs nothing unless called.
    """

    rule = agd
    batchable = True

    def _init_state(self, group: dict[str, Any], p: torch.Tensor, state: dict[str, Any]) -> None:
        super()._init_state(group, p, state)
        if group["win"] and group["win_z_init"] == "param":
            state["z"].copy_(p)

    @torch.no_grad()
    def adaptive_fraction(self) -> dict[str, Any]:
        """Fraction of coordinates that took the adaptive branch (``sqrt(b_hat) > delta``,
        :func:`~precond.optim.functional.agd.agd_adaptive_mask`) at their last step: the one
        reduction of that mask (the runner, the vectorized sweeps and the diagnostic read it).

        Returns ``{"overall": f, "groups": [f, ...], "params": [[f or None, ...], ...]}``:
        over every coordinate with state, per param group, and per parameter in the order of
        ``group["params"]`` (``None`` where nothing was stepped yet). An optimizer made by
        :meth:`batched` also gives ``"rows"``: one fraction per row of its stacked parameters
        (``None`` before the first step).
        """
        counts, rows, row_hits, row_total = [], None, 0, 0
        for group in self.param_groups:
            entries = []
            key = "max_exp_avg_sq" if group["amsgrad"] else "exp_avg_sq"
            for p in group["params"]:
                state = self.state.get(p)
                if not state or key not in state:
                    entries.append(None)
                    continue
                b = local(state[key])  # a DTensor's shard: the counts are summed over shards below
                b = torch.view_as_real(b) if b.is_complex() else b
                mask = agd_adaptive_mask(b, int(state["step"]), beta2=group["betas"][1], delta=group["delta"])
                if ROW_LR in group:  # every stacked parameter's rows together
                    row_hits = row_hits + mask.double().reshape(mask.shape[0], -1).sum(1)
                    row_total += mask[0].numel()
                    rows = (row_hits / row_total).tolist()
                entries.append((state[key], int(mask.sum()), mask.numel()))
            counts.append(entries)
        out = fraction_summary(counts)  # global under FSDP2 (precond.optim.distributed)
        if self.param_groups and ROW_LR in self.param_groups[0]:
            out["rows"] = rows
        return out
