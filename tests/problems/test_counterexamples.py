"""Reddi et al.'s online counterexamples and the Wilson et al. construction."""

import numpy as np
import pytest
import torch

import precond.problems as P
from precond.problems.counterexamples import regret


def _grads(p, T, seed=0):
    m, it, out = p.model(seed), p.batches(seed), []
    for _ in range(T):
        b = next(it)
        m.zero_grad()
        p.loss(m, b).backward()
        out.append(float(m.x.grad[0]))
    return out


def test_reddi_gradient_sequence_and_projection():
    p = P.get("reddi", C=3.0)
    assert _grads(p, 7) == [3, -1, -1, 3, -1, -1, 3]
    m = p.model(0)
    assert float(m.x.detach()) == 1.0 and p.minimizer.item() == -1.0
    with torch.no_grad():
        m.x.fill_(1.7)
    p.after_step(m, 1)
    assert float(m.x.detach()) == 1.0
    with torch.no_grad():
        m.x.fill_(-3.0)
    p.after_step(m, 2)
    assert float(m.x.detach()) == -1.0
    torch.testing.assert_close(p.project(torch.tensor([[-2.0], [0.3], [5.0]])), torch.tensor([[-1.0], [0.3], [1.0]]))
    with pytest.raises(ValueError, match="C > 2"):
        P.get("reddi", C=2.0)


def test_fig1_sequence():
    p = P.get("reddi_fig1")
    g = _grads(p, 203)
    assert g[0] == 1010 and g[101] == 1010 and g[202] == 1010
    assert all(v == -10 for i, v in enumerate(g) if i not in (0, 101, 202))
    assert p.optimum == pytest.approx(-10 / 101)


def test_stochastic_sequence():
    p = P.get("reddi_stochastic")
    c = p.coefs(200_000)
    assert set(np.unique(c)) == {1010.0, -10.0}
    frac = float(np.mean(c == 1010.0))
    assert abs(frac - 0.01) < 5 * np.sqrt(0.01 * 0.99 / 200_000)
    assert np.array_equal(c, P.get("reddi_stochastic").coefs(200_000))  # fixed by sequence_seed
    assert not np.array_equal(c, P.get("reddi_stochastic", sequence_seed=1).coefs(200_000))
    assert _grads(p, 50, seed=0) == list(c[:50]) == _grads(p, 50, seed=5)


def test_regret_helper():
    p = P.get("reddi", C=3.0)
    T = 300
    c = p.coefs(T)
    assert regret(p, np.full(T, -1.0)).final == pytest.approx(0.0)  # playing x* has zero regret
    r = regret(p, np.ones(T))  # the worst point: 2 * sum c_t
    assert r.final == pytest.approx(2 * c.sum()) and r.final_average == pytest.approx(2 * c.sum() / T)
    # independent check: brute-force the best fixed point on a grid
    xs = np.random.default_rng(0).uniform(-1, 1, T)
    grid = np.linspace(-1, 1, 2001)
    brute = (c * xs).sum() - min((c * g).sum() for g in grid)
    assert regret(p, xs).final == pytest.approx(brute)
    # sweeps: trailing dims kept
    assert regret(p, torch.ones(T, 4)).total.shape == (T, 4)


def test_online_gradient_descent_has_vanishing_average_regret():
    """Projected OGD with step 1/sqrt(t) (Zinkevich) is no-regret here: R_T/T -> 0."""
    p = P.get("reddi", C=3.0)
    x, xs = 1.0, []
    for t in range(1, 3001):
        xs.append(x)
        x = min(1.0, max(-1.0, x - p.coef(t) / (3.0 * np.sqrt(t))))
    r = regret(p, np.array(xs))
    assert r.final_average < 0.05 and r.average[99] > r.final_average


# ---- Wilson et al. 2017 -------------------------------------------------------------------

def _train(p, opt_cls, steps, **kw):
    m = p.model(0)
    assert float(m.x.detach().abs().max()) == 0.0  # started at 0
    opt, it = opt_cls(m.parameters(), **kw), p.batches(0)
    for _ in range(steps):
        b = next(it)
        opt.zero_grad()
        p.loss(m, b).backward()
        opt.step()
    return m


def test_wilson_solutions():
    p = P.get("wilson")
    X, y = p.X_train, p.y_train
    w_mn, w_s = p.min_norm_solution(), p.sign_solution()
    assert p.dim == 3 + 5 * p.n_train and y.sum() > 0
    np.testing.assert_allclose(X @ w_mn, y, atol=1e-12)
    np.testing.assert_allclose(X @ w_s, y, atol=1e-12)  # X sign(X^T y) = 4 y
    assert p.error(p.X_test, p.y_test, w_mn) == 0.0
    assert np.all(p.X_test @ w_s > 0)  # the sign solution predicts +1 everywhere
    assert p.error(p.X_test, p.y_test, w_s) == pytest.approx(np.mean(p.y_test < 0))
    assert 0.25 < np.mean(p.y_test < 0) < 0.55


def test_wilson_gd_reaches_min_norm_and_adaptive_fails():
    p = P.get("wilson")
    m = _train(p, torch.optim.SGD, 2000, lr=0.5)
    w = m.x.detach().numpy()
    assert np.linalg.norm(w - p.min_norm_solution()) < 1e-8
    ev = p.evaluate(m)
    assert ev["test_error"] == 0.0 and ev["val_error"] == 0.0 and ev["train_loss"] < 1e-20
    for opt_cls, lr in ((torch.optim.Adagrad, 0.1), (torch.optim.Adam, 1e-2)):
        m = _train(p, opt_cls, 1500, lr=lr)
        w = m.x.detach().numpy()
        s = p.sign_solution()
        assert w @ s / np.linalg.norm(w) / np.linalg.norm(s) > 0.999
        ev = p.evaluate(m)
        assert ev["train_loss"] < 1e-8
        assert ev["test_error"] == pytest.approx(np.mean(p.y_test < 0))  # predicts +1 everywhere
