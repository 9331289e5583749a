r"""The anisotropic smoothness vector ``L`` of seed 001 (``∇²f ⪯ diag(L)``).

Estimators of :math:`L_i`:

* ``"row_sum"`` (default when the Hessian fits in memory): :math:`L_i = \sum_j |H_{ij}|`.
  A *valid* bound at the current point: :math:`\operatorname{diag}(L) - H` is symmetric and
  diagonally dominant with a non-negative diagonal, hence PSD (Gershgorin), so
  :math:`H \preceq \operatorname{diag}(L)`. It can overstate ``L`` for dense ``H``.
* ``"diag"``: :math:`L_i = |H_{ii}|`. A lower bound of any valid ``L`` where
  :math:`H_{ii} > 0` (necessary, not sufficient); exact for separable (diagonal) ``H``.
* ``"hutchinson"`` (large models): :math:`|\widehat{H_{ii}}|` from ``n_samples`` Rademacher
  probes, an estimate of ``"diag"``.

Reported as :math:`\|L\|_1` against :math:`d\,\|L\|_\infty` (ratio 1 when isotropic; AdaGrad's
bounds gain when it is small). ``matrix="ggn"`` uses the GGN instead of the Hessian.
"""

from __future__ import annotations

import torch

from .. import exact
from ..estimators import hutchinson_diagonal
from ..params import flatten
from .base import Diagnostic, StepContext

L_METHODS = ("row_sum", "diag", "hutchinson")


def smoothness_vector(h: torch.Tensor, method: str = "row_sum") -> torch.Tensor:
    """``L`` from a dense symmetric matrix ``h`` (``"row_sum"`` or ``"diag"``)."""
    if method == "row_sum":
        return h.abs().sum(1)
    if method == "diag":
        return torch.diagonal(h).abs()
    raise ValueError(f"invalid method={method!r} for a dense matrix: 'row_sum' or 'diag'")


def smoothness_summary(L: torch.Tensor) -> dict[str, float]:
    d = L.numel()
    l1, linf = float(L.sum()), float(L.max())
    return {"L_l1": l1, "L_d_linf": d * linf, "L_ratio": l1 / (d * linf) if linf > 0 else float("nan"), "L_max": linf, "L_min": float(L.min())}


class AnisotropicSmoothness(Diagnostic):
    """``L`` of the current batch loss (module docstring): ``L_l1``, ``L_d_linf``, ``L_ratio``."""

    name = "anisotropic_smoothness"

    def __init__(self, method: str | None = None, every: int = 1, *, matrix: str = "hessian", max_dense: int = 2000,
                 n_samples: int = 32, return_vectors: bool = False, name: str | None = None) -> None:  # fmt: skip
        super().__init__(every, name)
        if method is not None and method not in L_METHODS:
            raise ValueError(f"invalid method={method!r}: must be one of {', '.join(map(repr, L_METHODS))}")
        if matrix not in ("hessian", "ggn"):
            raise ValueError(f"invalid matrix={matrix!r}: must be 'hessian' or 'ggn'")
        self.method, self.matrix, self.max_dense = method, matrix, max_dense
        self.n_samples, self.return_vectors = n_samples, return_vectors

    def after_step(self, ctx: StepContext) -> dict[str, float | list[float]]:
        d = sum(p.numel() for p in ctx.model.parameters() if p.requires_grad)
        method = self.method or ("row_sum" if d <= self.max_dense else "hutchinson")
        if method == "hutchinson":
            if self.matrix != "hessian":
                raise ValueError("method 'hutchinson' estimates the Hessian diagonal: use matrix='hessian'")
            L = flatten(hutchinson_diagonal(ctx.model, ctx.loss_fn, n_samples=self.n_samples)).abs()
        else:
            if self.matrix == "ggn":
                if ctx.outputs_fn is None or ctx.loss_type is None:
                    raise ValueError(f"{self.name} with matrix='ggn' needs StepContext.outputs_fn and loss_type")
                h = exact.ggn(ctx.model, ctx.outputs_fn, ctx.loss_type)
            else:
                h = exact.hessian(ctx.model, ctx.loss_fn)
            L = smoothness_vector(h, method)
        out: dict[str, float | list[float]] = dict(smoothness_summary(L.detach()))
        if self.return_vectors:
            out["L"] = L.double().tolist()
        return out
