"""scikit-learn's bundled datasets (no download: the files ship inside scikit-learn) for
logistic/softmax regression and MLPs.

Datasets (``dataset=``), with the shapes the loader checks:
``digits`` (1797 x 64, 10 classes), ``breast_cancer`` (569 x 30, 2), ``iris`` (150 x 4, 3),
``wine`` (178 x 13, 3). Features are standardized with the training split's mean and std;
the train/val/test split (default 60/20/20) is a fixed permutation from ``split_seed``.
Two classes use one logit and the logistic loss; more use softmax cross-entropy.
Raw arrays are cached per process.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ._classify import ArrayProblem, check_batch_size
from ._common import split_indices, standardize
from .models import MLP
from .registry import register

#: name -> (loader function name in sklearn.datasets, n_samples, n_features, n_classes)
DATASETS: dict[str, tuple[str, int, int, int]] = {
    "digits": ("load_digits", 1797, 64, 10),
    "breast_cancer": ("load_breast_cancer", 569, 30, 2),
    "iris": ("load_iris", 150, 4, 3),
    "wine": ("load_wine", 178, 13, 3),
}
_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def load_sklearn(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X float64 (n, d), y int64 (n,))`` of a bundled scikit-learn dataset, validated and cached."""
    if name not in DATASETS:
        raise ValueError(f"unknown scikit-learn dataset {name!r}; choose one of {sorted(DATASETS)}")
    if name not in _CACHE:
        import sklearn.datasets as skd

        fn, n, d, c = DATASETS[name]
        bunch = getattr(skd, fn)()
        X, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)
        if X.shape != (n, d) or y.shape != (n,) or set(np.unique(y)) != set(range(c)) or not np.isfinite(X).all():
            raise ValueError(f"scikit-learn dataset {name!r}: expected X ({n}, {d}) finite and labels 0..{c - 1}, "
                             f"got X {X.shape}, labels {sorted(set(np.unique(y)))}; reinstall scikit-learn")
        _CACHE[name] = (X, y)
    return _CACHE[name]


class _SklearnProblem(ArrayProblem):
    kind = "classification"
    source = "seed 001 (logistic regression on real data); scikit-learn bundled datasets"
    needs_data = "scikit-learn's bundled datasets"
    described = {"dataset": "dataset"}
    val_metric = "val_loss"
    test_metric = "test_acc"

    def __init__(self, dataset: str = "digits", batch_size: int | None = 64, split: Sequence[float] = (0.6, 0.2, 0.2),
                 split_seed: int = 0) -> None:
        super().__init__()
        if dataset not in DATASETS:
            raise ValueError(f"{self.name}: unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
        self.dataset = dataset
        self.batch_size = check_batch_size(batch_size, self.name)
        self.split, self.split_seed = tuple(split), int(split_seed)
        _, _, self.n_features, self.n_classes = DATASETS[dataset]
        self.loss_type = "logistic" if self.n_classes == 2 else "cross_entropy"  # type: ignore[misc]
        self.d_out = 1 if self.n_classes == 2 else self.n_classes

    def _load(self):
        X, y = load_sklearn(self.dataset)
        tr, va, te = split_indices(len(X), self.split, self.split_seed)  # type: ignore[arg-type]
        Xtr, Xva, Xte = standardize(X[tr], X[va], X[te])
        out = {}
        for k, (Xs, ys) in {"train": (Xtr, y[tr]), "val": (Xva, y[va]), "test": (Xte, y[te])}.items():
            yt = torch.tensor(ys, dtype=torch.float32 if self.n_classes == 2 else torch.long)
            out[k] = (torch.tensor(Xs, dtype=torch.float32), yt)
        return out


@register("sklearn_logreg")
class SklearnLogReg(_SklearnProblem):
    """Logistic (2 classes) or softmax regression, a linear layer with bias.

    Args: ``dataset`` ("digits" | "breast_cancer" | "iris" | "wine"), ``batch_size`` (64; None =
    full batch), ``split`` (train/val/test fractions, (0.6, 0.2, 0.2)), ``split_seed`` (0).
    ``hessian(model)`` is the exact Hessian of the full training loss in the flat parameters.
    """

    name = "sklearn_logreg"

    def make_model(self) -> nn.Module:
        return nn.Linear(self.n_features, self.d_out)

    @property
    def size(self) -> int:
        return (self.n_features + 1) * self.d_out

    def hessian(self, model: nn.Module | None = None) -> torch.Tensor:
        """Exact Hessian (float64) of the full training loss w.r.t. ``[weight.flatten(), bias]`` at ``model`` (default ``model(0)``)."""
        model = self.model(0) if model is None else model
        W0, b0 = model.weight.detach().double(), model.bias.detach().double()
        X, y = self.data["train"]
        X = X.double()
        y = y.double() if self.n_classes == 2 else y
        nW = W0.numel()

        def f(theta):
            W, b = theta[:nW].view_as(W0), theta[nW:]
            out = X @ W.T + b
            return self.loss_from_outputs(out.squeeze(-1) if self.n_classes == 2 else out, y)

        return torch.autograd.functional.hessian(f, torch.cat([W0.flatten(), b0]))


@register("sklearn_mlp")
class SklearnMLP(_SklearnProblem):
    """An MLP classifier. Args as ``sklearn_logreg`` plus ``hidden`` (widths, (64,)) and ``activation`` ("relu")."""

    name = "sklearn_mlp"

    def __init__(self, dataset: str = "digits", hidden: Sequence[int] = (64,), activation: str = "relu",
                 batch_size: int | None = 64, split: Sequence[float] = (0.6, 0.2, 0.2), split_seed: int = 0) -> None:
        super().__init__(dataset, batch_size, split, split_seed)
        self.hidden, self.activation = tuple(hidden), activation

    def make_model(self) -> nn.Module:
        return MLP(self.n_features, self.hidden, self.d_out, self.activation)


def _alias(base: type, dataset: str, reg_name: str) -> type:
    cls = type(f"{base.__name__}_{dataset}", (base,), {"name": reg_name, "__doc__": f"``{base.name}`` with dataset={dataset!r} by default."})
    orig = base.__init__

    def __init__(self, dataset: str = dataset, **kw):
        orig(self, dataset=dataset, **kw)

    cls.__init__ = __init__  # type: ignore[misc]
    return register(reg_name)(cls)


for _ds in ("digits", "breast_cancer"):
    _alias(SklearnLogReg, _ds, f"{_ds}_logreg")
    _alias(SklearnMLP, _ds, f"{_ds}_mlp")
