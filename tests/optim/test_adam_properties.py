"""The lecture notes' three properties of Adam (seed 003), as property tests."""

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import precond.optim as po

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@SETTINGS
@given(
    mu=st.floats(-3, 3).filter(lambda v: abs(v) > 0.05),
    sigma=st.floats(0.0, 2.0),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.9, 0.9999),
    t=st.integers(1, 30),
    seed=st.integers(0, 2**16),
)
def test_bias_correction_makes_moments_unbiased(mu, sigma, beta1, beta2, t, seed):
    """Stationary g with E[g] = mu, E[g^2] = nu: E[m_hat_t] = mu and E[v_hat_t] = nu at every t.

    n = 20000 coordinates are independent runs; the sample mean of m_hat must fall within
    5 standard errors of mu (a false failure has probability < 1e-6 per example).
    """
    n = 20000
    gen = torch.Generator().manual_seed(seed)
    p = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = po.Adam([p], lr=1e-12, betas=(beta1, beta2))  # a tiny lr keeps the process stationary
    for _ in range(t):
        p.grad = mu + sigma * torch.randn(n, generator=gen, dtype=torch.float64)
        opt.step()
    state = opt.state[p]
    m_hat = state["exp_avg"] / (1 - beta1**t)
    v_hat = state["exp_avg_sq"] / (1 - beta2**t)
    # Var(m_hat) = sigma^2 (1-b1)^2 sum b1^{2k} / (1-b1^t)^2
    w1 = (1 - beta1) * beta1 ** np.arange(t) / (1 - beta1**t)
    se_m = sigma * math.sqrt(float(np.sum(w1**2)) / n)
    assert abs(float(m_hat.mean()) - mu) <= 5 * se_m + 1e-12
    nu = mu**2 + sigma**2
    w2 = (1 - beta2) * beta2 ** np.arange(t) / (1 - beta2**t)
    # Var(g^2) = 4 mu^2 sigma^2 + 2 sigma^4 for Gaussian g
    se_v = math.sqrt((4 * mu**2 * sigma**2 + 2 * sigma**4) * float(np.sum(w2**2)) / n)
    assert abs(float(v_hat.mean()) - nu) <= 5 * se_v + 1e-9 * nu


@SETTINGS
@given(
    c=st.floats(1e-3, 1e3) | st.floats(-1e3, -1e-3),
    seed=st.integers(0, 2**16),
    amsgrad=st.booleans(),
)
def test_scale_invariance(c, seed, amsgrad):
    """Gradients times c give the same trajectory up to sign(c) once eps -> 0 (eps = 0 itself is
    refused, as 0/0 where a gradient is 0; 1e-300 is far below the resolution of sqrt(v_hat) here)."""
    gen = torch.Generator().manual_seed(seed)
    grads = [torch.randn(8, generator=gen, dtype=torch.float64) for _ in range(25)]
    x0 = torch.randn(8, generator=gen, dtype=torch.float64)
    deltas = []
    for scale in (1.0, c):
        p = x0.clone().requires_grad_()
        opt = po.Adam([p], lr=1e-2, eps=1e-300, amsgrad=amsgrad)
        for g in grads:
            p.grad = scale * g
            opt.step()
        deltas.append(p.detach() - x0)
    torch.testing.assert_close(deltas[1], math.copysign(1.0, c) * deltas[0], rtol=1e-9, atol=1e-12)


@SETTINGS
@given(
    lr=st.floats(1e-4, 1.0),
    beta=st.floats(0.0, 0.999),
    seed=st.integers(0, 2**16),
    scale=st.floats(1e-3, 1e3),
)
def test_bounded_step_when_beta1_equals_beta2(lr, beta, seed, scale):
    """With beta1 = beta2, Cauchy-Schwarz on the same EMA weights gives |m_hat| <= sqrt(v_hat),
    so every coordinate's step is at most lr, for ANY gradient sequence."""
    gen = torch.Generator().manual_seed(seed)
    p = torch.zeros(64, dtype=torch.float64, requires_grad=True)
    opt = po.Adam([p], lr=lr, betas=(beta, beta), eps=1e-8)
    for _ in range(40):
        before = p.detach().clone()
        p.grad = scale * torch.randn(64, generator=gen, dtype=torch.float64) ** 3  # heavy-tailed
        opt.step()
        assert float((p.detach() - before).abs().max()) <= lr * (1 + 1e-12)


@SETTINGS
@given(
    lr=st.floats(1e-4, 1.0),
    betas=st.tuples(st.floats(0.0, 0.99), st.floats(0.9, 0.9999)),
    magnitude=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**16),
)
def test_bounded_step_in_stationary_regime(lr, betas, magnitude, seed):
    """Stationary regime of the notes: |g| constant per coordinate (random signs), so
    v_hat = g^2 exactly and |m_hat| <= |g|: every step is at most lr."""
    gen = torch.Generator().manual_seed(seed)
    mags = magnitude * torch.rand(32, generator=gen, dtype=torch.float64).add_(0.1)
    p = torch.zeros(32, dtype=torch.float64, requires_grad=True)
    opt = po.Adam([p], lr=lr, betas=betas)
    for _ in range(30):
        before = p.detach().clone()
        signs = torch.randint(0, 2, (32,), generator=gen).double() * 2 - 1
        p.grad = signs * mags
        opt.step()
        assert float((p.detach() - before).abs().max()) <= lr * (1 + 1e-9)
