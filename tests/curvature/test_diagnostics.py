"""Each diagnostic on a problem with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from precond.curvature.diagnostics import (
    AGDAdaptiveFraction,
    AnisotropicSmoothness,
    GradientDifference,
    GradientNoise,
    HessianSpectrum,
    SophiaWinRate,
    StepContext,
    run_after,
    run_before,
)
from precond.curvature.diagnostics.smoothness import smoothness_vector
from precond.optim import AGD, SGD, Sophia


class Quadratic(nn.Module):
    """0.5 x^T A x - b^T x as a model with parameters split in two tensors."""

    def __init__(self, a, b, x0):
        super().__init__()
        self.a, self.b = a, b
        self.u = nn.Parameter(x0[:3].clone())
        self.v = nn.Parameter(x0[3:].clone())

    def loss(self):
        x = torch.cat([self.u, self.v])
        return 0.5 * x @ self.a @ x - self.b @ x


def dense_quadratic(seed=0, d=6, diag=None):
    g = torch.Generator().manual_seed(seed)
    if diag is None:
        q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64, generator=g))
        a = q @ torch.diag(torch.logspace(-1, 1, d, dtype=torch.float64)) @ q.T
    else:
        a = torch.diag(torch.as_tensor(diag, dtype=torch.float64))
    return Quadratic(a, torch.randn(d, dtype=torch.float64, generator=g), torch.randn(d, dtype=torch.float64, generator=g))


def train(model, opt, diags, steps):
    """The runner's protocol: backward, run_before, step, run_after."""
    history = []
    for t in range(steps):
        opt.zero_grad()
        model.loss().backward()
        ctx = StepContext(step=t, model=model, optimizer=opt, loss_fn=lambda m: m.loss())
        run_before(diags, ctx)
        opt.step()
        ctx.step = t + 1
        history.append(run_after(diags, ctx))
    return history


def test_gradient_difference_is_exact_on_a_quadratic_with_b1_zero():
    model = dense_quadratic()
    opt = AGD(model.parameters(), lr=1e-2, betas=(0.0, 0.999), foreach=False, fused=False)
    hist = train(model, opt, [GradientDifference()], 6)
    assert hist[0] == {}  # no previous step yet
    for h in hist[1:]:
        assert h["gradient_difference/grad_diff_rel_err"] < 1e-12
        assert h["gradient_difference/agd_rel_err"] < 1e-12
        assert h["gradient_difference/agd_cos"] == pytest.approx(1.0)


def test_gradient_difference_with_momentum_and_every():
    """b1 > 0: the raw difference still matches H dw exactly, AGD's s_t does not (it differs by
    (1-b1)/(1-b1^t) (g_t - m_hat_{t-1}) vs g_t - g_{t-1})."""
    model = dense_quadratic(1)
    opt = AGD(model.parameters(), lr=1e-2, betas=(0.9, 0.999), foreach=False, fused=False)
    hist = train(model, opt, [GradientDifference(every=3)], 9)
    measured = [i + 1 for i, h in enumerate(hist) if h]
    assert measured == [3, 6, 9]
    for i in (2, 5, 8):
        assert hist[i]["gradient_difference/grad_diff_rel_err"] < 1e-12
        assert hist[i]["gradient_difference/agd_rel_err"] > 1e-3


def test_agd_adaptive_fraction_names():
    model = dense_quadratic(2)
    opt = AGD(model.parameters(), lr=1e-2, delta=1e-5, foreach=False, fused=False)
    hist = train(model, opt, [AGDAdaptiveFraction()], 2)
    ref = opt.adaptive_fraction()["params"][0]
    assert hist[-1]["agd_adaptive_fraction/param/u"] == ref[0]
    assert hist[-1]["agd_adaptive_fraction/param/v"] == ref[1]
    assert hist[-1]["agd_adaptive_fraction/overall"] == pytest.approx(opt.adaptive_fraction()["groups"][0])
    # delta huge: nothing adaptive
    opt2 = AGD(model.parameters(), lr=1e-6, delta=1e6, foreach=False, fused=False)
    assert train(model, opt2, [AGDAdaptiveFraction()], 2)[-1]["agd_adaptive_fraction/overall"] == 0.0
    with pytest.raises(TypeError, match="AGD"):
        train(model, SGD(model.parameters(), lr=1e-3), [AGDAdaptiveFraction()], 1)


def test_sophia_win_rate_diagnostic():
    model = dense_quadratic(3)
    opt = Sophia(model.parameters(), lr=1e-3)
    opt.update_curvature([torch.full((3,), 1e6, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)])
    out = train(model, opt, [SophiaWinRate()], 1)[-1]
    assert out["sophia_win_rate/param/u"] == 1.0 and out["sophia_win_rate/param/v"] == 0.0
    assert out["sophia_win_rate/overall"] == 0.5


