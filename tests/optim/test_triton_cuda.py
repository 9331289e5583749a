"""CUDA: the Triton kernels on a GPU (issue 18). Skipped without CUDA or triton.

UNTESTED here: no GPU has been lent to this project's sessions so far; the same kernels are
checked on CPU under Triton's interpreter (``test_triton_kernels.py``). On a GPU these check
that ``fused=True`` takes the Triton path and equals the loop for every option set of the
Triton rules, that GradScaler's skip and unscale act on the device, and that a step (with the
default non-finite check) captured in a CUDA graph replays as the eager steps do.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from precond.optim import AGD, Adam, _dispatch
from precond.optim.cases import TABLE

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton"),
]

TRITON = {"AGD", "Adam", "AdamW", "AdaBound", "RMSProp", "AdaGrad", "Sophia", "GaussNewtonDiag", "AdaGradNorm"}
SHAPES = [(), (7,), (37, 5), (3000,), (130, 77)]


def _params(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64).to("cuda", dtype).requires_grad_() for s in SHAPES]


def _run(case, dtype, steps=20, **flags):
    ps = _params(dtype)
    opt = case.make(case.groups(ps[:2], ps[2:]), **flags)
    g = torch.Generator().manual_seed(1)
    for k in range(steps):
        if hasattr(opt, "update_curvature") and k % 3 == 0:
            opt.update_curvature([(torch.rand(p.shape, generator=g, dtype=torch.float64) + 0.1).to("cuda", dtype) for p in ps])
        for p in ps:
            p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64).to("cuda", dtype)
        opt.step()
    return opt, ps


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("case", [c for c in TABLE if c.cls.__name__ in TRITON], ids=lambda c: c.name)
def test_cuda_triton_equals_loop(case, dtype, rtol):
    ref, rps = _run(case, dtype, foreach=False, fused=False)
    opt, ps = _run(case, dtype, fused=True)
    assert all(_dispatch.resolve_impl(opt, g, g["params"]) == "triton" for g in opt.param_groups)
    for p, q in zip(ps, rps):
        scale = q.detach().double().abs().max().item()
        torch.testing.assert_close(p.detach().double(), q.detach().double(), rtol=rtol, atol=rtol * max(scale, 1e-30))
        assert opt.state[p]["step"].device.type == "cuda"


def test_cuda_default_stays_foreach():
    ps = _params(torch.float32)
    opt = AGD(ps)
    assert _dispatch.resolve_impl(opt, opt.param_groups[0], ps) == "foreach"


@pytest.mark.parametrize("unscale", [False, True], ids=["kernel-unscale", "user-unscale"])
def test_cuda_grad_scaler(unscale):
    def go(**flags):
        ps = _params(torch.float32)
        opt = Adam(ps, lr=1e-2, amsgrad=True, **flags)
        scaler = torch.amp.GradScaler("cuda", init_scale=2.0**10, growth_interval=2)
        for k in range(6):
            g = torch.Generator().manual_seed(k)
            loss = sum((p * torch.randn(p.shape, generator=g).cuda()).sum() for p in ps)
            opt.zero_grad()
            scaler.scale(loss).backward()
            if k == 3:
                ps[2].grad.view(-1)[0] = float("inf")
            if unscale:
                scaler.unscale_(opt)
            scaler.step(opt)
            scaler.update()
        return opt, ps

    ref, rps = go(foreach=False, fused=False)
    opt, ps = go(fused=True)
    assert opt._step_supports_amp_scaling
    for p, q in zip(ps, rps):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
        assert float(opt.state[p]["step"]) == float(ref.state[q]["step"]) == 5.0


@pytest.mark.parametrize("policy", ["raise", "propagate"])
def test_cuda_graph_capture(policy):
    """Three eager warm-up steps, then one step captured and replayed 5 times with new gradients
    copied into the static ones: equal to 8 eager steps (the default check included)."""
    def grads(k, ps):
        g = torch.Generator().manual_seed(100 + k)
        return [torch.randn(p.shape, generator=g).cuda() for p in ps]

    eager_ps = _params(torch.float32)
    eager = AGD(eager_ps, lr=1e-2, amsgrad=True, fused=True, nan_policy=policy)
    for k in range(8):
        for p, g in zip(eager_ps, grads(k, eager_ps)):
            p.grad = g
        eager.step()

    ps = _params(torch.float32)
    opt = AGD(ps, lr=1e-2, amsgrad=True, fused=True, nan_policy=policy)
    for p in ps:
        p.grad = torch.zeros_like(p)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for k in range(3):
            for p, g in zip(ps, grads(k, ps)):
                p.grad.copy_(g)
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        opt.step()
    for k in range(3, 8):
        for p, g in zip(ps, grads(k, ps)):
            p.grad.copy_(g)
        graph.replay()
    torch.cuda.synchronize()
    for p, q in zip(ps, eager_ps):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
        assert float(opt.state[p]["step"]) == 8.0
