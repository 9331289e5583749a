"""Logistic regression on sparse rows whose feature frequencies follow a power law (seed 001).

Seed 001 (AdaGrad under anisotropic smoothness, arXiv 2406.15244) ran logistic regression on
sparse text-like data (libsvm sets such as a4a). Its summary gives no construction, so this one
is built to have the two properties the paper's analysis names, with one knob:

* feature ``j`` (0-based) is present in a row with probability ``p_j = min(1, c (j + 1)^-alpha)``,
  ``c`` chosen so that ``sum_j p_j = nnz`` (the expected nonzeros per row); every present entry is
  1 and each row is scaled to unit Euclidean norm (a binary bag of words, L2-normalized, as
  libsvm's text sets are). A row that drew no feature gets one, drawn with probabilities
  ``p / sum p``;
* ``alpha = 0``: every feature equally frequent (isotropic); larger ``alpha``: a few frequent
  features and a long tail of rare ones, so the smoothness constants ``L_j`` and the gradient
  noise ``sigma_j`` of the coordinates spread over orders of magnitude (anisotropic).

Labels ``y ~ Bernoulli(sigmoid(x^T w_teacher))`` with ``w_teacher ~ N(0, I)`` rescaled so that
the teacher's logits have standard deviation ``teacher_scale`` (label noise: the loss has a
positive minimum). Loss ``f(w) = mean_i softplus(-s_i x_i^T w) + l2/2 |w|^2`` (``s_i = 2y_i - 1``,
no bias), the training set is the whole data set (an optimization problem: the claims compare
training losses), every seed starts at ``w = 0`` (the seed only orders the minibatches), and
the minimizer ``w*`` comes from Newton's method in float64.

``dataset = "digits"``: scikit-learn's bundled digits (1797 x 64 raw pixel intensities, not
standardized), each row scaled to unit norm, label ``digit >= 5``: a real design with rare
features (border pixels).

:meth:`anisotropy` gives the quantities of the paper's bounds: ``L`` (``nabla^2 f <= diag(L)``
for every w: the row sums of ``|X^T X| / (4n)`` plus ``l2``, a valid choice by Gershgorin since
``softplus'' <= 1/4``), ``sigma`` (the standard deviation of one sample's gradient coordinate at
``w*``), and ``D_2 = |w0 - w*|_2``, ``D_inf = |w0 - w*|_inf``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ._classify import ArrayProblem, check_batch_size
from ._common import as_dtype
from .regression import LinearModel
from .registry import register

_CACHE: dict[tuple[Any, ...], Any] = {}  # data sets and minimizers by their arguments, per process (runs rebuild the problem)


def powerlaw_frequencies(dim: int, alpha: float, nnz: float) -> np.ndarray:
    """``p_j = min(1, c (j + 1)^-alpha)`` with ``sum_j p_j = nnz`` (``c`` by bisection on the capped sum)."""
    if not 0 < nnz <= dim:
        raise ValueError(f"powerlaw_logreg: nnz must lie in (0, dim = {dim}], got {nnz}")
    if alpha < 0:
        raise ValueError(f"powerlaw_logreg: alpha must be >= 0, got {alpha}")
    base = np.arange(1, dim + 1, dtype=np.float64) ** -float(alpha)
    lo, hi = 0.0, float(dim) / base[-1]
    for _ in range(200):
        c = 0.5 * (lo + hi)
        lo, hi = (c, hi) if np.minimum(1.0, c * base).sum() < nnz else (lo, c)
    return np.minimum(1.0, 0.5 * (lo + hi) * base)


def powerlaw_design(n: int, dim: int, alpha: float, nnz: float, rng: np.random.Generator) -> np.ndarray:
    """``(n, dim)`` binary rows with feature frequencies :func:`powerlaw_frequencies`, each row of unit norm."""
    p = powerlaw_frequencies(dim, alpha, nnz)
    X = (rng.random((n, dim)) < p).astype(np.float64)
    empty = np.flatnonzero(X.sum(1) == 0)
    X[empty, rng.choice(dim, size=len(empty), p=p / p.sum())] = 1.0
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@register("powerlaw_logreg")
class PowerLawLogReg(ArrayProblem):
    """Args: ``dim`` (256), ``n`` (16384 rows, all of them the training set), ``alpha`` (1.0: the
    power law's exponent; 0 = isotropic), ``nnz`` (8.0 expected features per row), ``teacher_scale``
    (2.0), ``l2`` (1e-4), ``batch_size`` (64; None = full batch), ``data_seed`` (0), ``dataset``
    ("powerlaw", or "digits": scikit-learn's digits, rows normalized, label digit >= 5; ``dim``,
    ``n``, ``alpha``, ``nnz`` ignored), ``dtype`` ("float32"; the objective is evaluated in float64). Every seed starts at w = 0.
    Metrics: ``objective`` (the training loss with the l2 term) and ``excess`` (objective - f*)."""

    name = "powerlaw_logreg"
    kind = "classification"
    source = "seed 001 (logistic regression on sparse data with anisotropic smoothness)"
    loss_type = "logistic"
    val_metric = "objective"
    test_metric = "objective"
    stackable = False  # stacked runs were 3x slower than the loop at batch 4096 (measured): the claims run loops
    described = {"alpha": "alpha", "dataset": "dataset"}

    def __init__(self, dim: int = 256, n: int = 16384, alpha: float = 1.0, nnz: float = 8.0, teacher_scale: float = 2.0,
                 l2: float = 1e-4, batch_size: int | None = 64, data_seed: int = 0, dataset: str = "powerlaw",
                 dtype: str = "float32") -> None:  # fmt: skip
        super().__init__()
        if dataset not in ("powerlaw", "digits"):
            raise ValueError(f"powerlaw_logreg: dataset must be 'powerlaw' or 'digits', got {dataset!r}")
        if l2 < 0:
            raise ValueError(f"powerlaw_logreg: l2 must be >= 0, got {l2}")
        self.dataset, self.alpha, self.nnz = dataset, float(alpha), float(nnz)
        self.dim_arg, self.n_arg = int(dim), int(n)
        if dataset == "powerlaw":
            powerlaw_frequencies(self.dim_arg, self.alpha, self.nnz)  # checks alpha and nnz now
        self.teacher_scale, self.l2, self.data_seed = float(teacher_scale), float(l2), int(data_seed)
        self.batch_size = check_batch_size(batch_size, "powerlaw_logreg")
        self.dtype = as_dtype(dtype, "powerlaw_logreg")
        self._wmin: torch.Tensor | None = None
        self._fmin: float | None = None

    # ---- data -------------------------------------------------------------------------------
    def _key(self) -> tuple[Any, ...]:
        return (self.dataset, self.dim_arg, self.n_arg, self.alpha, self.nnz, self.teacher_scale, self.data_seed, self.dtype)

    def _load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        if ("data", *self._key()) not in _CACHE:
            _CACHE["data", *self._key()] = self._make()
        return _CACHE["data", *self._key()]

    def _make(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        rng = np.random.default_rng(self.data_seed)
        if self.dataset == "digits":
            from .sklearn_data import load_sklearn

            X, digit = load_sklearn("digits")
            X = X / np.linalg.norm(X, axis=1, keepdims=True)
            y = (digit >= 5).astype(np.float64)
        else:
            X = powerlaw_design(self.n_arg, self.dim_arg, self.alpha, self.nnz, rng)
            w = rng.standard_normal(X.shape[1])
            z = X @ w
            w *= self.teacher_scale / z.std()
            y = (rng.random(len(X)) < 1 / (1 + np.exp(-X @ w))).astype(np.float64)
        Xt, yt = torch.tensor(X, dtype=self.dtype), torch.tensor(y, dtype=self.dtype)
        return {"train": (Xt, yt)}

    @property
    def dim(self) -> int:
        return self.data["train"][0].shape[1]

    @property
    def size(self) -> int:
        return self.dim

    def model(self, seed: int) -> nn.Module:
        return LinearModel(torch.zeros(self.dim, dtype=self.dtype))

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        out = super().loss(model, batch)
        return out + 0.5 * self.l2 * model.x.pow(2).sum() if self.l2 else out

    def value(self, w: torch.Tensor, t: int | None = None) -> torch.Tensor:
        """The training objective at points ``w`` (..., d)."""
        X, y = self.data["train"]
        z = w @ X.to(w).T
        return nn.functional.softplus(-(2 * y.to(w) - 1) * z).mean(-1) + 0.5 * self.l2 * (w * w).sum(-1)

    @property
    def minimizer(self) -> torch.Tensor:
        """``argmin f`` by Newton's method in float64 (cached); ``RuntimeError`` if it does not converge."""
        if self._wmin is None:
            self._wmin = _CACHE.get(("wmin", self.l2, *self._key()))
        if self._wmin is None:
            X, y = (t.double() for t in self.data["train"])
            w = torch.zeros(X.shape[1], dtype=torch.float64)
            eye = self.l2 * torch.eye(X.shape[1], dtype=torch.float64)
            for _ in range(100):
                p = torch.sigmoid(X @ w)
                g = X.T @ (p - y) / len(X) + self.l2 * w
                H = (X.T * (p * (1 - p))) @ X / len(X) + eye
                step = torch.linalg.lstsq(H, g).solution  # zero columns (features never seen) make H singular when l2 = 0
                w = w - step
                if float(step.abs().max()) < 1e-12:
                    break
            else:
                raise RuntimeError("powerlaw_logreg: Newton did not converge (separable data? set l2 > 0)")
            self._wmin = _CACHE["wmin", self.l2, *self._key()] = w
        return self._wmin.clone()

    @property
    def optimum(self) -> float:  # type: ignore[override]
        if self._fmin is None:
            self._fmin = float(self.value(self.minimizer))
        return self._fmin

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        f = float(self.value(model.x.detach().double()))
        return {"objective": f, "excess": f - self.optimum}

    def anisotropy(self) -> dict[str, Any]:
        """The vectors and ratios of seed 001's bounds (see the module): ``L``, ``sigma``, ``D_2``,
        ``D_inf`` and ``L1_over_dLinf = |L|_1 / (d |L|_inf)``, ``sigma1_over_sqrtd_sigma2 =
        |sigma|_1 / (sqrt(d) |sigma|_2)`` (both 1 when isotropic, small when anisotropic) and
        ``ratio = |L|_inf D_2^2 / (|L|_1 D_inf^2)`` (SGD's bound over AdaGrad's: > 1 favours AdaGrad)."""
        X, y = (t.double() for t in self.data["train"])
        n, d = X.shape
        L = (X.T @ X).abs().sum(1) / (4 * n) + self.l2
        w = self.minimizer
        per_sample = X * (torch.sigmoid(X @ w) - y)[:, None] + self.l2 * w  # each sample's gradient at w*
        sigma = per_sample.std(0, unbiased=False)
        D2, Dinf = float(w.norm()), float(w.abs().max())
        L1, Linf = float(L.sum()), float(L.max())
        s1, s2 = float(sigma.sum()), float(sigma.norm())
        return {"d": d, "n": n, "L1": L1, "Linf": Linf, "sigma1": s1, "sigma2": s2, "D2": D2, "Dinf": Dinf,
                "L1_over_dLinf": L1 / (d * Linf), "sigma1_over_sqrtd_sigma2": s1 / (math.sqrt(d) * s2),
                "ratio": Linf * D2 ** 2 / (L1 * Dinf ** 2)}  # fmt: skip
