"""RotatedOptimizer and the geodesic between bases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from precond.curvature import RotatedOptimizer, align_signs, eigenbasis, geodesic, log_rotation
from precond.optim import Adam, GaussNewtonDiag


def random_orthogonal(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


def quadratic(seed=0, d=6):
    rng = np.random.default_rng(seed)
    lam = np.logspace(-2, 2, d)
    q = random_orthogonal(d, seed + 1)
    a = q @ np.diag(lam) @ q.T
    return torch.tensor(a), torch.tensor(rng.standard_normal(d)), lam, q


def test_identity_basis_equals_bare_optimizer():
    a, x0, _, _ = quadratic()
    x = x0.clone().requires_grad_(True)
    z = x0.clone().requires_grad_(True)
    rot = RotatedOptimizer(x, lambda p: Adam(p, lr=0.05, foreach=False, fused=False), torch.eye(6, dtype=torch.float64))
    bare = Adam([z], lr=0.05, foreach=False, fused=False)
    for _ in range(25):
        for p, opt in ((x, rot), (z, bare)):
            opt.zero_grad()
            (0.5 * p @ a @ p).backward()
            opt.step()
    torch.testing.assert_close(x.detach(), z.detach(), rtol=1e-13, atol=1e-15)


def test_eigenbasis_equals_rotated_problem():
    a, x0, lam, _ = quadratic()
    w, u = eigenbasis(a)
    assert np.allclose(np.sort(w.numpy()), np.sort(lam))
    x = x0.clone().requires_grad_(True)
    rot = RotatedOptimizer(x, lambda p: Adam(p, lr=0.05, foreach=False, fused=False), u)
    # Adam on the diagonal problem 0.5 y^T diag(w) y from y0 = U^T x0
    y = (u.T @ x0).clone().requires_grad_(True)
    bare = Adam([y], lr=0.05, foreach=False, fused=False)
    for _ in range(25):
        rot.zero_grad()
        (0.5 * x @ a @ x).backward()
        rot.step()
        bare.zero_grad()
        (0.5 * (w * y * y).sum()).backward()
        bare.step()
        torch.testing.assert_close(x.detach(), u @ y.detach(), rtol=1e-10, atol=1e-12)


def test_gn_inverse_in_eigenbasis_is_newton():
    """GN^-1 with D_ii = u_i^T A u_i in A's eigenbasis solves the dense quadratic in one step."""
    a, x0, _, _ = quadratic(d=5)
    b = torch.arange(5, dtype=torch.float64)
    _, u = eigenbasis(a)
    model = torch.nn.Linear(5, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(x0[:5].reshape(1, 5))
    rot = RotatedOptimizer(model, lambda p: GaussNewtonDiag(p, lr=1.0, damping=0.0), u)
    assert rot.needs_curvature
    rot.update_curvature_matrix(a)
    w = model.weight.reshape(-1)
    (0.5 * w @ a @ w - b @ w).backward()
    rot.step()
    torch.testing.assert_close(model.weight.detach().reshape(-1), torch.linalg.solve(a, b), rtol=1e-9, atol=1e-9)


def test_geodesic_end_points_and_orthogonality():
    u0, u1 = random_orthogonal(7, 3), random_orthogonal(7, 4)
    u1a = align_signs(u0, u1)
    m = u0.T @ u1a
    assert np.linalg.det(m) > 0
    assert (np.diag(m) >= 0).sum() >= 6  # all but possibly the one column flipped to fix det
    # same eigenbasis up to signs
    assert np.allclose(np.abs(u1a), np.abs(u1))
    np.testing.assert_allclose(geodesic(u0, u1, 0.0), u0, atol=1e-12)
    np.testing.assert_allclose(geodesic(u0, u1, 1.0), u1a, atol=1e-9)
    for alpha in (0.25, 0.5, 0.9):
        ua = geodesic(u0, u1, alpha)
        np.testing.assert_allclose(ua.T @ ua, np.eye(7), atol=1e-10)
    # constant speed: the distance from U0 grows linearly along the geodesic
    d = [np.linalg.norm(log_rotation(u0.T @ geodesic(u0, u1, a))) for a in (0.2, 0.4, 0.8)]
    np.testing.assert_allclose(np.array(d) / d[0], [1.0, 2.0, 4.0], rtol=1e-8)
    # torch in, torch out
    t = geodesic(torch.tensor(u0), torch.tensor(u1), 0.5)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64


def test_basis_bad_inputs():
    with pytest.raises(ValueError, match="not orthogonal"):
        RotatedOptimizer(torch.zeros(2, requires_grad=True), lambda p: Adam(p), torch.ones(2, 2))
    with pytest.raises(ValueError, match="2 entries"):
        RotatedOptimizer(torch.zeros(2, requires_grad=True), lambda p: Adam(p), torch.eye(3))
    u0 = np.eye(3)
    flip = np.diag([1.0, 1.0, -1.0])
    with pytest.raises(ValueError, match="determinant -1"):
        log_rotation(u0.T @ flip)
    with pytest.raises(ValueError, match="determinant -1|geodesic"):
        geodesic(u0, flip, 0.5, align=False)
    # aligned, the reflection becomes the identity
    np.testing.assert_allclose(geodesic(u0, flip, 0.5), np.eye(3), atol=1e-12)
    with pytest.raises(TypeError, match="takes no curvature"):
        RotatedOptimizer(torch.zeros(2, requires_grad=True), lambda p: Adam(p), np.eye(2)).update_curvature([torch.ones(2)])
