"""CIFAR-10 with the ResNet-20/32 of He et al. (2016) (seed 000's CV experiment), read offline
from the standard python-pickle batches in a user-given directory.

Data directory: the ``data_dir`` argument, else the env var ``PRECOND_CIFAR10_DIR``; it must
hold ``cifar-10-batches-py/`` (or be that folder) with ``data_batch_1`` .. ``data_batch_5`` and
``test_batch``: pickles of dicts with ``b"data"`` (uint8, (N, 3072), channel-major 32x32) and
``b"labels"`` (N ints in 0..9). Nothing is downloaded; when the files are missing the error
says what to fetch and where to put it. The last ``n_val`` (5000) training images are the
validation split. Inputs are normalized by the standard per-channel mean/std; training
batches get the paper's augmentation (4-pixel zero padding + random 32x32 crop + horizontal
flip), seeded. Meant for a GPU: batches are moved to the model's device in ``forward`` and
``evaluate``; CPU works for smoke tests.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ._common import ModuleProblem, generator
from ._data import find_data_dir
from .base import Batch
from .models import ResNetCIFAR
from .registry import register

ENV = "PRECOND_CIFAR10_DIR"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
HOWTO = ("download the CIFAR-10 python version, https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz "
         "(163 MB, md5 c58f30108f718f92721af3b95e74349a), unpack it with `tar xzf cifar-10-python.tar.gz` "
         "and pass the folder that contains `cifar-10-batches-py/` as data_dir=... or set "
         f"{ENV}=/that/folder")
_CACHE: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}


def find_cifar10(data_dir: str | os.PathLike | None) -> Path:
    """The folder holding the batches: ``data_dir``/``$PRECOND_CIFAR10_DIR`` or its ``cifar-10-batches-py/``."""
    return find_data_dir("cifar10", data_dir, ENV, TRAIN_FILES + [TEST_FILE], HOWTO, inside="cifar-10-batches-py").path


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickle batch -> ``(uint8 (N, 3, 32, 32), int64 (N,))``, validated."""
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise ValueError(f"cifar10: cannot unpickle {path}: {exc}; re-download it ({HOWTO})") from None
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise ValueError(f"cifar10: {path} is not a CIFAR-10 batch (a dict with b'data' and b'labels')")
    x, y = np.asarray(d[b"data"]), np.asarray(d[b"labels"], dtype=np.int64)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        raise ValueError(f"cifar10: {path}: data must be uint8 of shape (N, 3072), got {x.dtype} {x.shape}")
    if y.shape != (x.shape[0],) or (len(y) and (y.min() < 0 or y.max() > 9)):
        raise ValueError(f"cifar10: {path}: labels must be {x.shape[0]} ints in 0..9, got shape {y.shape}")
    return x.reshape(-1, 3, 32, 32), y


def load_cifar10(data_dir: str | os.PathLike | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (x, y), "test": (x, y)}`` as uint8 NCHW and int64, cached per process."""
    d = find_cifar10(data_dir)
    key = str(d.resolve())
    if key not in _CACHE:
        parts = [read_batch(d / f) for f in TRAIN_FILES]
        xtr, ytr = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        _CACHE[key] = {"train": (xtr, ytr), "test": read_batch(d / TEST_FILE)}
    return _CACHE[key]


class _CIFAR10ResNet(ModuleProblem):
    kind = "classification"
    source = "seed 000 (CIFAR-10, ResNet-20/32); He et al. 2016"
    loss_type = "cross_entropy"
    needs_data = f"CIFAR-10 python batches (data_dir or ${ENV})"
    val_metric = "val_acc"
    test_metric = "test_acc"
    higher_is_better = True
    depth = 20

    def __init__(self, data_dir: str | None = None, batch_size: int = 128, n_val: int = 5000, augment: bool = True) -> None:
        self.data_dir, self.batch_size, self.n_val, self.augment = data_dir, int(batch_size), int(n_val), bool(augment)
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def data(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        if self._data is None:
            raw = load_cifar10(self.data_dir)
            xtr, ytr = raw["train"]
            if not 0 <= self.n_val < len(xtr):
                raise ValueError(f"{self.name}: n_val must be in 0..{len(xtr) - 1}, got {self.n_val}")
            mean = torch.tensor(MEAN).view(1, 3, 1, 1)
            std = torch.tensor(STD).view(1, 3, 1, 1)
            norm = lambda x: (torch.from_numpy(x).float() / 255 - mean) / std
            cut = len(xtr) - self.n_val
            self._data = {"train": (norm(xtr[:cut]), torch.from_numpy(ytr[:cut])),
                          "val": (norm(xtr[cut:]), torch.from_numpy(ytr[cut:])),
                          "test": (norm(raw["test"][0]), torch.from_numpy(raw["test"][1]))}
        return self._data

    def make_model(self) -> nn.Module:
        return ResNetCIFAR(self.depth)

    @property
    def size(self) -> int:  # without building the network for the two registered depths
        return {20: 269722, 32: 464154}.get(self.depth) or super().size

    def batches(self, seed: int) -> Iterator[Batch]:
        X, y = self.data["train"]
        g = generator(seed)
        n, B, t = len(X), min(self.batch_size, len(X)), 0
        while True:
            perm = torch.randperm(n, generator=g)
            for i in range(0, n - B + 1, B):
                idx = perm[i:i + B]
                x = X[idx]
                if self.augment:
                    x = nn.functional.pad(x, (4, 4, 4, 4))
                    dy, dx = torch.randint(0, 9, (2, B), generator=g)  # a random 32x32 crop per image
                    r = torch.arange(32)
                    rows, cols = (dy[:, None] + r)[:, :, None], (dx[:, None] + r)[:, None, :]
                    x = x[torch.arange(B)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
                    flip = torch.rand(B, generator=g) < 0.5
                    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
                t += 1
                yield Batch(x, y[idx], t)

    def forward(self, model: nn.Module, batch: Batch):
        dev = next(model.parameters()).device
        return model(batch.inputs.to(dev, non_blocking=True)), batch.targets.to(dev, non_blocking=True)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        was = model.training
        model.eval()
        dev = next(model.parameters()).device
        out = {}
        try:
            for split in ("val", "test"):
                X, y = self.data[split]
                if len(X) == 0:
                    continue
                loss, correct = 0.0, 0
                for i in range(0, len(X), 1000):
                    o = model(X[i:i + 1000].to(dev))
                    yy = y[i:i + 1000].to(dev)
                    loss += float(nn.functional.cross_entropy(o, yy, reduction="sum"))
                    correct += int((o.argmax(1) == yy).sum())
                out[f"{split}_loss"], out[f"{split}_acc"] = loss / len(X), correct / len(X)
        finally:
            model.train(was)
        return out


@register("cifar10_resnet20")
class CIFAR10ResNet20(_CIFAR10ResNet):
    """ResNet-20 (0.27M parameters) on CIFAR-10. Args: ``data_dir`` (or $PRECOND_CIFAR10_DIR),
    ``batch_size`` (128), ``n_val`` (5000), ``augment`` (True)."""

    name = "cifar10_resnet20"
    depth = 20


@register("cifar10_resnet32")
class CIFAR10ResNet32(_CIFAR10ResNet):
    """ResNet-32 (0.46M parameters) on CIFAR-10; arguments as ``cifar10_resnet20``."""

    name = "cifar10_resnet32"
    depth = 32
