"""MNIST-1D (Greydanus 2020, package ``mnist1d``) for MLPs and small 1-D CNNs, generated offline.

The data come from ``mnist1d.data.make_dataset(get_dataset_args())``: the package's default
arguments (5000 samples, length 40, seed 42), generated from the digit templates that ship in
the package. The package's ``get_dataset``/download path is never called, so no network is
touched (tests check this with sockets disabled). ``make_dataset`` reseeds Python's and
NumPy's global RNGs; their states are saved and restored around it. The arrays are generated
once per process (about 4 s) and cached.

Splits: the package's 4000 training samples are cut into train (3500) and val (500) by a
fixed permutation (``split_seed``); its 1000 test samples are the test split. Inputs (N, 40)
float32, labels int64 in 0..9.
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ._classify import ArrayProblem, check_batch_size
from .models import CNN1d, MLP
from .registry import register

_CACHE: dict[str, np.ndarray] = {}
N_TRAIN, N_TEST, LENGTH, N_CLASSES = 4000, 1000, 40, 10


def load_mnist1d() -> dict[str, np.ndarray]:
    """The default MNIST-1D arrays ``x (4000, 40), y (4000,), x_test (1000, 40), y_test (1000,)``, validated and cached."""
    if not _CACHE:
        from mnist1d.data import get_dataset_args, make_dataset

        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            d = make_dataset(get_dataset_args())
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        expect = {"x": (N_TRAIN, LENGTH), "y": (N_TRAIN,), "x_test": (N_TEST, LENGTH), "y_test": (N_TEST,)}
        for k, shape in expect.items():
            a = np.asarray(d.get(k))
            if a.shape != shape:
                raise ValueError(f"mnist1d: {k} has shape {a.shape}, expected {shape}; the installed mnist1d's "
                                 "default template arguments changed (precond expects mnist1d>=0.0.2 defaults)")
        for k in ("y", "y_test"):
            if not (np.issubdtype(d[k].dtype, np.integer) and d[k].min() >= 0 and d[k].max() < N_CLASSES):
                raise ValueError(f"mnist1d: labels {k} must be integers in 0..9")
        if not (np.isfinite(d["x"]).all() and np.isfinite(d["x_test"]).all()):
            raise ValueError("mnist1d: generated inputs are not finite")
        _CACHE.update({k: np.asarray(d[k]) for k in expect})
    return _CACHE


class _MNIST1D(ArrayProblem):
    kind = "classification"
    source = "MNIST-1D (Greydanus 2020); seed 000/002 small-scale non-convex"
    loss_type = "cross_entropy"
    needs_data = "the mnist1d package (its bundled digit templates)"
    val_metric = "val_loss"
    test_metric = "test_acc"

    def __init__(self, batch_size: int | None = 128, n_val: int = 500, split_seed: int = 0) -> None:
        super().__init__()
        self.batch_size = check_batch_size(batch_size, self.name)
        if not 0 < n_val < N_TRAIN:
            raise ValueError(f"{self.name}: n_val must be in 1..{N_TRAIN - 1}, got {n_val}")
        self.n_val, self.split_seed = int(n_val), int(split_seed)

    def _load(self):
        d = load_mnist1d()
        perm = np.random.default_rng(self.split_seed).permutation(N_TRAIN)
        va, tr = perm[:self.n_val], perm[self.n_val:]
        f = lambda a: torch.tensor(a, dtype=torch.float32)
        g = lambda a: torch.tensor(a, dtype=torch.long)
        return {"train": (f(d["x"][tr]), g(d["y"][tr])), "val": (f(d["x"][va]), g(d["y"][va])),
                "test": (f(d["x_test"]), g(d["y_test"]))}


@register("mnist1d_mlp")
class MNIST1DMLP(_MNIST1D):
    """Args: ``hidden`` (widths, (100, 100)), ``activation`` ("relu"), ``batch_size`` (128; None =
    full batch), ``n_val`` (500 of the 4000 training samples), ``split_seed`` (0)."""

    name = "mnist1d_mlp"

    def __init__(self, hidden: Sequence[int] = (100, 100), activation: str = "relu", batch_size: int | None = 128,
                 n_val: int = 500, split_seed: int = 0) -> None:
        super().__init__(batch_size, n_val, split_seed)
        self.hidden, self.activation = tuple(hidden), activation

    def make_model(self) -> nn.Module:
        return MLP(LENGTH, self.hidden, N_CLASSES, self.activation)


@register("mnist1d_cnn")
class MNIST1DCNN(_MNIST1D):
    """A small 1-D CNN. Args: ``channels`` ((32, 32, 32)), ``kernel`` (5), ``batch_size`` (128),
    ``n_val`` (500), ``split_seed`` (0)."""

    name = "mnist1d_cnn"

    def __init__(self, channels: Sequence[int] = (32, 32, 32), kernel: int = 5, batch_size: int | None = 128,
                 n_val: int = 500, split_seed: int = 0) -> None:
        super().__init__(batch_size, n_val, split_seed)
        self.channels, self.kernel = tuple(channels), int(kernel)

    def make_model(self) -> nn.Module:
        return CNN1d(LENGTH, N_CLASSES, self.channels, self.kernel)
