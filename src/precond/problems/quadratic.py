"""Quadratics with a prescribed spectrum and basis (seed 002's quadratic objectives; seed 001's
anisotropic smoothness): ``f(x) = 1/2 (x - x*)^T H (x - x*)`` with ``H = U diag(lambda) U^T``.

The Hessian (``hessian()``), the minimizer ``x*`` and ``optimum = 0`` are exact; ``value``
and ``grad`` are batched over points of shape (..., d).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ._common import VectorProblem, as_dtype, generator
from ._spectra import basis as make_basis
from ._spectra import eigenvalues
from .registry import register


@register("quadratic")
class Quadratic(VectorProblem):
    """Args:
    ``dim`` (int, 10); ``spectrum`` ("geometric" | "power" | "uniform" | list of eigenvalues);
    ``condition_number`` (float, 100, for "geometric"); ``power`` (float, 1, for "power":
    ``lambda_i = i^-power``); ``top`` (largest eigenvalue, 1); ``basis`` ("identity" = diagonal,
    "random" = Haar-random rotation from ``basis_seed``, or a given orthogonal (d, d) matrix);
    ``basis_seed`` (int, 0); ``minimizer`` ("zero" default, "random" = N(0, I) from
    ``basis_seed + 1``, or a vector); ``dtype`` ("float32"|"float64").
    ``initial_point(seed)`` is ``x* + 1`` (all ones offset) for seed 0 and ``x* + N(0, I)`` otherwise.
    """

    name = "quadratic"
    kind = "quadratic"
    source = "seed 002 (quadratic objectives); seed 001 (anisotropic smoothness)"
    optimum = 0.0
    described = {**VectorProblem.described, "condition_number": "condition_number", "basis": "basis_kind"}

    def __init__(self, dim: int = 10, spectrum: str | Sequence[float] = "geometric", condition_number: float = 100.0,
                 power: float = 1.0, top: float = 1.0, basis: str | np.ndarray = "identity", basis_seed: int = 0,
                 minimizer: str | Sequence[float] = "zero", dtype: str = "float32") -> None:
        self.dim = int(dim)
        self.dtype = as_dtype(dtype, "quadratic")
        self.eigenvalues = eigenvalues(self.dim, spectrum, condition_number, power, top, where="quadratic")
        self.basis = make_basis(self.dim, basis, basis_seed, where="quadratic")
        self.basis_kind = basis if isinstance(basis, str) else "given"
        if isinstance(minimizer, str):
            if minimizer == "zero":
                xs = np.zeros(self.dim)
            elif minimizer == "random":
                xs = np.random.default_rng(basis_seed + 1).standard_normal(self.dim)
            else:
                raise ValueError(f"quadratic: minimizer must be 'zero', 'random' or a vector, got {minimizer!r}")
        else:
            xs = np.asarray(minimizer, dtype=np.float64)
            if xs.shape != (self.dim,):
                raise ValueError(f"quadratic: minimizer must have shape ({self.dim},), got {xs.shape}")
        H = (self.basis * self.eigenvalues) @ self.basis.T
        self._H = torch.tensor((H + H.T) / 2, dtype=torch.float64)
        self._xs = torch.tensor(xs, dtype=torch.float64)

    @property
    def condition_number(self) -> float:
        return float(self.eigenvalues.max() / self.eigenvalues.min())

    def hessian(self) -> torch.Tensor:
        """The exact Hessian ``U diag(lambda) U^T`` (float64)."""
        return self._H.clone()

    @property
    def minimizer(self) -> torch.Tensor:
        return self._xs.clone()

    def initial_point(self, seed: int) -> torch.Tensor:
        off = torch.ones(self.dim, dtype=torch.float64) if seed == 0 else torch.randn(self.dim, generator=generator(seed), dtype=torch.float64)
        return (self._xs + off).to(self.dtype)

    def value(self, x: torch.Tensor, t: int | None = None) -> torch.Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"quadratic: expected points of shape (..., {self.dim}), got {tuple(x.shape)}")
        r = x - self._xs.to(x.dtype).to(x.device)
        return 0.5 * ((r @ self._H.to(x.dtype).to(x.device)) * r).sum(-1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        r = x - self._xs.to(x.dtype).to(x.device)
        return r @ self._H.to(x.dtype).to(x.device)
