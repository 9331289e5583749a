"""Wilson et al. 2017 ("The Marginal Value of Adaptive Gradient Methods in Machine Learning"),
section 3.3: a linear least-squares classification problem on which gradient descent from 0
generalizes perfectly and adaptive methods (AdaGrad, RMSProp, Adam) predict +1 everywhere.

Construction (references.md; seed 003): sample ``i`` has label ``y_i = +1`` with probability
``p > 1/2`` (else -1) and features ``x_i1 = y_i``, ``x_i2 = x_i3 = 1``, and a block of 5
features private to sample i (columns ``3 + 5i .. 3 + 5i + 4``, 0-based): the first one is 1
for a positive sample; all five are 1 for a negative one. ``d = 3 + 5 n``. Loss
``1/2 mean_i (x_i^T w - y_i)^2``, model ``w`` started at 0 whatever the seed; the claim is
about FULL-BATCH updates (``batch_size=None``, the default).

Since ``X sign(X^T y) = 4 y`` when ``sum_i y_i > 0``, the adaptive methods' limit
``sign_solution() = sign(X^T y) / 4`` interpolates the training data; on a new sample (whose
private features are unseen: zero weight) it predicts ``sign(y + 2) = +1``. The minimum-norm
interpolant ``min_norm_solution() = X^T (X X^T)^{-1} y`` (gradient descent's limit from 0)
classifies new samples correctly. Test and validation samples are represented with their
private block all zero (the weights of unseen features stay 0 for any method started at 0).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn

from ._common import as_dtype, tensor_batches
from .base import Batch, Problem
from .registry import register
from .regression import LinearModel


@register("wilson")
class Wilson(Problem):
    """Args: ``n_train`` (int, 40 samples), ``n_val``/``n_test`` (int, 500 each), ``p`` (float in
    (1/2, 1), 0.6: probability of a positive label), ``data_seed`` (int, 0: draws the labels;
    resampled until the training set has more positives than negatives), ``batch_size``
    (None = full batch, the paper's setting; an int gives seeded minibatches), ``dtype``
    ("float64" default: the interpolation checks are exact to ~1e-12)."""

    name = "wilson"
    kind = "classification"
    source = "seed 003; Wilson et al. 2017, sec. 3.3"
    loss_type = "mse"
    val_metric = "val_error"
    test_metric = "test_error"
    optimum = 0.0
    stackable = True

    def __init__(self, n_train: int = 40, n_val: int = 500, n_test: int = 500, p: float = 0.6, data_seed: int = 0,
                 batch_size: int | None = None, dtype: str = "float64") -> None:
        if not 0.5 < p < 1:
            raise ValueError(f"wilson: p must be in (1/2, 1), got {p}")
        if n_train < 2:
            raise ValueError(f"wilson: n_train must be >= 2, got {n_train}")
        self.n_train, self.p, self.batch_size = int(n_train), float(p), batch_size
        self.dtype = as_dtype(dtype, "wilson")
        rng = np.random.default_rng(data_seed)
        while True:
            y = np.where(rng.random(self.n_train) < p, 1.0, -1.0)
            if y.sum() > 0:
                break
        self.dim = 3 + 5 * self.n_train
        self.X_train, self.y_train = self._features(y, private=True), y
        yv = np.where(rng.random(int(n_val)) < p, 1.0, -1.0)
        yt = np.where(rng.random(int(n_test)) < p, 1.0, -1.0)
        self.X_val, self.y_val = self._features(yv, private=False), yv
        self.X_test, self.y_test = self._features(yt, private=False), yt
        self._t = {k: torch.tensor(getattr(self, k), dtype=self.dtype) for k in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")}

    def _features(self, y: np.ndarray, private: bool) -> np.ndarray:
        X = np.zeros((len(y), self.dim))
        X[:, 0] = y
        X[:, 1:3] = 1.0
        if private:
            for i, yi in enumerate(y):
                start = 3 + 5 * i
                X[i, start:start + (1 if yi > 0 else 5)] = 1.0
        return X

    # ---- the two solutions ---------------------------------------------------------------
    def min_norm_solution(self) -> np.ndarray:
        """``X^T (X X^T)^{-1} y``: the minimum-norm interpolant (gradient descent's limit from 0)."""
        X, y = self.X_train, self.y_train
        return X.T @ np.linalg.solve(X @ X.T, y)

    def sign_solution(self) -> np.ndarray:
        """``sign(X^T y) / 4``: the adaptive methods' limit direction, scaled to interpolate."""
        return np.sign(self.X_train.T @ self.y_train) / 4.0

    @staticmethod
    def error(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        """0/1 error of ``sign(X w)`` (a score of exactly 0 counts as an error)."""
        return float(np.mean(np.sign(X @ w) != y))

    # ---- Problem interface -----------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        """Batches per pass over the training set (``budget.epochs``): 1 in full batch, else
        ``n_train // batch_size`` (:func:`~._common.minibatches` drops the remainder)."""
        if self.batch_size is None or self.batch_size >= self.n_train:
            return 1
        return self.n_train // int(self.batch_size)

    @property
    def size(self) -> int:
        return self.dim

    def model(self, seed: int) -> nn.Module:
        return LinearModel(self.initial_point(seed))

    def initial_point(self, seed: int) -> torch.Tensor:
        return torch.zeros(self.dim, dtype=self.dtype)

    def batches(self, seed: int) -> Iterator[Batch]:
        X, y = self._t["X_train"], self._t["y_train"]
        return tensor_batches(X, y, self.batch_size, seed)

    def forward(self, model: nn.Module, batch: Batch):
        return model(batch.inputs), batch.targets

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        w = model.x.detach().to(torch.float64).cpu().numpy()
        out = {}
        for split in ("train", "val", "test"):
            X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
            r = X @ w - y
            out[f"{split}_loss"] = float(0.5 * np.mean(r * r))
            out[f"{split}_error"] = self.error(X, y, w)
        return out
