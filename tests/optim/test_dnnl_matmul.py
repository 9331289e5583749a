"""The batched float32 products of stacked models by oneDNN (optim/kernels/matmul.py, csrc/matmul.cpp)
against torch's own bmm/baddbmm: values and gradients to float32 rounding, every layout the stacked
layers pass (contiguous, transposed views, strided slices), the bias broadcast both ways, float64
and other inputs falling back to torch exactly, and the op's errors."""

from __future__ import annotations

import pytest
import torch

from precond.optim.kernels.matmul import bmm, dnnl_available

needs_dnnl = pytest.mark.skipif(not dnnl_available(), reason="the kernels or this torch's oneDNN matmul are unavailable")


def _layouts(C: int, M: int, K: int, N: int):
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    yield "contiguous", r(C, M, K), r(C, K, N)
    yield "transposed", r(C, K, M).transpose(1, 2), r(C, N, K).transpose(1, 2)
    yield "strided", r(C, 2 * M, K)[:, ::2], r(C, K, N + 3)[:, :, :N]


@needs_dnnl
@pytest.mark.parametrize("bias_shape", [None, "rows", "cols", "full"])
@pytest.mark.parametrize("shape", [(3, 5, 7, 4), (35, 64, 64, 10), (5, 448, 64, 64)])
def test_values_and_gradients_are_torchs(shape, bias_shape):
    C, M, K, N = shape
    for name, a0, b0 in _layouts(C, M, K, N):
        bias0 = {None: None, "rows": torch.randn(C, M, 1), "cols": torch.randn(C, 1, N), "full": torch.randn(C, M, N)}[bias_shape]
        leaves = [t.detach().clone().requires_grad_(True) for t in (a0, b0)] + ([] if bias0 is None else [bias0.clone().requires_grad_(True)])
        mine = [t.detach().clone().requires_grad_(True) for t in leaves]
        want = torch.bmm(*leaves[:2]) if bias0 is None else torch.baddbmm(leaves[2], *leaves[:2])
        got = bmm(*mine[:2], None if bias0 is None else mine[2])
        scale = float(want.detach().abs().max())
        assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-5, atol=1e-5 * scale), name
        w = torch.randn_like(want)
        (want * w).sum().backward()
        (got * w).sum().backward()
        for x, y in zip(mine, leaves):
            assert torch.allclose(x.grad, y.grad, rtol=1e-4, atol=1e-5 * float(y.grad.abs().max())), name
        if bias0 is not None:
            assert torch.equal(mine[2].detach(), leaves[2].detach())  # the caller's bias is never written


def test_float64_and_mixed_inputs_are_torchs_exactly():
    a, b, c = torch.randn(4, 3, 5, dtype=torch.float64), torch.randn(4, 5, 2, dtype=torch.float64), torch.randn(4, 3, 1, dtype=torch.float64)
    assert torch.equal(bmm(a, b), torch.bmm(a, b)) and torch.equal(bmm(a, b, c), torch.baddbmm(c, a, b))
    af, bf = a.float(), b.float()  # a float64 bias with float32 factors: torch's (which refuses the mix)
    with pytest.raises(RuntimeError):
        torch.baddbmm(c, af, bf)
    with pytest.raises(RuntimeError):
        bmm(af, bf, c)


@needs_dnnl
def test_the_op_refuses_what_it_cannot_do():
    op = torch.ops.precond.dnnl_bmm
    with pytest.raises(RuntimeError, match="float32 CPU tensors only"):
        op(torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 4, 5, dtype=torch.float64), None)
    with pytest.raises(RuntimeError, match=r"needs a \(C, M, K\) and b \(C, K, N\)"):
        op(torch.randn(2, 3, 4), torch.randn(2, 5, 5), None)
    with pytest.raises(RuntimeError, match="a float32 bias only"):
        op(torch.randn(2, 3, 4), torch.randn(2, 4, 5), torch.zeros(2, 3, 1, dtype=torch.float64))
