"""Stochastic diagonal estimators: means within confidence intervals of the exact diagonals
(the intervals and their failure probability: :mod:`._helpers`). Seeds are fixed, so a run is
deterministic; each test also checks that its interval is narrow enough to catch a wrong scale
(a test that can fail).
"""

from __future__ import annotations

import pytest
import torch

from precond.curvature import estimate_diagonal, exact, flatten, gnb_diagonal, gnb_samples, hutchinson_diagonal, hutchinson_samples

from ._helpers import clt_half_width, hutchinson_half_width, problem


@pytest.mark.parametrize("loss_type", ["mse", "logistic"])  # Hutchinson only sees HVPs; CE's are ~10x slower on CPU
def test_hutchinson_mean_within_bernstein_interval(loss_type):
    model, loss_fn, _ = problem(loss_type)
    h = exact.hessian(model, loss_fn)
    diag = torch.diagonal(h)
    n = 3000
    samples = hutchinson_samples(model, loss_fn, n, generator=torch.Generator().manual_seed(0))
    est = flatten(hutchinson_diagonal(model, loss_fn, n_samples=n, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(est, samples.mean(0))
    half = hutchinson_half_width(h, n)
    assert torch.all((est - diag).abs() <= half), ((est - diag).abs() / half).max()
    # the interval is informative: it would reject an estimator off by 50% on most coordinates
    big = diag.abs() > 1e-3 * diag.abs().max()
    assert (half[big] < 0.5 * diag.abs()[big]).float().mean() > 0.6
    # and the single-probe samples have the exact variance sum_{j!=i} H_ij^2 (20%: sd of the sample variance is ~5% here)
    var = (h - torch.diag(diag)).pow(2).sum(1)
    ok = var > 1e-6 * var.max()
    assert torch.allclose(samples.var(0)[ok], var[ok], rtol=0.2)


def test_hutchinson_exact_on_diagonal_hessian():
    """With a diagonal Hessian every probe gives the diagonal exactly."""
    x = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    model = torch.nn.Module()
    model.x = x
    a = torch.tensor([3.0, 0.1, 7.0], dtype=torch.float64)
    est = hutchinson_diagonal(model, lambda m: 0.5 * (a * m.x**2).sum(), n_samples=1, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(est[0], a, atol=1e-14)


def test_gnb_mean_within_confidence_interval(loss_type):
    model, _, outputs_fn = problem(loss_type)
    exact_diag = exact.ggn_diagonal(model, outputs_fn, loss_type)
    n = 4000
    samples = gnb_samples(model, outputs_fn, loss_type, n, generator=torch.Generator().manual_seed(2))
    mean, half = samples.mean(0), clt_half_width(samples)
    assert torch.all((mean - exact_diag).abs() <= half + 1e-12), ((mean - exact_diag).abs() / half).max()
    big = exact_diag > 1e-3 * exact_diag.max()
    assert (half[big] < 0.5 * exact_diag[big]).float().mean() > 0.8
    # gnb_diagonal with n_samples is the mean of the same draws
    avg = flatten(gnb_diagonal(model, outputs_fn, loss_type, n_samples=n, generator=torch.Generator().manual_seed(2)))
    assert torch.allclose(avg, mean, rtol=1e-10, atol=1e-14)


def test_gnb_scales_and_samples():
    model, _, outputs_fn = problem("cross_entropy", n=6)
    a = flatten(gnb_diagonal(model, outputs_fn, "cross_entropy", generator=torch.Generator().manual_seed(5)))
    b = flatten(gnb_diagonal(model, outputs_fn, "cross_entropy", scale="sophia", generator=torch.Generator().manual_seed(5)))
    assert torch.allclose(a, 6 * b)  # unbiased = N * g_hat^2, N = 6 rows
    # n_samples averages independent draws on the same outputs
    draws = gnb_samples(model, outputs_fn, "cross_entropy", 3, generator=torch.Generator().manual_seed(6))
    avg = flatten(gnb_diagonal(model, outputs_fn, "cross_entropy", n_samples=3, generator=torch.Generator().manual_seed(6)))
    assert torch.allclose(avg, draws.mean(0))
    assert not torch.allclose(draws[0], draws[1])
    with pytest.raises(ValueError, match="scale"):
        gnb_diagonal(model, outputs_fn, "cross_entropy", scale="raw")
    with pytest.raises(ValueError, match="n_samples"):
        gnb_diagonal(model, outputs_fn, "cross_entropy", n_samples=0)
    with pytest.raises(ValueError, match="loss_type"):
        gnb_diagonal(model, outputs_fn, "hinge")
    assert all(p.grad is None for p in model.parameters())


def test_estimate_diagonal_dispatch():
    model, loss_fn, outputs_fn = problem("mse")
    ggn = flatten(estimate_diagonal(model, "exact", outputs_fn=outputs_fn, loss_type="mse"))
    assert torch.allclose(ggn, exact.ggn_diagonal(model, outputs_fn, "mse"))
    hd = flatten(estimate_diagonal(model, "hessian", loss_fn=loss_fn))
    assert torch.allclose(hd, exact.hessian_diagonal(model, loss_fn))
    with pytest.raises(ValueError, match="outputs_fn"):
        estimate_diagonal(model, "gnb", loss_fn=loss_fn)
    with pytest.raises(ValueError, match="loss_fn"):
        estimate_diagonal(model, "hutchinson", outputs_fn=outputs_fn, loss_type="mse")
    with pytest.raises(ValueError, match="estimator"):
        estimate_diagonal(model, "kfac", loss_fn=loss_fn)


def test_output_gradient_matches_autograd(loss_type):
    from precond.curvature.losses import loss_from_outputs, output_gradient, sample_targets

    _, _, outputs_fn = problem(loss_type)
    model, _, _ = problem(loss_type)
    out = outputs_fn(model)[0].detach().requires_grad_(True)
    y = sample_targets(loss_type, out, torch.Generator().manual_seed(0))
    (ref,) = torch.autograd.grad(loss_from_outputs(loss_type, out, y), out)
    assert torch.allclose(output_gradient(loss_type, out, y), ref, atol=1e-15)


def test_estimators_in_a_basis_are_unbiased():
    """With ``basis=U``: Hutchinson's mean estimates diag(U^T H U) (Bernstein interval) and GNB's
    diag(U^T G U) (CLT interval), the curvature of the coordinates y of theta = U y."""
    model, loss_fn, outputs_fn = problem("mse")
    d = sum(p.numel() for p in model.parameters())
    u, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(7), dtype=torch.float64))
    for matrix, samples, half_width in (
        (exact.hessian(model, loss_fn), hutchinson_samples(model, loss_fn, 3000, generator=torch.Generator().manual_seed(0), basis=u), None),
        (exact.ggn(model, outputs_fn, "mse"), gnb_samples(model, outputs_fn, "mse", 4000, generator=torch.Generator().manual_seed(1), basis=u), clt_half_width),
    ):
        want = torch.diagonal(u.T @ matrix @ u)
        mean = samples.mean(0)
        half = hutchinson_half_width(u.T @ matrix @ u, samples.shape[0]) if half_width is None else half_width(samples)
        assert samples.shape == (len(samples), d)
        assert torch.all((mean - want).abs() <= half + 1e-12), ((mean - want).abs() / half).max()
        # informative: the unrotated diagonal lies outside the interval on most coordinates
        assert ((torch.diagonal(matrix) - want).abs() > half).float().mean() > 0.7
    est = hutchinson_diagonal(model, loss_fn, n_samples=3, generator=torch.Generator().manual_seed(0), basis=u)
    assert len(est) == 1 and est[0].shape == (d,)
    with pytest.raises(ValueError, match=r"basis must be a \(d, m\) matrix with d = "):
        estimate_diagonal(model, "ggn", outputs_fn=outputs_fn, loss_type="mse", basis=u[:-1])
