"""CUDA: the ``foreach`` and ``fused`` paths on GPU tensors equal the loop (skipped without CUDA).

UNTESTED here (no GPU on the development machine). On CUDA, ``fused=True`` runs torch's
``_foreach_*`` path (the C++ kernels are CPU-only), so this checks that routing, for every
option set of :mod:`precond.optim.cases`.
"""

from __future__ import annotations

import pytest
import torch

from precond.optim.cases import cases

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
@pytest.mark.parametrize("impl", ["foreach", "fused"])
def test_cuda_fast_paths_equal_loop(case, impl):
    def run(**flags):
        g = torch.Generator().manual_seed(0)
        ps = [torch.randn(s, generator=g, dtype=torch.float64).cuda().requires_grad_() for s in [(7,), (30, 12)]]
        opt = case.make(ps, **flags)
        for k in range(20):
            if hasattr(opt, "update_curvature") and k % 5 == 0:  # a positive diagonal every 5 steps
                opt.update_curvature([torch.rand(p.shape, generator=g, dtype=torch.float64).cuda() + 0.1 for p in ps])
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64).cuda()
            opt.step()
        return ps

    ref = run(foreach=False, fused=False)
    out = run(**{impl: True})
    for p, q in zip(out, ref):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)
