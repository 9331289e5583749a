"""Sparse parity and staircase functions learned by an MLP (seed 002's non-convex tasks).

Inputs are uniform ``x in {-1, +1}^n``.
- ``sparse_parity``: ``y = prod_{i in S} x_i`` over a hidden set ``S`` of ``k`` relevant bits
  (drawn from ``data_seed``); binary classification of ``(y + 1) / 2`` with a logistic loss.
- ``staircase``: ``y = x_1 + x_1 x_2 + ... + x_1 x_2 ... x_k`` (Abbe et al. 2021's staircase, on
  the bits of ``S`` in order); regression with the squared loss.
Fixed train/val/test sets (sampled with ``data_seed``) and seeded minibatches.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ._classify import ArrayProblem, check_batch_size
from .models import MLP
from .registry import register


class _BitsProblem(ArrayProblem):
    source = "seed 002"

    def __init__(self, n_bits: int = 20, k: int = 2, hidden: Sequence[int] = (256,), n_train: int = 2000,
                 n_val: int = 1000, n_test: int = 1000, batch_size: int | None = 64, activation: str = "relu",
                 data_seed: int = 0) -> None:
        super().__init__()
        if not 1 <= k <= n_bits:
            raise ValueError(f"{self.name}: need 1 <= k <= n_bits, got k={k}, n_bits={n_bits}")
        self.n_bits, self.k, self.hidden, self.activation = int(n_bits), int(k), tuple(hidden), activation
        self.n = (int(n_train), int(n_val), int(n_test))
        self.batch_size = check_batch_size(batch_size, self.name)
        self.data_seed = int(data_seed)
        self.relevant = np.sort(np.random.default_rng([self.data_seed, 1]).choice(self.n_bits, self.k, replace=False))

    def target(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _load(self):
        rng = np.random.default_rng(self.data_seed)
        out = {}
        for split, n in zip(("train", "val", "test"), self.n):
            X = rng.choice(np.array([-1.0, 1.0]), size=(n, self.n_bits))
            y = self.target(X)
            out[split] = (torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
        return out

    def make_model(self) -> nn.Module:
        return MLP(self.n_bits, self.hidden, 1, self.activation)


@register("sparse_parity")
class SparseParity(_BitsProblem):
    """Args: ``n_bits`` (20), ``k`` (2 relevant bits; k = 3 takes hundreds of Adam steps), ``hidden`` (MLP widths, (256,)),
    ``n_train``/``n_val``/``n_test`` (2000/1000/1000), ``batch_size`` (64; None = full batch),
    ``activation`` ("relu"), ``data_seed`` (0: the relevant set and the samples)."""

    name = "sparse_parity"
    kind = "classification"
    loss_type = "logistic"
    val_metric = "val_acc"
    test_metric = "test_acc"
    higher_is_better = True

    def target(self, X):
        return (np.prod(X[:, self.relevant], axis=1) + 1) / 2


@register("staircase")
class Staircase(_BitsProblem):
    """Args as ``sparse_parity``; target ``sum_{j<=k} prod_{i<=j} x_{S_i}`` (squared loss)."""

    name = "staircase"
    kind = "regression"
    loss_type = "mse"

    def target(self, X):
        return np.cumprod(X[:, self.relevant], axis=1).sum(1)

    def forward(self, model, batch):
        return model(batch.inputs).squeeze(-1), batch.targets