@pytest.mark.parametrize("max_dense", [10_000, 0])  # exact eigvalsh, then Lanczos over HVPs
def test_spectrum_of_known_quadratic(max_dense):
    lam = [5.0, -0.5, 2.0, 1e-2, 3.0, 1.0]
    model = dense_quadratic(4, diag=lam)
    ctx = StepContext(step=1, model=model, optimizer=SGD(model.parameters(), lr=0.1), loss_fn=lambda m: m.loss())
    out = HessianSpectrum(k=2, max_dense=max_dense).after_step(ctx)
    assert out["lambda_max"] == pytest.approx(5.0, rel=1e-8)
    assert out["lambda_min"] == pytest.approx(-0.5, rel=1e-8)
    assert out["top"] == pytest.approx([5.0, 3.0], rel=1e-8)
    assert out["bottom"] == pytest.approx([-0.5, 1e-2], rel=1e-6, abs=1e-8)
    assert out["condition"] == math.inf
    model2 = dense_quadratic(4, diag=[4.0, 2.0, 1.0, 0.5, 0.25, 8.0])
    ctx.model = model2
    out = HessianSpectrum(max_dense=max_dense).after_step(ctx)
    assert out["condition"] == pytest.approx(32.0, rel=1e-8)


def test_gradient_noise_on_synthetic_gradients():
    """loss_k(x) = -(mu + sigma * xi_k) . x has gradient -(mu + sigma xi_k): NSR_i = sigma_i / |mu_i|."""
    d, n = 8, 4000
    mu = torch.tensor([1.0, -2.0, 0.5, 4.0, 1.0, -1.0, 2.0, 0.25], dtype=torch.float64)
    sigma = torch.tensor([0.1, 1.0, 2.0, 0.5, 0.0, 3.0, 0.2, 1.0], dtype=torch.float64)
    model = nn.Linear(d, 1, bias=False).double()
    gen = torch.Generator().manual_seed(0)

    def sample_losses(k):
        xis = torch.randn(k, d, dtype=torch.float64, generator=gen)
        return [lambda m, xi=xi: -((mu + sigma * xi) * m.weight.reshape(-1)).sum() for xi in xis]

    ctx = StepContext(step=1, model=model, optimizer=SGD(model.parameters(), lr=0.1), loss_fn=lambda m: m.weight.sum(), sample_losses=sample_losses)
    out = GradientNoise(n_samples=n, return_vectors=True).after_step(ctx)
    nsr = (sigma / mu.abs()).numpy()
    # sample std within 10% (n = 4000: relative sd of s is about 1/sqrt(2n) = 1.1%)
    np.testing.assert_allclose(out["sigma"], sigma.numpy(), rtol=0.1, atol=1e-12)
    assert out["nsr/median"] == pytest.approx(float(np.median(nsr)), rel=0.1)
    assert out["nsr/frac_above_1"] == pytest.approx(float((nsr > 1).mean()))
    assert sum(out["nsr/hist_log10_counts"]) == (nsr > 0).sum()
    l1, l2 = float(sigma.sum()), float(sigma.norm())
    assert out["sigma_ratio"] == pytest.approx(l1 / (math.sqrt(d) * l2), rel=0.05)
    with pytest.raises(ValueError, match="sample_losses"):
        GradientNoise().after_step(StepContext(step=1, model=model, optimizer=ctx.optimizer, loss_fn=ctx.loss_fn))


def test_anisotropic_smoothness_separable_and_bound():
    lam = [10.0, 1.0, 1.0, 0.1, 0.1, 0.1]
    model = dense_quadratic(5, diag=lam)
    ctx = StepContext(step=1, model=model, optimizer=SGD(model.parameters(), lr=0.1), loss_fn=lambda m: m.loss())
    for method in ("row_sum", "diag", "hutchinson"):
        out = AnisotropicSmoothness(method=method, return_vectors=True, n_samples=2).after_step(ctx)
        np.testing.assert_allclose(out["L"], lam, rtol=1e-12)  # separable: every estimator is exact
        assert out["L_ratio"] == pytest.approx(sum(lam) / (6 * 10.0))
    # dense: diag(row sums) - H is PSD (H <= diag(L)), diag(|H_ii|) is not in general
    h = dense_quadratic(6).a
    L = smoothness_vector(h, "row_sum")
    assert torch.linalg.eigvalsh(torch.diag(L) - h).min() > -1e-12
    assert torch.linalg.eigvalsh(torch.diag(smoothness_vector(h, "diag")) - h).min() < 0
    with pytest.raises(ValueError, match="method"):
        AnisotropicSmoothness(method="frobenius")


def test_every_validation():
    with pytest.raises(ValueError, match="every"):
        HessianSpectrum(every=0)


def test_zero_argument_closures_are_accepted():
    """A runner may pass ``lambda: loss(model, batch)``; it works wherever fn(model) is used."""
    model = dense_quadratic(4, diag=[4.0, 2.0, 1.0, 0.5, 0.25, 8.0])
    ctx = StepContext(step=1, model=model, optimizer=SGD(model.parameters(), lr=0.1), loss_fn=lambda: model.loss())
    assert HessianSpectrum().after_step(ctx)["lambda_max"] == pytest.approx(8.0)
    assert HessianSpectrum(max_dense=0).after_step(ctx)["lambda_max"] == pytest.approx(8.0)
