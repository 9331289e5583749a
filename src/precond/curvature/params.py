"""Flat views of a model's trainable parameters, and functions of them.

All of :mod:`precond.curvature` works over the trainable parameters of an ``nn.Module``
(``requires_grad``, in ``named_parameters()`` order) flattened into one vector of size d.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence, TypeVar

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm

F = TypeVar("F", bound=Callable)


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


@contextmanager
def preserved_state(model: nn.Module) -> Iterator[None]:
    """Run curvature code on ``model`` and leave its buffers and train/eval modes as they were.

    **BatchNorm in train mode** means what the training forward computes: the loss with the
    *batch* statistics, as a function of the parameters (the curvature of the loss the optimizer
    sees in train mode). Inside the block every ``_BatchNorm`` in train mode with running
    statistics gets ``track_running_stats = False``, so it normalizes with the batch statistics
    and updates nothing (the patch ``torch.func.replace_all_batch_norm_modules_`` applies, here
    undone on exit). In eval mode the running statistics are constants of the loss.

    On exit (also on an error) the flags and every module's ``training`` are restored, and every
    buffer is the same tensor object with the same values: one the block changed in place is
    copied back (one left unchanged is not written, so graphs that saved it stay valid).
    """
    saved = [(mod, name, buf, buf.detach().clone()) for mod in model.modules() for name, buf in mod._buffers.items() if buf is not None]
    modes = [(mod, mod.training) for mod in model.modules()]
    patched = [mod for mod in model.modules() if isinstance(mod, _BatchNorm) and mod.training and mod.track_running_stats]
    for mod in patched:
        mod.track_running_stats = False
    try:
        yield
    finally:
        for mod in patched:
            mod.track_running_stats = True
        for mod, training in modes:
            mod.training = training
        with torch.no_grad():
            for mod, name, buf, copy in saved:
                mod._buffers[name] = buf
                if not torch.equal(buf, copy):
                    buf.copy_(copy)


def preserving_state(fn: F) -> F:
    """Decorator: ``fn(model, ...)`` runs inside :func:`preserved_state` of its first argument."""

    @functools.wraps(fn)
    def wrapper(model: nn.Module, *args, **kwargs):
        with preserved_state(model):
            return fn(model, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


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
    point. Buffers (batch-norm statistics) are used as they are; run ``f`` inside
    :func:`preserved_state` so that a BatchNorm in train mode uses batch statistics without
    updating its running ones (what every function of :mod:`precond.curvature` does).
    """
    named = trainable(model)
    names = ["model." + n for n, _ in named]
    like = [p for _, p in named]
    bound = _Bound(model, fn)

    def f(x: torch.Tensor) -> torch.Tensor:
        return functional_call(bound, dict(zip(names, unflatten(x, like))), (), strict=False)

    return f, flat_params(model)
