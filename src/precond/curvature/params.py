"""Flat views of a model's trainable parameters, and functions of them.

All of :mod:`precond.curvature` works over the trainable parameters of an ``nn.Module``
(``requires_grad``, in ``named_parameters()`` order) flattened into one vector of size d.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call


def trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` for every parameter that requires grad, in ``named_parameters()`` order."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate the tensors, each flattened, into one vector."""
    if len(tensors) == 0:
        raise ValueError("flatten: no tensors (the model has no trainable parameters)")
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Split ``vector`` into views shaped like ``like`` (the inverse of :func:`flatten`)."""
    sizes = [t.numel() for t in like]
    if vector.dim() != 1 or vector.numel() != sum(sizes):
        raise ValueError(f"unflatten: expected a vector of {sum(sizes)} entries, got shape {tuple(vector.shape)}")
    return [chunk.view(t.shape) for chunk, t in zip(torch.split(vector, sizes), like)]


def flat_params(model: nn.Module) -> torch.Tensor:
    """A detached copy of the trainable parameters as one vector."""
    return flatten([p.detach() for _, p in trainable(model)]).clone()


def flat_grads(model: nn.Module) -> torch.Tensor:
    """The trainable parameters' ``.grad`` as one vector (zeros where ``grad`` is ``None``)."""
    return flatten([torch.zeros_like(p) if p.grad is None else p.grad.detach() for _, p in trainable(model)]).clone()


@torch.no_grad()
def set_flat_params(model: nn.Module, vector: torch.Tensor) -> None:
    """Copy ``vector`` into the trainable parameters."""
    params = [p for _, p in trainable(model)]
    for p, v in zip(params, unflatten(vector, params)):
        p.copy_(v)


class _Bound(nn.Module):
    """``forward()`` = ``fn(model)``: lets ``functional_call`` swap the model's parameters."""

    def __init__(self, model: nn.Module, fn: Callable[[nn.Module], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self._fn = fn

    def forward(self) -> torch.Tensor:
        return self._fn(self.model)


def as_function(model: nn.Module, fn: Callable[[nn.Module], torch.Tensor]) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """``(f, x0)``: ``f(x)`` is ``fn(model)`` with the trainable parameters set to the flat ``x``.

    ``f`` is a pure function (``torch.func.functional_call``), so ``torch.func`` transforms
    (``hessian``, ``jacrev``, ``jvp``, ``vjp``, ``vmap``) apply to it; ``x0`` is the current
    point. Buffers (batch-norm statistics) are used as they are: call ``model.eval()`` for
    a deterministic function.
    """
    named = trainable(model)
    names = ["model." + n for n, _ in named]
    like = [p for _, p in named]
    bound = _Bound(model, fn)

    def f(x: torch.Tensor) -> torch.Tensor:
        return functional_call(bound, dict(zip(names, unflatten(x, like))), (), strict=False)

    return f, flat_params(model)
