"""Batched matrix products for stacked models: ``bmm(a, b, bias)``, ``a @ b + bias`` with gradients.

float32 CPU products go to oneDNN (the extension's ``precond::dnnl_bmm``, ``csrc/matmul.cpp``):
torch's own CPU ``bmm`` calls MKL, which on CPUs other than Intel's runs its AVX2 code, while
oneDNN takes the widest ISA the CPU has. On the AMD EPYC core of the development machine the
products of a batched ``digits_mlp`` or ``mnist1d_cnn`` step ran at 117-190 GFLOPS by oneDNN
against 56-89 by MKL (docs/experiments.md, "Batched network sweeps"). Everything else (float64,
other devices, a torch without oneDNN, the kernels disabled) is ``torch.bmm``/``torch.baddbmm``.
The backward is the same products: ``da = g b^T``, ``db = a^T g`` (transposed views, which oneDNN
reads without a copy), ``dbias = g`` summed to the bias's shape.

:func:`precond.problems.stacked` uses it for the stacked ``Linear`` layers and convolutions of
batched sweeps; it is not part of the optimizers' contract.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

__all__ = ["bmm", "dnnl_available"]


@functools.cache
def _ops() -> Any | None:
    from . import load

    ops = load()
    return ops if ops is not None and ops.dnnl_matmul_available() else None


def dnnl_available() -> bool:
    """Whether float32 CPU products run on oneDNN (the extension is built and this torch has oneDNN's matmul)."""
    return _ops() is not None


class _DnnlBmm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        ctx.bias_shape = None if bias is None else bias.shape
        return torch.ops.precond.dnnl_bmm(a, b, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        a, b = ctx.saved_tensors
        op = torch.ops.precond.dnnl_bmm
        da = op(g, b.transpose(1, 2)) if ctx.needs_input_grad[0] else None
        db = op(a.transpose(1, 2), g) if ctx.needs_input_grad[1] else None
        dbias = g.sum_to_size(ctx.bias_shape) if ctx.bias_shape is not None and ctx.needs_input_grad[2] else None
        return da, db, dbias


def bmm(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b`` (+ ``bias``, broadcast to ``(C, M, N)``) for ``a`` ``(C, M, K)``, ``b`` ``(C, K, N)``;
    by oneDNN for float32 CPU tensors where it is available, else by torch."""
    if (a.dtype == torch.float32 and b.dtype == torch.float32 and a.device.type == "cpu" and b.device.type == "cpu"
            and (bias is None or bias.dtype == torch.float32) and _ops() is not None):  # fmt: skip
        return _DnnlBmm.apply(a, b, bias)
    return torch.bmm(a, b) if bias is None else torch.baddbmm(bias, a, b)
