"""Extreme eigenvalues and condition number of the Hessian (or GGN) of the batch loss.

Exact ``eigvalsh`` when ``d <= max_dense``; otherwise Lanczos (ARPACK's implicitly
restarted Lanczos, ``scipy.sparse.linalg.eigsh``) over a ``LinearOperator`` of
Hessian-vector products (:class:`precond.curvature.exact.HVP`) or GGN-vector products,
for the ``k`` largest (``which="LA"``) and smallest (``"SA"``) eigenvalues.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse.linalg as spla
import torch

from .. import exact
from .base import Diagnostic, StepContext


def extreme_eigenvalues(matvec, d: int, *, k: int = 1, tol: float = 1e-8, maxiter: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(largest k descending, smallest k ascending)`` eigenvalues of a symmetric operator
    ``matvec: (d,) float64 ndarray -> (d,)`` by Lanczos (``eigsh``)."""
    k = min(k, max(d - 1, 1))
    op = spla.LinearOperator((d, d), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(d)
    top = spla.eigsh(op, k=k, which="LA", tol=tol, maxiter=maxiter, v0=v0, return_eigenvectors=False)
    bot = spla.eigsh(op, k=k, which="SA", tol=tol, maxiter=maxiter, v0=v0, return_eigenvectors=False)
    return np.sort(top)[::-1], np.sort(bot)


def spectrum_summary(top: np.ndarray, bottom: np.ndarray) -> dict[str, float | list[float]]:
    lmax, lmin = float(top[0]), float(bottom[0])
    return {
        "lambda_max": lmax,
        "lambda_min": lmin,
        "condition": lmax / lmin if lmin > 0 else math.inf,
        "top": [float(x) for x in top],
        "bottom": [float(x) for x in bottom],
    }


class HessianSpectrum(Diagnostic):
    """``lambda_max``, ``lambda_min``, ``condition`` (``lambda_max/lambda_min``; inf unless
    positive definite), and the ``k`` extreme eigenvalues (``top``, ``bottom``).

    ``matrix="ggn"`` uses the GGN (needs ``outputs_fn`` and ``loss_type``)."""

    name = "hessian_spectrum"

    def __init__(self, k: int = 1, every: int = 1, *, matrix: str = "hessian", max_dense: int = 2000, tol: float = 1e-8, name: str | None = None) -> None:
        super().__init__(every, name)
        if matrix not in ("hessian", "ggn"):
            raise ValueError(f"invalid matrix={matrix!r}: must be 'hessian' or 'ggn'")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"invalid k={k!r}: must be an integer >= 1")
        self.k, self.matrix, self.max_dense, self.tol = k, matrix, max_dense, tol

    def after_step(self, ctx: StepContext) -> dict[str, float | list[float]]:
        if self.matrix == "ggn" and (ctx.outputs_fn is None or ctx.loss_type is None):
            raise ValueError(f"{self.name} with matrix='ggn' needs StepContext.outputs_fn and loss_type")
        d = sum(p.numel() for p in ctx.model.parameters() if p.requires_grad)
        if d <= self.max_dense:
            m = exact.hessian(ctx.model, ctx.loss_fn) if self.matrix == "hessian" else exact.ggn(ctx.model, ctx.outputs_fn, ctx.loss_type)
            w = torch.linalg.eigvalsh(m.double()).cpu().numpy()
            k = min(self.k, d)
            out = spectrum_summary(w[::-1][:k], w[:k])
            out["method"] = 0.0
            return out
        op = exact.HVP(ctx.model, ctx.loss_fn) if self.matrix == "hessian" else exact.GGNVP(ctx.model, ctx.outputs_fn, ctx.loss_type)

        def matvec(v: np.ndarray) -> np.ndarray:
            return op(torch.from_numpy(np.ascontiguousarray(v).reshape(-1))).double().cpu().numpy()

        top, bottom = extreme_eigenvalues(matvec, d, k=self.k, tol=self.tol)
        out = spectrum_summary(top, bottom)
        out["method"] = 1.0
        return out
