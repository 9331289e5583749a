"""Linear regression with a Gaussian design (seed 002) and logistic regression with anisotropic
features (seed 001), with exact Hessians / Gauss-Newton matrices and optima.

``linear_regression``: ``x ~ N(0, Sigma)``, ``y = x^T w* + sigma eps``; the objective is the
population loss ``L(w) = 1/2 E (x^T w - y)^2 = 1/2 (w - w*)^T Sigma (w - w*) + sigma^2/2``,
so ``hessian() = gn_matrix() = Sigma`` exactly. ``batch_size=None`` (full batch) gives the
exact population loss without noise through a fixed "virtual design" of d rows
``A = sqrt(d) Sigma^{1/2}`` (then ``1/2 mean_i (a_i^T w - a_i^T w*)^2 = L(w) - sigma^2/2``);
an int draws fresh Gaussian samples every step (batch size 1 allowed): seed 002's
stochastic regime.

``logistic_regression``: a fixed data set with features ``x ~ N(0, U diag(lambda) U^T)``
(anisotropic: power-law or geometric variances), labels ``y ~ Bernoulli(sigmoid(x^T w*))``,
a linear model without bias, loss ``mean softplus(-s x^T w) + l2/2 |w|^2``; exact Hessian
``X^T diag(p (1 - p)) X / n + l2 I`` (equal to its Gauss-Newton matrix), minimizer by Newton.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ._classify import ArrayProblem, check_batch_size
from ._common import as_dtype, generator
from ._spectra import basis as make_basis
from ._spectra import block_covariance, eigenvalues
from .base import Batch, Problem
from .registry import register


class LinearModel(nn.Module):
    """``inputs @ x``: one flat weight vector named ``x`` (so the problem is vectorizable)."""

    def __init__(self, x0: torch.Tensor) -> None:
        super().__init__()
        self.x = nn.Parameter(x0.detach().clone())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs @ self.x


class _LinearWeights:
    """The model of both regressions: one flat weight vector ``x`` (:class:`LinearModel`), started
    at 0 for seed 0 and at ``N(0, I) / spread()`` (seeded) otherwise."""

    dim: int
    dtype: torch.dtype

    def spread(self) -> float:
        return 1.0

    @property
    def size(self) -> int:
        return self.dim

    def initial_point(self, seed: int) -> torch.Tensor:
        if seed == 0:
            return torch.zeros(self.dim, dtype=self.dtype)
        return (torch.randn(self.dim, generator=generator(seed), dtype=torch.float64) / self.spread()).to(self.dtype)

    def model(self, seed: int) -> nn.Module:
        return LinearModel(self.initial_point(seed))


def _sym_sqrt(S: np.ndarray) -> np.ndarray:
    lam, U = np.linalg.eigh(S)
    return (U * np.sqrt(np.clip(lam, 0, None))) @ U.T


@register("linear_regression")
class LinearRegression(_LinearWeights, Problem):
    """Args: ``dim`` (10); covariance either from ``spectrum``/``condition_number``/``power``/
    ``top`` + ``basis``/``basis_seed`` (as for ``quadratic``), or block-wise from
    ``block_sizes`` (e.g. [2, 2, 2]) + ``block_rhos`` (correlation in each block) +
    ``block_scales`` (variance of each block's coordinates; default 1), which overrides ``dim``;
    ``w_star`` ("random" = N(0, I) from ``data_seed``, or a vector); ``noise_std`` (sigma, 0);
    ``batch_size`` (None = exact full-batch population loss; int >= 1 = fresh Gaussian samples);
    ``data_seed`` (0); ``dtype`` ("float32"). Seed 0 starts at w = 0, other seeds at N(0, I)."""

    name = "linear_regression"
    kind = "regression"
    source = "seed 002"
    loss_type = "mse"
    stackable = True
    described = {"covariance": "covariance_kind"}

    def __init__(self, dim: int = 10, spectrum: str | Sequence[float] = "geometric", condition_number: float = 100.0,
                 power: float = 1.0, top: float = 1.0, basis: str | np.ndarray = "identity", basis_seed: int = 0,
                 block_sizes: Sequence[int] | None = None, block_rhos: Sequence[float] | None = None,
                 block_scales: Sequence[float] | None = None, w_star: str | Sequence[float] = "random",
                 noise_std: float = 0.0, batch_size: int | None = None, data_seed: int = 0, dtype: str = "float32") -> None:
        self.dtype = as_dtype(dtype, "linear_regression")
        self.batch_size = check_batch_size(batch_size, "linear_regression")
        self.vectorizable = self.batch_size is None  # value(x) equals the training loss only in full batch
        if block_sizes is not None:
            if block_rhos is None:
                raise ValueError("linear_regression: block_sizes needs block_rhos (one correlation per block)")
            S = block_covariance(block_sizes, block_rhos, block_scales, where="linear_regression")
            self.covariance_kind = "blocks"
        else:
            lam = eigenvalues(int(dim), spectrum, condition_number, power, top, where="linear_regression")
            U = make_basis(int(dim), basis, basis_seed, where="linear_regression")
            S = (U * lam) @ U.T
            self.covariance_kind = f"spectrum/{basis if isinstance(basis, str) else 'given'}"
        S = (S + S.T) / 2
        self.dim = S.shape[0]
        if isinstance(w_star, str):
            if w_star != "random":
                raise ValueError(f"linear_regression: w_star must be 'random' or a vector, got {w_star!r}")
            ws = np.random.default_rng(data_seed).standard_normal(self.dim)
        else:
            ws = np.asarray(w_star, dtype=np.float64)
            if ws.shape != (self.dim,):
                raise ValueError(f"linear_regression: w_star must have shape ({self.dim},), got {ws.shape}")
        if noise_std < 0:
            raise ValueError(f"linear_regression: noise_std must be >= 0, got {noise_std}")
        self.noise_std = float(noise_std)
        self._S = torch.tensor(S, dtype=torch.float64)
        self._root = torch.tensor(_sym_sqrt(S), dtype=torch.float64)
        self._ws = torch.tensor(ws, dtype=torch.float64)
        self.optimum = 0.5 * self.noise_std ** 2

    def hessian(self) -> torch.Tensor:
        """Exact Hessian of the population loss, ``Sigma`` (float64)."""
        return self._S.clone()

    gn_matrix = hessian  # for the squared loss of a linear model the Gauss-Newton matrix is the Hessian

    @property
    def minimizer(self) -> torch.Tensor:
        return self._ws.clone()

    def value(self, x: torch.Tensor, t: int | None = None) -> torch.Tensor:
        """The population loss ``1/2 (x - w*)^T Sigma (x - w*) + sigma^2/2`` over (..., d)."""
        r = x - self._ws.to(x)
        return 0.5 * ((r @ self._S.to(x)) * r).sum(-1) + 0.5 * self.noise_std ** 2

    def batches(self, seed: int) -> Iterator[Batch]:
        t = 0
        if self.batch_size is None:
            A = (self.dim ** 0.5 * self._root).to(self.dtype)
            y = A @ self._ws.to(self.dtype)
            while True:
                t += 1
                yield Batch(A, y, t)
        g = generator(seed)
        L, ws = self._root.to(self.dtype), self._ws.to(self.dtype)
        while True:
            t += 1
            z = torch.randn(self.batch_size, self.dim, generator=g, dtype=self.dtype)
            X = z @ L
            y = X @ ws + self.noise_std * torch.randn(self.batch_size, generator=g, dtype=self.dtype)
            yield Batch(X, y, t)

    def forward(self, model: nn.Module, batch: Batch):
        return model(batch.inputs), batch.targets

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        with torch.no_grad():
            v = float(self.value(model.x.detach().double()))
        return {"loss": v, "val_loss": v, "test_loss": v, "excess_loss": v - self.optimum,
                "dist_to_opt": float((model.x.detach().double() - self._ws).norm())}


@register("logistic_regression")
class LogisticRegression(_LinearWeights, ArrayProblem):
    """Args: ``dim`` (20); feature covariance ``spectrum`` ("power" default: variances
    ``i^-power``), ``power`` (2.0), ``condition_number`` (for "geometric"), ``basis``
    ("identity" = axis-aligned anisotropy, "random", or a matrix), ``basis_seed``;
    ``n_train``/``n_val``/``n_test`` (2000/1000/1000); ``teacher_scale`` (3.0: the standard
    deviation of the teacher's logits ``x^T w*``, w* a random direction from ``data_seed``); ``l2`` (0.0); ``batch_size`` (64; None = full
    batch); ``data_seed`` (0); ``dtype`` ("float32"). Seed 0 starts at w = 0, others at N(0, I/d)."""

    name = "logistic_regression"
    kind = "classification"
    source = "seed 001 (anisotropic smoothness), seed 002"
    loss_type = "logistic"

    def __init__(self, dim: int = 20, spectrum: str | Sequence[float] = "power", power: float = 2.0,
                 condition_number: float = 100.0, basis: str | np.ndarray = "identity", basis_seed: int = 0,
                 n_train: int = 2000, n_val: int = 1000, n_test: int = 1000, teacher_scale: float = 3.0,
                 l2: float = 0.0, batch_size: int | None = 64, data_seed: int = 0, dtype: str = "float32") -> None:
        super().__init__()
        self.dim = int(dim)
        self.dtype = as_dtype(dtype, "logistic_regression")
        self.batch_size = check_batch_size(batch_size, "logistic_regression")
        self.vectorizable = self.batch_size is None
        if l2 < 0:
            raise ValueError(f"logistic_regression: l2 must be >= 0, got {l2}")
        self.l2 = float(l2)
        self.variances = eigenvalues(self.dim, spectrum, condition_number, power, 1.0, where="logistic_regression")
        self.basis = make_basis(self.dim, basis, basis_seed, where="logistic_regression")
        self.n = (int(n_train), int(n_val), int(n_test))
        self.teacher_scale = float(teacher_scale)
        self.data_seed = int(data_seed)
        self._wmin: torch.Tensor | None = None

    def _load(self):
        rng = np.random.default_rng(self.data_seed)
        root = self.basis * np.sqrt(self.variances)  # x = root @ z has covariance U diag(lambda) U^T
        # teacher: logits x^T w* have standard deviation teacher_scale
        w = rng.standard_normal(self.dim)
        w *= self.teacher_scale / np.sqrt(w @ (root @ root.T) @ w)
        self.w_teacher = w
        out = {}
        for split, n in zip(("train", "val", "test"), self.n):
            X = rng.standard_normal((n, self.dim)) @ root.T
            y = (rng.random(n) < 1 / (1 + np.exp(-X @ w))).astype(np.float64)
            out[split] = (torch.tensor(X, dtype=self.dtype), torch.tensor(y, dtype=self.dtype))
        return out

    def spread(self) -> float:  # starts at N(0, I/d)
        return self.dim ** 0.5

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        out = super().loss(model, batch)
        return out + 0.5 * self.l2 * model.x.pow(2).sum() if self.l2 else out

    def value(self, x: torch.Tensor, t: int | None = None) -> torch.Tensor:
        """Full training loss ``mean_i softplus(-(2y_i - 1) x_i^T w) + l2/2 |w|^2`` over points (..., d)."""
        X, y = self.data["train"]
        X, s = X.to(x), (2 * y - 1).to(x)
        z = x @ X.T  # (..., n)
        return nn.functional.softplus(-s * z).mean(-1) + 0.5 * self.l2 * (x * x).sum(-1)

    def hessian(self, w: torch.Tensor | None = None) -> torch.Tensor:
        """Exact Hessian (= Gauss-Newton matrix) of the training loss at ``w`` (default: the minimizer), float64."""
        X, _ = self.data["train"]
        X = X.double()
        w = self.minimizer if w is None else w.detach().double().reshape(-1)
        p = torch.sigmoid(X @ w)
        return (X.T * (p * (1 - p))) @ X / len(X) + self.l2 * torch.eye(self.dim, dtype=torch.float64)

    gn_matrix = hessian

    @property
    def minimizer(self) -> torch.Tensor:
        """The training-loss minimizer by Newton's method in float64 (cached)."""
        if self._wmin is None:
            X, y = self.data["train"]
            X, s = X.double(), (2 * y.double() - 1)
            w = torch.zeros(self.dim, dtype=torch.float64)
            for _ in range(100):
                p = torch.sigmoid(X @ w)
                g = X.T @ (p - (s + 1) / 2) / len(X) + self.l2 * w
                step = torch.linalg.solve(self.hessian(w), g)
                w = w - step
                if float(step.abs().max()) < 1e-13:
                    break
            else:
                raise RuntimeError("logistic_regression: Newton did not converge (separable data? set l2 > 0)")
            self._wmin = w
        return self._wmin.clone()

    @property
    def optimum(self) -> float:  # type: ignore[override]
        return float(self.value(self.minimizer))

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        out = super().evaluate(model)
        if self.l2:
            out["train_objective"] = out["train_loss"] + 0.5 * self.l2 * float(model.x.detach().pow(2).sum())
        return out
