"""GaussNewtonDiag and Sophia: against a NumPy re-statement and the official SophiaG."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from precond.optim.functional import update_curvature_ema
from precond.optim import GaussNewtonDiag, NonFiniteGradientError, Sophia, get_optimizer

sophia_opt = pytest.importorskip("sophia_opt")  # official sophia.py (PyPI sophia-opt), test-only reference


def test_gn_inverse_solves_diagonal_quadratic_in_one_step():
    a = torch.tensor([100.0, 1.0, 1e-2, 3.0], dtype=torch.float64)
    b = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64)
    x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = GaussNewtonDiag([x], lr=1.0, power=-1, damping=0.0)
    opt.update_curvature([a])  # Hessian (= GN matrix) of 0.5 x^T diag(a) x - b^T x
    (0.5 * (a * x**2).sum() - b @ x).backward()
    opt.step()
    assert torch.allclose(x.detach(), b / a, rtol=1e-14)


def numpy_gn(x0, grads, curvs, every, *, lr, power, momentum, beta2, damping, wd):
    """Float64 NumPy re-statement of GaussNewtonDiag (module docstring of functional/gauss_newton)."""
    x, m, h, k = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), 0
    xs = []
    for t, g in enumerate(grads, start=1):
        if (t - 1) % every == 0:
            c = curvs[(t - 1) // every]
            k += 1
            h = beta2 * h + (1 - beta2) * c
        x = x * (1 - lr * wd)
        if momentum > 0:
            m = momentum * m + (1 - momentum) * g
            u = m / (1 - momentum**t)
        else:
            u = g
        hh = h / (1 - beta2**k) if beta2 > 0 else h
        x = x - lr * (np.abs(hh) + damping) ** power * u  # negative curvature: by its magnitude
        xs.append(x.copy())
    return xs


@pytest.mark.filterwarnings("ignore:GaussNewtonDiag.*negative:RuntimeWarning")  # negative entries on purpose
@pytest.mark.parametrize("power,momentum,beta2,wd", [(-1, 0.0, 0.0, 0.0), (-0.5, 0.9, 0.95, 0.01), (-1, 0.5, 0.9, 0.0)])
def test_gauss_newton_matches_numpy(power, momentum, beta2, wd):
    rng = np.random.default_rng(0)
    d, steps, every = 7, 40, 3
    x0 = rng.standard_normal(d)
    grads = [rng.standard_normal(d) for _ in range(steps)]
    curvs = [rng.standard_normal(d) ** 2 - 0.2 for _ in range(steps)]  # some negative entries: |h| is used
    kw = dict(lr=0.3, power=power, momentum=momentum, beta2=beta2, damping=1e-3, wd=wd)
    ref = numpy_gn(x0, grads, curvs, every, **kw)
    # two param groups split the vector, to check the curvature order across groups
    p1 = torch.tensor(x0[:3], requires_grad=True)
    p2 = torch.tensor(x0[3:], requires_grad=True)
    opt = GaussNewtonDiag([{"params": [p1]}, {"params": [p2]}], lr=0.3, power=power, momentum=momentum, beta2=beta2, damping=1e-3, weight_decay=wd)
    for t, g in enumerate(grads, start=1):
        if (t - 1) % every == 0:
            c = torch.tensor(curvs[(t - 1) // every])
            opt.update_curvature([c[:3], c[3:]])
        p1.grad, p2.grad = torch.tensor(g[:3]), torch.tensor(g[3:])
        opt.step()
        got = torch.cat([p1, p2]).detach().numpy()
        np.testing.assert_allclose(got, ref[t - 1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("maximize", [False, True])
def test_sophia_matches_official_sophiag(maximize):
    """precond's Sophia and the official SophiaG, fed the same hessian estimates, agree over 60 steps."""
    torch.manual_seed(0)
    shapes = [(4, 3), (3,), (5,)]
    init = [torch.randn(s, dtype=torch.float64) for s in shapes]
    ours = [t.clone().requires_grad_(True) for t in init]
    theirs = [t.clone().requires_grad_(True) for t in init]
    kw = dict(lr=0.05, betas=(0.9, 0.95), rho=0.03, weight_decay=0.1, maximize=maximize)
    bs = 8
    opt = Sophia([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.02}], bs=bs, **kw)
    ref = sophia_opt.SophiaG([{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.02}], **kw)
    gen = torch.Generator().manual_seed(1)
    for t in range(60):
        grads = [torch.randn(s, dtype=torch.float64, generator=gen) * (1 + i) for i, s in enumerate(shapes)]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref.step(bs=bs)
        if t % 10 == 9:  # the official loop: hessian refresh after steps k-1, 2k-1, ...
            est = [torch.randn(s, dtype=torch.float64, generator=gen) * 0.1 for s in shapes]
            for q, e in zip(theirs, est):
                q.grad = e.clone()  # official update_hessian uses p.grad**2
            ref.update_hessian()
            opt.update_curvature([e * e for e in est])
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-13, atol=1e-14)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(opt.state[p]["hessian"], ref.state[q]["hessian"], rtol=1e-13, atol=1e-16)
        torch.testing.assert_close(opt.state[p]["exp_avg"], ref.state[q]["exp_avg"], rtol=1e-13, atol=1e-16)


