"""Linear regression (Gaussian design, block covariance, minibatch noise) and logistic regression."""

import numpy as np
import pytest
import torch

import precond.problems as P


def test_linear_regression_full_batch_is_exact_population_loss():
    p = P.get("linear_regression", dim=6, condition_number=50.0, basis="random", dtype="float64")
    m, b = p.model(1), next(p.batches(0))
    torch.testing.assert_close(p.loss(m, b), p.value(m.x))
    H = torch.autograd.functional.hessian(lambda w: p.value(w), torch.zeros(6, dtype=torch.float64))
    torch.testing.assert_close(H, p.hessian())
    assert sorted(np.linalg.eigvalsh(p.hessian().numpy())) == pytest.approx(sorted(50.0 ** (-np.arange(6) / 5)))
    assert float(p.value(p.minimizer)) == p.optimum == 0.0
    assert p.vectorizable


def test_block_covariance_diagonal_uninformative():
    p = P.get("linear_regression", block_sizes=[2, 2, 2], block_rhos=[0.9, 0.5, 0.0], dtype="float64")
    S = p.hessian().numpy()
    np.testing.assert_allclose(np.diag(S), 1.0)  # the GN diagonal is all ones
    np.testing.assert_allclose(sorted(np.linalg.eigvalsh(S)), sorted([0.1, 1.9, 0.5, 1.5, 1.0, 1.0]), atol=1e-12)
    assert p.dim == 6
    with pytest.raises(ValueError, match="block_rhos"):
        P.get("linear_regression", block_sizes=[2, 2])


def test_linear_regression_minibatch_gradient_is_unbiased():
    p = P.get("linear_regression", dim=4, basis="random", batch_size=1, noise_std=0.5, dtype="float64")
    assert not p.vectorizable and p.optimum == pytest.approx(0.125)
    m = p.model(2)
    it = p.batches(0)
    b = next(it)
    assert b.inputs.shape == (1, 4) and b.targets.shape == (1,)
    w = m.x.detach()
    for _ in range(3):  # the per-sample gradient is x (x^T w - y)
        b = next(it)
        m.zero_grad()
        p.loss(m, b).backward()
        torch.testing.assert_close(m.x.grad, b.inputs[0] * (b.inputs[0] @ w - b.targets[0]))
    n = 20000
    bs = [next(it) for _ in range(n)]
    X = torch.cat([b.inputs for b in bs])
    y = torch.cat([b.targets for b in bs])
    g = X.T @ (X @ w - y)
    exact = p.hessian() @ (w - p.minimizer)
    # per-sample gradient std is O(|x| |residual|); tolerance ~ 5 sigma / sqrt(n)
    assert float((g / n - exact).abs().max()) < 0.15
    # sample covariance of the design matches Sigma
    torch.testing.assert_close(X.T @ X / len(X), p.hessian(), atol=0.06, rtol=0)


def test_logistic_regression_hessian_and_optimum():
    p = P.get("logistic_regression", dim=8, n_train=500, batch_size=None, dtype="float64")
    w = p.minimizer
    x = w.clone().requires_grad_()
    (g,) = torch.autograd.grad(p.value(x), x)
    assert float(g.abs().max()) < 1e-10
    pt = torch.randn(8, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.functional.hessian(lambda v: p.value(v), pt), p.hessian(pt))
    m = p.model(0)
    torch.testing.assert_close(p.loss(m, next(p.batches(0))), p.value(m.x))
    var = np.var(p.data["train"][0].numpy(), axis=0)
    assert var[0] / var[-1] > 20  # anisotropic features (variances i^-2)
    assert p.optimum < float(p.value(torch.zeros(8, dtype=torch.float64)))
