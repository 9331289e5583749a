"""Exact Hessian / GGN quantities against central finite differences."""

from __future__ import annotations

import pytest
import torch

from precond.curvature import exact
from precond.curvature.losses import loss_from_outputs, output_hessian
from precond.curvature.params import as_function, flat_params, flatten, set_flat_params, unflatten

from ._helpers import fd_jacobian, problem


def test_flatten_roundtrip():
    model, _, _ = problem("mse")
    x = flat_params(model)
    params = list(model.parameters())
    assert x.numel() == sum(p.numel() for p in params)
    back = unflatten(x, params)
    for b, p in zip(back, params):
        assert torch.equal(b, p.detach())
    set_flat_params(model, x * 2)
    assert torch.allclose(flat_params(model), 2 * x)
    with pytest.raises(ValueError, match="unflatten"):
        unflatten(x[:-1], params)


def test_hessian_matches_finite_differences(loss_type):
    model, loss_fn, _ = problem(loss_type)
    f, x0 = as_function(model, loss_fn)
    grad = lambda x: torch.func.grad(f)(x)  # noqa: E731
    h_fd = fd_jacobian(grad, x0)
    h = exact.hessian(model, loss_fn)
    assert torch.allclose(h, 0.5 * (h_fd + h_fd.T), atol=1e-7, rtol=1e-6)
    assert torch.allclose(exact.hessian_diagonal(model, loss_fn), torch.diagonal(h), atol=1e-12)
    # the HVP path (double backward) and the per-coordinate path agree with the dense one
    assert torch.allclose(exact.hessian_diagonal(model, loss_fn, max_dense=0), torch.diagonal(h), atol=1e-10)
    v = torch.randn(x0.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(exact.hvp(model, loss_fn, v), h @ v, atol=1e-10)
    # the model's parameters are untouched and .grad is never written
    assert torch.equal(flat_params(model), x0)
    assert all(p.grad is None for p in model.parameters())


def test_ggn_matches_finite_differences(loss_type):
    model, _, outputs_fn = problem(loss_type)
    f, x0 = as_function(model, lambda m: outputs_fn(m)[0])
    out = f(x0)
    j_fd = fd_jacobian(f, x0)  # (numel(out), d)
    targets = outputs_fn(model)[1]
    # output-space loss Hessian by finite differences of its gradient, independent of output_hessian
    lo = lambda o: loss_from_outputs(loss_type, o.reshape(out.shape), targets)  # noqa: E731
    go = lambda o: torch.func.grad(lo)(o)  # noqa: E731
    h_out_fd = fd_jacobian(go, out.detach().reshape(-1))
    g_fd = j_fd.T @ h_out_fd @ j_fd
    g = exact.ggn(model, outputs_fn, loss_type)
    assert torch.allclose(g, 0.5 * (g_fd + g_fd.T), atol=1e-7, rtol=1e-5)
    assert torch.allclose(exact.ggn_diagonal(model, outputs_fn, loss_type), torch.diagonal(g), atol=1e-12)
    v = torch.randn(x0.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(exact.ggn_vector_product(model, outputs_fn, loss_type, v), g @ v, atol=1e-10)
    # GGN is PSD
    assert torch.linalg.eigvalsh(g).min() > -1e-10


def test_ggn_equals_hessian_for_linear_models(loss_type):
    """With outputs linear in the parameters the second-order term vanishes: G = H."""
    torch.manual_seed(0)
    x = torch.randn(7, 3, dtype=torch.float64)
    k = 1 if loss_type == "logistic" else 3
    model = torch.nn.Linear(3, k).double()
    y = {"mse": torch.randn(7, 3, dtype=torch.float64), "logistic": torch.randint(0, 2, (7,)).double(), "cross_entropy": torch.randint(0, 3, (7,))}[loss_type]
    outputs_fn = lambda m: ((m(x).squeeze(-1) if loss_type == "logistic" else m(x)), y)  # noqa: E731
    loss_fn = lambda m: loss_from_outputs(loss_type, *outputs_fn(m))  # noqa: E731
    assert torch.allclose(exact.ggn(model, outputs_fn, loss_type), exact.hessian(model, loss_fn), atol=1e-12)


def test_output_hessian_values():
    o = torch.tensor([[0.3, -1.0, 2.0], [0.0, 0.5, -0.5]], dtype=torch.float64)
    p = torch.softmax(o, -1)
    h = output_hessian("cross_entropy", o)
    assert torch.allclose(h[1], (torch.diag(p[1]) - torch.outer(p[1], p[1])) / 2)
    s = torch.sigmoid(torch.tensor([0.2, -3.0], dtype=torch.float64))
    assert torch.allclose(output_hessian("logistic", torch.tensor([0.2, -3.0], dtype=torch.float64)).reshape(-1), s * (1 - s) / 2)
    assert torch.allclose(output_hessian("mse", o), torch.eye(3, dtype=torch.float64).expand(2, 3, 3) / 2)
    with pytest.raises(ValueError, match="loss_type"):
        output_hessian("hinge", o)


def test_flatten_empty():
    with pytest.raises(ValueError, match="no tensors"):
        flatten([])
