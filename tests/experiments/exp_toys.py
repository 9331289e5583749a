"""Tiny problems for the experiments tests (named in specs as ``exp_toys:<Class>``)."""

from __future__ import annotations

import itertools
import math
import os
import time

import torch
from torch import nn

from precond.problems.base import Batch, Problem


class _Point(nn.Module):
    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        self.x = nn.Parameter(x.clone())


class Quad(Problem):
    """f(x) = 0.5 * sum_i h_i x_i^2 with h_i = scale**(i/(d-1)); x0 ~ N(0, I) by seed."""

    name = "toy-quad"
    kind = "quadratic"
    vectorizable = True
    val_metric = "val_loss"
    test_metric = "test_loss"
    optimum = 0.0

    def __init__(self, d: int = 4, scale: float = 10.0) -> None:
        self.d = d
        self.h = torch.tensor([scale ** (i / max(d - 1, 1)) for i in range(d)], dtype=torch.float64)

    def initial_point(self, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randn(self.d, generator=g, dtype=torch.float64)

    def model(self, seed: int) -> nn.Module:
        return _Point(self.initial_point(seed))

    def batches(self, seed: int):
        for t in itertools.count(1):
            yield Batch(t=t)

    def value(self, x: torch.Tensor, t: int | None = None) -> torch.Tensor:
        return 0.5 * (self.h.to(x.dtype) * x * x).sum(-1)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.value(model.x, batch.t)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        f = float(self.value(model.x.detach()))
        return {"loss": f, "val_loss": f, "test_loss": f + 1.0, "xnorm": float(model.x.detach().norm())}


class Rosen(Quad):
    """The 2-D Rosenbrock function from a seeded start near (-1.5, 2)."""

    name = "toy-rosen"

    def __init__(self) -> None:
        self.d = 2

    def initial_point(self, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.tensor([-1.5, 2.0], dtype=torch.float64) + 0.1 * torch.randn(2, generator=g, dtype=torch.float64)

    def value(self, x: torch.Tensor, t: int | None = None) -> torch.Tensor:
        return (1 - x[..., 0]) ** 2 + 100 * (x[..., 1] - x[..., 0] ** 2) ** 2


class SlowQuad(Quad):
    """Not vectorizable, and each step sleeps (for the kill-and-resume test)."""

    vectorizable = False

    def __init__(self, d: int = 2, sleep: float = 0.01) -> None:
        super().__init__(d)
        self.sleep = sleep

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        time.sleep(self.sleep)
        return super().loss(model, batch)


class CountingQuad(Quad):
    """Appends a line to $EXP_TOYS_COUNT each time a run starts (to count recomputations)."""

    vectorizable = False

    def __init__(self, d: int = 2, sleep: float = 0.0) -> None:
        super().__init__(d)
        self.sleep = sleep

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        if self.sleep:
            time.sleep(self.sleep)
        return super().loss(model, batch)

    def model(self, seed: int) -> nn.Module:
        path = os.environ.get("EXP_TOYS_COUNT")
        if path:
            with open(path, "a") as fh:
                fh.write(f"{seed}\n")
        return super().model(seed)


class _NanGradFn(torch.autograd.Function):
    """Zero forward, NaN gradient."""

    @staticmethod
    def forward(ctx, x):
        return torch.zeros(x.shape[:-1], dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        return torch.full(tuple(g.shape) + (2,), float("nan"), dtype=g.dtype)


class NanGrad(Quad):
    """The quadratic (d = 2) with a finite loss but a NaN gradient from step 4 on."""

    def __init__(self) -> None:
        super().__init__(d=2)

    def value(self, x: torch.Tensor, t: int | None = None) -> torch.Tensor:
        f = super().value(x)
        if t is not None and t >= 4:
            f = f + _NanGradFn.apply(x)
        return f


class InterruptQuad(CountingQuad):
    """Raises KeyboardInterrupt (as Ctrl-C would) when a run of seed $EXP_TOYS_INTERRUPT_SEED starts."""

    def model(self, seed: int) -> nn.Module:
        if os.environ.get("EXP_TOYS_INTERRUPT_SEED") == str(seed):
            raise KeyboardInterrupt
        return super().model(seed)
