"""Spectra and bases for quadratics and Gaussian designs (shared by quadratic.py and regression.py)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def eigenvalues(dim: int, spectrum: str | Sequence[float] = "geometric", condition_number: float = 100.0,
                power: float = 1.0, top: float = 1.0, where: str = "") -> np.ndarray:
    """Eigenvalues, largest first.

    - ``"geometric"``: ``top * kappa^{-i/(d-1)}``, i = 0..d-1 (condition number ``kappa``);
    - ``"power"``: ``top * (i+1)^{-power}`` (power-law decay, condition number d^power);
    - ``"uniform"``: all equal to ``top``;
    - a sequence of ``dim`` positive floats: used as given.
    """
    if dim < 1:
        raise ValueError(f"{where}: dim must be >= 1, got {dim}")
    if not isinstance(spectrum, str):
        lam = np.asarray(spectrum, dtype=np.float64)
        if lam.shape != (dim,) or not np.all(lam > 0):
            raise ValueError(f"{where}: explicit eigenvalues must be {dim} positive numbers, got shape {lam.shape}")
        return lam
    if spectrum == "geometric":
        if condition_number < 1:
            raise ValueError(f"{where}: condition_number must be >= 1, got {condition_number}")
        e = np.arange(dim) / max(dim - 1, 1)
        return top * float(condition_number) ** (-e)
    if spectrum == "power":
        return top * np.arange(1, dim + 1, dtype=np.float64) ** (-float(power))
    if spectrum == "uniform":
        return np.full(dim, float(top))
    raise ValueError(f"{where}: spectrum must be 'geometric', 'power', 'uniform' or a list of eigenvalues, got {spectrum!r}")


def basis(dim: int, kind: str | np.ndarray = "identity", seed: int = 0, where: str = "") -> np.ndarray:
    """An orthogonal matrix: ``"identity"``, ``"random"`` (Haar, seeded QR with sign fix) or a given one (checked)."""
    if isinstance(kind, str):
        if kind == "identity":
            return np.eye(dim)
        if kind == "random":
            a = np.random.default_rng(seed).standard_normal((dim, dim))
            q, r = np.linalg.qr(a)
            return q * np.sign(np.diag(r))
        raise ValueError(f"{where}: basis must be 'identity', 'random' or an orthogonal matrix, got {kind!r}")
    U = np.asarray(kind, dtype=np.float64)
    if U.shape != (dim, dim):
        raise ValueError(f"{where}: basis matrix must have shape ({dim}, {dim}), got {U.shape}")
    err = np.abs(U.T @ U - np.eye(dim)).max()
    if err > 1e-6:
        raise ValueError(f"{where}: basis matrix is not orthogonal (max |U^T U - I| = {err:.2e})")
    return U


def block_covariance(block_sizes: Sequence[int], rhos: Sequence[float], scales: Sequence[float] | None = None, where: str = "") -> np.ndarray:
    """Block-diagonal covariance: block k is ``s_k ((1 - rho_k) I + rho_k 1 1^T)``.

    Every diagonal entry of block k equals ``s_k``, while its eigenvalues are
    ``s_k (1 - rho_k)`` (multiplicity b_k - 1) and ``s_k (1 + (b_k - 1) rho_k)``: with equal
    scales the diagonal (what a Gauss-Newton diagonal sees) is uninformative about the
    spectrum (seed 002's example where Adam beats GN^-1 and GN^-1/2 in the identity basis).
    """
    if len(rhos) != len(block_sizes) or (scales is not None and len(scales) != len(block_sizes)):
        raise ValueError(f"{where}: block_sizes, block_rhos (and block_scales) must have the same length")
    scales = [1.0] * len(block_sizes) if scales is None else scales
    d = int(sum(block_sizes))
    S = np.zeros((d, d))
    i = 0
    for b, rho, s in zip(block_sizes, rhos, scales):
        if b < 1 or s <= 0 or not (-1.0 / max(b - 1, 1) < rho < 1):
            raise ValueError(f"{where}: block of size {b} with rho={rho}, scale={s} is not positive definite")
        S[i:i + b, i:i + b] = s * ((1 - rho) * np.eye(b) + rho * np.ones((b, b)))
        i += b
    return S
