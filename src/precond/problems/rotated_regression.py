"""Seed 002's Gaussian linear regression seen in a rotated basis: the coordinates ``y = U^T w``
with ``U = U(basis_alpha)`` on the geodesic from the identity (``basis_alpha = 0``) to the
eigenbasis of the covariance (``basis_alpha = 1``, :func:`precond.curvature.basis.geodesic`).

A diagonal optimizer run on this problem's one parameter ``y`` is that optimizer run in the basis
``U`` of ``linear_regression`` (the paper's ``w -= eta U D U^T g``): the features are ``x^T U`` (each
batch of ``linear_regression`` with the same arguments, rotated: every point of the geodesic sees
the same samples), the covariance ``U^T Sigma U``, the minimizer ``U^T w*``, the start ``U^T w_0``
(0 for seed 0; a rotated ``N(0, I)`` draw is again ``N(0, I)``). In the eigenbasis the covariance is
diagonal, so full-batch GN^-1 with lr 1 is Newton's method and lands on ``y*`` in one step.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from precond.curvature.basis import align_signs, eigenbasis, geodesic

from .base import Batch
from .regression import LinearRegression
from .registry import register


def interpolated_basis(S: np.ndarray, alpha: float) -> np.ndarray:
    """``U(alpha) = expm(alpha logm(U1))``: the geodesic from ``I`` to ``U1``, the eigenbasis of ``S``
    (eigenvalues in descending order, signs aligned to the identity)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"rotated_linear_regression: basis_alpha must lie in [0, 1], got {alpha}")
    if alpha == 0.0:
        return np.eye(len(S))
    _, U1 = eigenbasis(S)
    if alpha == 1.0:  # the end point itself (logm of a 100 x 100 rotation takes about a second)
        return np.asarray(align_signs(np.eye(len(S)), U1))
    return np.asarray(geodesic(np.eye(len(S)), U1, float(alpha)))


@register("rotated_linear_regression")
class RotatedLinearRegression(LinearRegression):
    """Args: those of ``linear_regression`` (covariance by spectrum + basis or by blocks, ``w_star``,
    ``noise_std``, ``batch_size``, ``data_seed``, ``dtype``) and ``basis_alpha`` (1.0: the
    eigenbasis; 0: the identity, then it is ``linear_regression`` itself)."""

    name = "rotated_linear_regression"
    source = "seed 002 (choice of basis: the geodesic between the identity and the eigenbasis)"
    described = {"covariance": "covariance_kind", "basis_alpha": "basis_alpha"}

    def __init__(self, basis_alpha: float = 1.0, dim: int = 10, spectrum: str | Sequence[float] = "geometric",
                 condition_number: float = 100.0, power: float = 1.0, top: float = 1.0, basis: str | np.ndarray = "identity",
                 basis_seed: int = 0, block_sizes: Sequence[int] | None = None, block_rhos: Sequence[float] | None = None,
                 block_scales: Sequence[float] | None = None, w_star: str | Sequence[float] = "random", noise_std: float = 0.0,
                 batch_size: int | None = None, data_seed: int = 0, dtype: str = "float32") -> None:  # fmt: skip
        super().__init__(dim, spectrum, condition_number, power, top, basis, basis_seed, block_sizes, block_rhos, block_scales,
                         w_star, noise_std, batch_size, data_seed, dtype)  # fmt: skip
        self.basis_alpha = float(basis_alpha)
        self._U = torch.tensor(interpolated_basis(self._S.numpy(), self.basis_alpha), dtype=torch.float64)

    @property
    def basis_matrix(self) -> torch.Tensor:
        """``U`` (float64): column i is the direction of coordinate ``y_i``."""
        return self._U.clone()

    def hessian(self) -> torch.Tensor:
        """``U^T Sigma U`` (float64), the Hessian (= GN matrix) in the rotated coordinates."""
        return self._U.T @ self._S @ self._U

    gn_matrix = hessian

    @property
    def minimizer(self) -> torch.Tensor:
        return self._U.T @ self._ws

    def value(self, x: torch.Tensor, t: int | None = None) -> torch.Tensor:
        """The population loss at rotated points ``y`` (..., d): ``linear_regression``'s at ``U y``."""
        return super().value(x @ self._U.T.to(x), t)

    def batches(self, seed: int) -> Iterator[Batch]:
        U, fixed = self._U.to(self.dtype), None
        for b in super().batches(seed):
            if self.batch_size is None:  # full batch: the same design every step, rotated once
                fixed = b.inputs @ U if fixed is None else fixed
                yield Batch(fixed, b.targets, b.t)
            else:
                yield Batch(b.inputs @ U, b.targets, b.t)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        with torch.no_grad():
            y = model.x.detach().double()
            v = float(self.value(y))
            dist = float((y - self.minimizer).norm())
        return {"loss": v, "val_loss": v, "test_loss": v, "excess_loss": v - self.optimum, "dist_to_opt": dist}
