"""Analytic functions and quadratics: exact gradients against autograd, known minima, starts."""

import pytest
import torch

import precond.problems as P
from precond.problems.analytic import Analytic

ANALYTIC = ["basin", "ravine", "notes_quadratic", "beale", "rosenbrock", "saddle", "plateau", "cliff"]


def _problems():
    out = [P.get(n, dtype="float64") for n in ANALYTIC]
    out.append(P.get("rosenbrock", dim=5, dtype="float64"))
    return out


@pytest.mark.parametrize("p", _problems(), ids=lambda p: f"{p.name}{p.dim}")
def test_grad_matches_autograd_batched(p):
    g = torch.Generator().manual_seed(1)
    lo = torch.tensor([b[0] for b in p.bounds] + [p.bounds[0][0]] * (p.dim - 2), dtype=torch.float64)
    hi = torch.tensor([b[1] for b in p.bounds] + [p.bounds[0][1]] * (p.dim - 2), dtype=torch.float64)
    x = (lo + (hi - lo) * torch.rand(3, 4, p.dim, generator=g, dtype=torch.float64)).requires_grad_()
    v = p.value(x)
    assert v.shape == (3, 4)
    (auto,) = torch.autograd.grad(v.sum(), x)
    torch.testing.assert_close(p.grad(x.detach()), auto, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("p", _problems(), ids=lambda p: f"{p.name}{p.dim}")
def test_known_minimum(p):
    xs = p.minimizer
    assert float(p.grad(xs).abs().max()) < 1e-9
    assert abs(float(p.value(xs)) - p.optimum) < 1e-12
    # it is a minimum: small random perturbations do not go lower
    d = 1e-3 * torch.randn(200, p.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(p.value(xs + d).min()) >= p.optimum - 1e-12


def test_exact_values():
    assert float(P.get("beale").value(torch.tensor([3.0, 0.5]))) == 0.0
    # the notes' example: gradient (10, 10) at (1, 10), Hessian diag(10, 1)
    q = P.get("notes_quadratic", dtype="float64")
    torch.testing.assert_close(q.grad(q.initial_point(0)), torch.tensor([10.0, 10.0], dtype=torch.float64))
    torch.testing.assert_close(q.hessian(), torch.diag(torch.tensor([10.0, 1.0], dtype=torch.float64)))
    torch.testing.assert_close(P.get("ravine").value(torch.tensor([1.0, 1.0])), torch.tensor(6.0))
    r = P.get("rosenbrock", dtype="float64")
    assert float(r.value(torch.tensor([-1.2, 1.0], dtype=torch.float64))) == pytest.approx(24.2)


def test_saddle_and_landscape_features():
    s = P.get("saddle", dtype="float64")
    assert float(s.grad(torch.zeros(2, dtype=torch.float64)).abs().max()) == 0.0
    H = torch.autograd.functional.hessian(lambda x: s.value(x), torch.zeros(2, dtype=torch.float64))
    ev = torch.linalg.eigvalsh(H)
    assert ev[0] < 0 < ev[1]  # a strict saddle
    for m in s.minimizers:
        assert float(s.value(m)) == pytest.approx(-0.25)
    pl = P.get("plateau", dtype="float64")
    assert 1e-3 < float(pl.grad(pl.initial_point(0)).norm()) < 1e-2  # flat where it starts
    c = P.get("cliff", dtype="float64")
    xs = torch.linspace(-4, 4, 4001, dtype=torch.float64)
    pts = torch.stack([xs, torch.zeros_like(xs)], -1)
    assert float(c.grad(pts)[:, 0].abs().max()) > 40  # the wall: gradient up to H k / 4 = 50
    assert float(c.grad(c.initial_point(0)).norm()) < 1.0  # but gentle at the start


@pytest.mark.parametrize("name", ANALYTIC)
def test_initial_points(name):
    p = P.get(name)
    assert isinstance(p, Analytic) and p.vectorizable
    x0 = p.initial_point(0)
    assert x0.dtype == torch.float32 and torch.equal(x0, torch.tensor(p.start, dtype=torch.float32))
    x1, x1b = p.initial_point(1), p.initial_point(1)
    assert torch.equal(x1, x1b) and not torch.equal(x1, x0)
    m = p.model(3)
    assert torch.equal(m.x.detach(), p.initial_point(3)) and p.size == 2
    b = next(p.batches(0))
    torch.testing.assert_close(p.loss(m, b), p.value(m.x))
    assert set(p.evaluate(m)) >= {"val_loss", "test_loss", "suboptimality", "dist_to_opt"}
    (x_lo, x_hi), (y_lo, y_hi) = p.bounds
    assert x_lo < float(p.minimizer[0]) < x_hi and y_lo < float(p.minimizer[1]) < y_hi


def test_gd_converges_on_rosenbrock_nd_start():
    r = P.get("rosenbrock", dim=4, dtype="float64")
    assert r.start == (-1.2, 1.0, -1.2, 1.0)
    with pytest.raises(ValueError, match="dim must be >= 2"):
        P.get("rosenbrock", dim=1)


def test_quadratic_exact():
    q = P.get("quadratic", dim=6, spectrum="geometric", condition_number=1e3, basis="random", minimizer="random", dtype="float64")
    H = q.hessian()
    torch.testing.assert_close(torch.linalg.eigvalsh(H).flip(0), torch.tensor(q.eigenvalues, dtype=torch.float64))
    assert q.condition_number == pytest.approx(1e3)
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(q.value(x).sum(), x)
    torch.testing.assert_close(q.grad(x.detach()), auto)
    Hauto = torch.autograd.functional.hessian(lambda v: q.value(v), torch.zeros(6, dtype=torch.float64))
    torch.testing.assert_close(Hauto, H)
    assert float(q.value(q.minimizer)) == 0.0 and float(q.grad(q.minimizer).abs().max()) == 0.0
    assert abs(H - torch.diag(torch.diag(H))).max() > 1e-3  # rotated: not diagonal
    qd = P.get("quadratic", dim=4, spectrum="power", power=2.0)
    torch.testing.assert_close(torch.diag(qd.hessian()), torch.tensor([1, 1 / 4, 1 / 9, 1 / 16], dtype=torch.float64))
    U = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0].numpy()
    qg = P.get("quadratic", dim=3, spectrum=[3.0, 2.0, 1.0], basis=U)
    torch.testing.assert_close(qg.hessian(), torch.tensor((U * [3.0, 2.0, 1.0]) @ U.T))
    with pytest.raises(ValueError, match="not orthogonal"):
        P.get("quadratic", dim=3, basis=2 * U)
    with pytest.raises(ValueError, match="spectrum"):
        P.get("quadratic", spectrum="bogus")