def test_sophia_win_rate():
    x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = Sophia([x], lr=0.1, betas=(0.0, 0.0), rho=1.0, weight_decay=0.0)
    assert opt.win_rate()["overall"] is None
    opt.update_curvature([torch.tensor([1.0, 1.0, 0.1, 10.0], dtype=torch.float64)])
    x.grad = torch.tensor([0.5, -2.0, 0.5, 1.0], dtype=torch.float64)
    before = x.detach().clone()
    opt.step()
    # ratio |m| / h = [0.5, 2, 5, 0.1]: coordinates 0 and 3 not clipped
    assert opt.win_rate()["overall"] == pytest.approx(0.5)
    assert opt.win_rate()["params"] == [[0.5]]
    expected = before - 0.1 * torch.tensor([0.5, -1.0, 1.0, 0.1], dtype=torch.float64)
    assert torch.allclose(x.detach(), expected)


def test_sophia_defaults_and_registry():
    x = torch.zeros(2, requires_grad=True)
    opt = Sophia([x])
    g = opt.defaults
    assert (g["lr"], g["betas"], g["rho"], g["weight_decay"]) == (1e-4, (0.965, 0.99), 0.04, 0.1)
    assert opt.curvature_every == 10 and opt.curvature_estimator == "gnb"
    assert Sophia.needs_curvature and GaussNewtonDiag.needs_curvature
    assert get_optimizer("sophia") is Sophia and get_optimizer("GaussNewtonDiag") is GaussNewtonDiag


@pytest.mark.filterwarnings("ignore:GaussNewtonDiag.*negative:RuntimeWarning")  # negative entries on purpose
def test_one_curvature_ema_for_both_optimizers():
    """h = b2 h + (1-b2) c, counted for GaussNewtonDiag only; low precision h computed in float32."""
    c = torch.tensor([2.0, -1.0, 0.3], dtype=torch.float64)
    h, k = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64), torch.tensor(0.0)
    update_curvature_ema([h], [c], beta2=0.9, counts=[k])
    assert torch.equal(h, torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64).mul_(0.9).add_(c, alpha=1 - 0.9)) and k == 1
    hb = torch.tensor([1.0, 1.0, 0.0], dtype=torch.bfloat16)
    update_curvature_ema([hb], [c], beta2=0.9)
    assert torch.equal(hb, torch.tensor([1.0, 1.0, 0.0]).mul_(0.9).add_(c.float(), alpha=1 - 0.9).bfloat16())
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    sophia, gn = Sophia([x], betas=(0.9, 0.5)), GaussNewtonDiag([x], beta2=0.5)
    for opt in (sophia, gn):
        opt.update_curvature([c])
        opt.update_curvature([2 * c])
    assert torch.equal(sophia.curvature()[0], 0.5 * (0.5 * c) + 0.5 * (2 * c)) and "curvature_step" not in sophia.state[x]
    assert torch.equal(gn.curvature()[0], sophia.curvature()[0]) and gn.state[x]["curvature_step"] == 2


def test_state_dict_roundtrip():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = GaussNewtonDiag([x], lr=0.5, momentum=0.9, beta2=0.9)
    opt.update_curvature([torch.tensor([2.0, 3.0])])
    x.grad = torch.tensor([1.0, 1.0])
    opt.step()
    y = x.detach().clone().requires_grad_(True)
    opt2 = GaussNewtonDiag([y], lr=0.5, momentum=0.9, beta2=0.9)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    x.grad = y.grad = torch.tensor([0.3, -0.2])
    opt.step()
    opt2.step()
    assert torch.equal(x, y)


def test_bad_inputs():
    x = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="power"):
        GaussNewtonDiag([x], power=0.5)
    with pytest.raises(ValueError, match="power"):
        GaussNewtonDiag([x], power=-2)
    with pytest.raises(ValueError, match="update_every"):
        GaussNewtonDiag([x], update_every=0)
    with pytest.raises(ValueError, match="update_every"):
        Sophia([x], update_every=0)
    with pytest.raises(ValueError, match="damping"):
        GaussNewtonDiag([x], damping=-1.0)
    with pytest.raises(ValueError, match="rho"):
        Sophia([x], rho=-0.1)
    with pytest.raises(ValueError, match="bs"):
        Sophia([x], bs=0)
    with pytest.raises(ValueError, match="betas"):
        Sophia([x], betas=(1.0, 0.99))
    opt = GaussNewtonDiag([x])
    x.grad = torch.ones(3)
    with pytest.raises(RuntimeError, match="update_curvature"):
        opt.step()
    assert torch.equal(x.detach(), torch.zeros(3)) and float(opt.state[x]["step"]) == 0
    with pytest.raises(ValueError, match="1 parameters"):
        opt.update_curvature([torch.ones(3), torch.ones(3)])
    with pytest.raises(ValueError, match="shape"):
        opt.update_curvature([torch.ones(4)])
    with pytest.raises(NonFiniteGradientError, match="update_curvature"):
        opt.update_curvature([torch.tensor([1.0, float("nan"), 1.0])])
    # the fast paths exist (tests/test_fast_paths_curvature.py compares them with the loop) and
    # refuse a step before any curvature as the loop does, changing nothing
    for impl in (dict(foreach=True), dict(fused=True)):
        o = GaussNewtonDiag([x], **impl)
        with pytest.raises(RuntimeError, match="update_curvature"):
            o.step()
        assert torch.equal(x.detach(), torch.zeros(3)) and float(o.state[x]["step"]) == 0
