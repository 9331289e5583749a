"""What Sophia and GaussNewtonDiag do with negative and zero curvature (issue 11, points 8-9).

Sophia divides by ``max(rho*bs*h, 0) + eps`` (the paper's ``max(gamma h, eps)``): every
coordinate moves against ``sign(m)`` by at most ``lr``. GaussNewtonDiag preconditions with
``(|h_hat| + damping)**power`` and takes no step where that base is 0, warning once. Both on
all three paths (loop, foreach, fused) and end to end with every estimator.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from precond.curvature import CurvatureFeeder
from precond.curvature.losses import loss_from_outputs
from precond.optim import GaussNewtonDiag, Sophia
from precond.optim.kernels import _build

from ._helpers import problem, train

IMPLS = {"loop": dict(foreach=False, fused=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}
DTYPES = [(torch.float64, 1e-10), (torch.float32, 1e-5)]
SHAPES = [(5, 3), (7,), (1,)]
#: one curvature vector with every kind of entry (negative large to tiny, zero, positive)
MIXED = [-3.0, -0.5, -1e-3, -1e-20, 0.0, 1e-3, 1.0, 10.0]


def impl_kw(impl: str) -> dict:
    """The optimizer options selecting ``impl``; skips the test for ``fused`` without the C++ kernels."""
    if impl == "fused" and _build.load() is None:
        pytest.skip(f"C++ kernels unavailable: {_build.status()['error']}")
    return IMPLS[impl]


def signed_curvature(shape, g: torch.Generator, zeros: torch.Tensor | None = None) -> torch.Tensor:
    """Log-uniform magnitudes over [e^-4, e^4], each negated with probability 0.3; 0 where ``zeros``."""
    c = torch.exp(torch.rand(shape, generator=g, dtype=torch.float64) * 8.0 - 4.0)
    c = torch.where(torch.rand(shape, generator=g, dtype=torch.float64) < 0.3, -c, c)
    return c if zeros is None else c.masked_fill(zeros, 0.0)


def drive(make, dtype, steps=20, every=3):
    """``steps`` steps of ``make(params)`` on fixed random gradients, signed curvature every
    ``every`` steps; a fixed set of coordinates always gets curvature 0."""
    g = torch.Generator().manual_seed(3)
    params = [torch.randn(s, generator=g, dtype=torch.float64).to(dtype).requires_grad_(True) for s in SHAPES]
    zeros = [torch.rand(s, generator=g) < 0.2 for s in SHAPES]
    opt = make(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the once-per-optimizer warning: tested below
        for k in range(steps):
            if k % every == 0:
                opt.update_curvature([signed_curvature(s, g, z).to(dtype) for s, z in zip(SHAPES, zeros)])
            for p in params:
                p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64).to(dtype)
            opt.step()
    return [p.detach() for p in params]


def assert_path_equals_loop(make, impl, dtype, rtol):
    fast = impl_kw(impl)
    ref = drive(lambda ps: make(ps, **IMPLS["loop"]), dtype)
    assert all(torch.isfinite(r).all() for r in ref)
    for a, b in zip(drive(lambda ps: make(ps, **fast), dtype), ref):
        scale = b.double().abs().max().item()
        torch.testing.assert_close(a.double(), b.double(), rtol=rtol, atol=rtol * scale)


# --------------------------------------------------------------------------- Sophia (point 8)


def test_sophia_negative_curvature_moves_against_momentum_by_at_most_lr():
    x = torch.zeros(len(MIXED), dtype=torch.float64, requires_grad=True)
    lr, rho = 0.1, 0.5
    opt = Sophia([x], lr=lr, betas=(0.5, 0.0), rho=rho, weight_decay=0.0)
    opt.update_curvature([torch.tensor(MIXED, dtype=torch.float64)])  # b2 = 0: h = the estimate
    h = opt.state[x]["hessian"]
    assert torch.equal(h, torch.tensor(MIXED, dtype=torch.float64))
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        x.grad = torch.randn(len(MIXED), generator=gen, dtype=torch.float64)
        before = x.detach().clone()
        opt.step()
        m, step = opt.state[x]["exp_avg"], x.detach() - before
        assert (step * m.sign() < 0).all(), (step, m)  # against the momentum, every coordinate
        assert (step.abs() <= lr * (1 + 1e-15)).all(), step
        neg = h < 0
        torch.testing.assert_close(step[neg], -lr * m[neg].sign(), rtol=1e-15, atol=0.0)  # the sign step
        # h >= 0: the official SophiaG ratio
        official = (m.abs() / (rho * h + 1e-15)).clamp(None, 1)
        torch.testing.assert_close(step[~neg], (-lr * m.sign() * official)[~neg], rtol=1e-15, atol=1e-17)
    # win rate: a coordinate with h < 0 is clipped (ratio |m| / eps >= 1), not counted as a win
    expected = float(((m.abs() / (rho * h.clamp(min=0) + 1e-15)) < 1).double().mean())
    assert opt.win_rate()["overall"] == pytest.approx(expected)
    assert expected < float(((m.abs() / (rho * h + 1e-15)) < 1).double().mean())  # the old count was higher


@pytest.mark.parametrize("impl", ["foreach", "fused"])
@pytest.mark.parametrize("dtype,rtol", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("kw", [dict(weight_decay=0.0), dict(betas=(0.9, 0.95), weight_decay=0.1, bs=3.0, maximize=True)])
def test_sophia_paths_agree_with_negative_curvature(kw, dtype, rtol, impl):
    assert_path_equals_loop(lambda ps, **i: Sophia(ps, lr=0.05, rho=0.05, **kw, **i), impl, dtype, rtol)


@pytest.mark.parametrize("estimator", ["gnb", "hutchinson", "hessian", "ggn"])
def test_sophia_trains_with_every_estimator(estimator):
    """Sophia-H (hutchinson, hessian) diverged before: loss 1.13 -> 2.5e4, steps of 6e3."""
    lr = 0.05
    start, end, biggest, _ = train(lambda ps: Sophia(ps, lr=lr, weight_decay=0.0, update_every=2, estimator=estimator))
    assert end < 0.8 * start, (start, end)
    assert biggest <= lr * (1 + 1e-12), biggest


# ------------------------------------------------------------------ GaussNewtonDiag (point 9)


@pytest.mark.parametrize("power", [-1.0, -0.5])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_gauss_newton_damping_zero_dead_relu_unit_gives_no_nan(impl, power):
    torch.manual_seed(0)
    x, y = torch.randn(16, 3, dtype=torch.float64), torch.randint(0, 3, (16,))
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3)).double()
    with torch.no_grad():
        model[0].bias[0] = -100.0  # unit 0 is dead: zero gradient and zero GGN in its weights
    before = [p.detach().clone() for p in model.parameters()]
    opt = GaussNewtonDiag(model.parameters(), lr=1.0, power=power, damping=0.0, **impl_kw(impl))
    with pytest.warns(RuntimeWarning, match="0 with damping=0: those coordinates take no step"):
        CurvatureFeeder(opt, model, loss_type="cross_entropy").update(outputs_fn=lambda m: (m(x), y))
    opt.zero_grad()
    loss_from_outputs("cross_entropy", model(x), y).backward()
    opt.step()
    w1, b1, w2 = (p.detach() for p in list(model.parameters())[:3])
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.equal(w1[0], before[0][0]) and b1[0] == before[1][0] and torch.equal(w2[:, 0], before[2][:, 0])
    assert not torch.equal(w1[1:], before[0][1:])  # the live units moved


@pytest.mark.parametrize("power", [-1.0, -0.5])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_gauss_newton_negative_curvature_bounded_and_warned_once(impl, power):
    h = torch.tensor(MIXED, dtype=torch.float64)
    g = torch.tensor([1.0, -2.0, 0.5, 1.0, 0.0, 0.5, -2.0, 1.0], dtype=torch.float64)
    x = torch.zeros(len(MIXED), dtype=torch.float64, requires_grad=True)
    lr, damping = 0.5, 1e-8
    opt = GaussNewtonDiag([x], lr=lr, power=power, damping=damping, **impl_kw(impl))
    with pytest.warns(RuntimeWarning, match="4 of 8 curvature entries are negative"):
        opt.update_curvature([h])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.update_curvature([h])  # once per optimizer
    x.grad = g.clone()
    opt.step()
    step = x.detach()
    torch.testing.assert_close(step, -lr * g * (h.abs() + damping) ** power, rtol=1e-15, atol=0.0)
    # a negative entry steps like the positive entry of the same size (-1e-3 / 1e-3: both
    # gradient 0.5), never by lr * g / damping^-power (5e7 before, with power -1)
    assert step[2] == step[5]
    big = h.abs() > 1e-4
    assert (step[big].abs() <= lr * g[big].abs() * h[big].abs() ** power).all()
    assert (step * g <= 0).all()  # downhill everywhere


@pytest.mark.parametrize("impl", list(IMPLS))
def test_gauss_newton_nonnegative_curvature_unchanged_and_silent(impl):
    """The GGN path (curvature >= 0, zeros included, damping > 0): the rule before,
    ``(max(h, 0) + damping)**power``, and no warning."""
    g = torch.Generator().manual_seed(5)
    for power in (-1.0, -0.5):
        h = torch.rand(50, generator=g, dtype=torch.float64) * 2.0
        h[::7] = 0.0
        grad = torch.randn(50, generator=g, dtype=torch.float64)
        x0 = torch.randn(50, generator=g, dtype=torch.float64)
        x = x0.clone().requires_grad_(True)
        opt = GaussNewtonDiag([x], lr=0.3, power=power, damping=1e-3, **impl_kw(impl))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            opt.update_curvature([h])
        x.grad = grad.clone()
        opt.step()
        old = x0.clone().addcmul_(h.clamp(min=0.0).add_(1e-3).pow_(power), grad, value=-0.3)
        if impl == "fused":  # the kernel's reciprocal (and FMA) differ from torch's ops in the last bit
            torch.testing.assert_close(x.detach(), old, rtol=1e-15, atol=1e-15)
        else:
            assert torch.equal(x.detach(), old)


@pytest.mark.parametrize("impl", ["foreach", "fused"])
@pytest.mark.parametrize("dtype,rtol", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("kw", [
    dict(power=-1.0, damping=1e-2),
    dict(power=-0.5, damping=0.0),
    dict(power=-1.0, damping=0.0, momentum=0.9, beta2=0.9, weight_decay=0.1),
    dict(power=-0.5, damping=1e-3, momentum=0.5, beta2=0.99, maximize=True),
])  # fmt: skip
def test_gauss_newton_paths_agree_with_nonpositive_curvature(kw, dtype, rtol, impl):
    assert_path_equals_loop(lambda ps, **i: GaussNewtonDiag(ps, lr=0.1, **kw, **i), impl, dtype, rtol)


@pytest.mark.parametrize("estimator", ["hutchinson", "hessian"])
def test_gauss_newton_trains_on_indefinite_estimates(estimator):
    """GN^-1/2 at the default damping 1e-8 on Hessian / Hutchinson diagonals: before, the
    negative entries stepped by lr * g * 1e4 (steps of 85 to 1.3e3; Hutchinson: loss 1.13 -> 462)."""
    make = lambda ps: GaussNewtonDiag(ps, lr=0.2, power=-0.5, beta2=0.9, estimator=estimator)  # noqa: E731
    with pytest.warns(RuntimeWarning, match="negative"):
        start, end, biggest, _ = train(make)
    assert end < 0.85 * start, (start, end)
    assert biggest < 1.0, biggest
