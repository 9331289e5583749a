"""A base for supervised problems on in-memory arrays (train/val/test splits) with minibatches."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ._common import ModuleProblem, minibatches, tensor_batches
from .base import Batch


class ArrayProblem(ModuleProblem):
    """Supervised problem on tensors ``self.data[split] = (X, y)`` for split in train/val/test.

    Subclasses call ``self._set_data(...)`` lazily through ``_load()`` and give ``make_model()``.
    ``loss_type`` "cross_entropy" (integer class targets), "logistic" (one logit, 0/1 targets)
    or "mse". Metrics: ``{split}_loss`` and, for classification, ``{split}_acc``.
    """

    val_metric = "val_loss"
    test_metric = "test_loss"
    stackable = True
    batch_size: int | None = 64
    eval_batch: int = 4096

    def __init__(self) -> None:
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    # ---- data -----------------------------------------------------------------------------
    def _load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Return the splits; called once (lazily)."""
        raise NotImplementedError

    @property
    def data(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        if self._data is None:
            self._data = self._load()
        return self._data

    # ---- Problem ------------------------------------------------------------------------------
    def batches(self, seed: int) -> Iterator[Batch]:
        X, y = self.data["train"]
        return tensor_batches(X, y, self.batch_size, seed)

    def stacked_batches(self, seeds: Sequence[int]) -> Iterator[Batch]:
        """:meth:`Problem.stacked_batches` by one gather of the training arrays per step instead of
        S (unless a subclass has a ``batches`` of its own): the seeds' indices of
        :func:`~._common.minibatches`, as ``batches`` draws them."""
        if type(self).batches is not ArrayProblem.batches:
            yield from super().stacked_batches(seeds)
            return
        X, y = self.data["train"]
        draws = [minibatches(len(X), self.batch_size, s) for s in seeds]
        while True:
            drawn = [next(g) for g in draws]
            t, first = drawn[0]
            if first is None:
                yield Batch(X.unsqueeze(0), y.unsqueeze(0), t)
                continue
            i = torch.as_tensor(np.concatenate([idx for _, idx in drawn]))
            yield Batch(X[i].view(len(seeds), -1, *X.shape[1:]), y[i].view(len(seeds), -1, *y.shape[1:]), t)

    def forward(self, model: nn.Module, batch: Batch):
        out = model(batch.inputs)
        if self.loss_type == "logistic" and out.dim() > 1 and out.shape[-1] == 1:
            out = out.squeeze(-1)
        return out, batch.targets

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        was = model.training
        model.eval()
        out: dict[str, float] = {}
        try:
            for split, (X, y) in self.data.items():
                tot, correct, n = 0.0, 0, len(X)
                for i in range(0, n, self.eval_batch):
                    b = Batch(X[i:i + self.eval_batch], y[i:i + self.eval_batch])
                    o, tgt = self.forward(model, b)
                    tot += float(self.loss_from_outputs(o, tgt)) * len(b.inputs)
                    if self.loss_type == "cross_entropy":
                        correct += int((o.argmax(-1) == tgt).sum())
                    elif self.loss_type == "logistic":
                        correct += int(((o > 0).to(tgt.dtype) == tgt).sum())
                out[f"{split}_loss"] = tot / n
                if self.loss_type in ("cross_entropy", "logistic"):
                    out[f"{split}_acc"] = correct / n
        finally:
            model.train(was)
        return out


def check_batch_size(batch_size: int | None, where: str) -> int | None:
    if batch_size is None:
        return None
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"{where}: batch_size must be a positive int or None (full batch), got {batch_size!r}")
    return int(batch_size)
