"""``beale_far``: Beale's function from (-2.5, -2.5) (issue 15's C9 start)."""

from __future__ import annotations

import torch

import precond.problems as P


def test_start_value_gradient_and_minimum():
    p = P.get("beale_far", dtype="float64")
    x0 = p.initial_point(0)
    assert x0.tolist() == [-2.5, -2.5]
    # f(-2.5, -2.5) by hand: x y = 6.25, x y^2 = -15.625, x y^3 = 39.0625
    f0 = (1.5 + 2.5 + 6.25) ** 2 + (2.25 + 2.5 - 15.625) ** 2 + (2.625 + 2.5 + 39.0625) ** 2
    assert float(p.value(x0)) == f0
    x = x0.clone().requires_grad_(True)
    p.value(x).backward()
    assert torch.allclose(p.grad(x0), x.grad, rtol=1e-12)
    assert float(p.value(p.minimizer)) == 0.0 and p.minimizer.tolist() == [3.0, 0.5]
    assert (p.initial_point(1) - x0).norm() > 0  # other seeds perturb the start
