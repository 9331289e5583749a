"""Shared helpers of the problem modules: point models, seeded generators, data splits, caches.

Not a problem module itself (the leading underscore keeps the registry from importing it
as one); everything here is reused by several problem files.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from .base import Batch, Problem

#: dtype names -> torch dtypes: the package's one map (``precond.problems.DTYPES``; the step
#: benchmark also takes bfloat16, problems take the ``PROBLEM_DTYPES``)
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
#: the dtypes of a problem's points and data
PROBLEM_DTYPES = ("float32", "float64")


def as_dtype(dtype: Any, where: str) -> torch.dtype:
    """One of ``PROBLEM_DTYPES`` (by name, or the torch dtype) -> torch dtype, with a clear error otherwise."""
    for name in PROBLEM_DTYPES:
        if (isinstance(dtype, str) and dtype == name) or dtype is DTYPES[name]:
            return DTYPES[name]
    raise ValueError(f"{where}: dtype must be {' or '.join(map(repr, PROBLEM_DTYPES))}, got {dtype!r}")


def generator(seed: int) -> torch.Generator:
    """A CPU torch generator seeded with ``seed`` (never touches the global RNG)."""
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def torch_seeded(seed: int):
    """Context manager: run with the global torch RNG seeded, restoring its state afterwards.

    Used to initialize ``nn.Module``s reproducibly without disturbing the caller's RNG.
    """
    return _Fork(seed)


class _Fork:
    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def __enter__(self):
        self.state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc):
        torch.random.set_rng_state(self.state)
        return False


class ModuleProblem(Problem):
    """Base of the problems whose model is a network made by ``make_model()``: ``model(seed)``
    makes it with the global torch RNG seeded (and restored afterwards); ``size`` counts the
    trainable parameters of one made unseeded."""

    def make_model(self) -> nn.Module:
        raise NotImplementedError

    def model(self, seed: int) -> nn.Module:
        with torch_seeded(seed):
            return self.make_model()

    @property
    def size(self) -> int:
        return sum(p.numel() for p in self.make_model().parameters() if p.requires_grad)


class PointModel(nn.Module):
    """The "model" of a vectorizable problem: one flat parameter ``x`` (the point)."""

    def __init__(self, x0: torch.Tensor) -> None:
        super().__init__()
        self.x = nn.Parameter(x0.detach().clone())

    def forward(self) -> torch.Tensor:  # pragma: no cover - trivial
        return self.x


class VectorProblem(Problem):
    """Base of the problems that are a function of one flat vector (analytic, quadratic, online).

    Subclasses set ``dim`` and implement ``value(x, t)`` (batched over leading dims) and
    ``initial_point(seed)``. The model holds the point as the parameter ``x``; every batch is
    just the step counter ``t``; the loss at step t is ``value(model.x, t)``.
    """

    vectorizable = True
    dim: int = 2
    dtype: torch.dtype = torch.float32

    def model(self, seed: int) -> nn.Module:
        return PointModel(self.initial_point(seed))

    def batches(self, seed: int) -> Iterator[Batch]:
        t = 0
        while True:
            t += 1
            yield Batch(t=t)

    def forward(self, model: nn.Module, batch: Batch):
        return self.value(model.x, batch.t), None

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.value(model.x, batch.t)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        with torch.no_grad():
            v = float(self.value(model.x.detach()))
        out = {"loss": v, "val_loss": v, "test_loss": v}
        if self.optimum is not None:
            out["suboptimality"] = v - float(self.optimum)
        xstar = getattr(self, "minimizer", None)
        if isinstance(xstar, torch.Tensor):
            out["dist_to_opt"] = float((model.x.detach().double() - xstar.double()).norm())
        return out

    described = {"optimum": "optimum"}

    @property
    def size(self) -> int:
        return int(self.dim)


# ---- data helpers -------------------------------------------------------------------

def split_indices(n: int, fractions: tuple[float, float, float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded permutation of ``range(n)`` cut into train/val/test by ``fractions`` (summing to 1)."""
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    perm = np.random.default_rng(seed).permutation(n)
    n_tr = int(round(fractions[0] * n))
    n_va = int(round(fractions[1] * n))
    return perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:]


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Standardize every array by the train split's per-feature mean and std (std 0 -> 1)."""
    mu = train.mean(0, keepdims=True)
    sd = train.std(0, keepdims=True)
    sd[sd == 0] = 1.0
    return [(a - mu) / sd for a in (train, *others)]


def minibatches(n: int, batch_size: int | None, seed: int) -> Iterator[tuple[int, np.ndarray | None]]:
    """Endless ``(t, indices)``: seeded reshuffled epochs of ``batch_size``; ``None`` -> full batch (indices None)."""
    if batch_size is not None and (int(batch_size) < 1):
        raise ValueError(f"batch_size must be >= 1 or None (full batch), got {batch_size}")
    rng = np.random.default_rng(seed)
    t = 0
    while True:
        if batch_size is None or batch_size >= n:
            t += 1
            yield t, None
            continue
        perm = rng.permutation(n)
        for i in range(0, n - batch_size + 1, batch_size):
            t += 1
            yield t, perm[i:i + batch_size]


def tensor_batches(X: torch.Tensor, y: torch.Tensor, batch_size: int | None, seed: int) -> Iterator[Batch]:
    """Endless :class:`Batch` es of rows of ``(X, y)`` in the order of :func:`minibatches`."""
    for t, idx in minibatches(len(X), batch_size, seed):
        if idx is None:
            yield Batch(X, y, t)
        else:
            i = torch.as_tensor(idx)
            yield Batch(X[i], y[i], t)
