"""rotated_linear_regression: linear regression seen in a basis on the geodesic from the identity to the
eigenbasis; in the eigenbasis full-batch GN^-1 with lr 1 solves it in one step."""

from __future__ import annotations

import pytest
import torch

from precond.experiments.run_config import RunConfig
from precond.experiments.runner import run_one
from precond.problems import get

ARGS = {"block_sizes": [3, 3, 4], "block_rhos": [0.9, 0.5, 0.2], "block_scales": [1.0, 0.5, 0.1], "dtype": "float64"}


def test_identity_end_is_linear_regression():
    rot, base = get("rotated_linear_regression", basis_alpha=0.0, batch_size=4, noise_std=0.5, **ARGS), \
        get("linear_regression", batch_size=4, noise_std=0.5, **ARGS)  # fmt: skip
    assert torch.allclose(rot.basis_matrix, torch.eye(10, dtype=torch.float64), atol=1e-12)
    b1, b2 = next(rot.batches(3)), next(base.batches(3))
    assert torch.allclose(b1.inputs, b2.inputs, atol=1e-12) and torch.equal(b1.targets, b2.targets)


@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_rotated_coordinates(alpha):
    rot, base = get("rotated_linear_regression", basis_alpha=alpha, batch_size=5, **ARGS), get("linear_regression", batch_size=5, **ARGS)
    U = rot.basis_matrix
    assert torch.allclose(U.T @ U, torch.eye(10, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(rot.hessian(), U.T @ base.hessian() @ U, atol=1e-12)
    w = torch.randn(7, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(rot.value(w @ U), base.value(w), rtol=1e-12)  # y = U^T w, as rows w U
    assert torch.allclose(rot.minimizer, U.T @ base.minimizer, atol=1e-12)
    assert torch.allclose(next(rot.batches(1)).inputs, next(base.batches(1)).inputs @ U, atol=1e-12)  # the same samples


def test_eigenbasis_diagonalizes_and_gn_inverse_solves_in_one_step():
    rot = get("rotated_linear_regression", basis_alpha=1.0, **ARGS)
    H = rot.hessian()
    assert float((H - torch.diag(torch.diagonal(H))).abs().max()) < 1e-12
    lam = torch.linalg.eigvalsh(get("linear_regression", **ARGS).hessian()).flip(0)
    assert torch.allclose(torch.diagonal(H), lam, atol=1e-12)
    cfg = RunConfig("t", "rotated_linear_regression", {**ARGS, "basis_alpha": 1.0}, "GaussNewtonDiag", "GN^-1",
                    {"lr": 1.0, "power": -1.0, "damping": 0.0}, 0, 2, 1, 1e8)  # fmt: skip
    excess = run_one(cfg)["history"]["excess_loss"]
    assert excess[0] > 0.1 and excess[1] <= 1e-24 * excess[0] and excess[2] <= 1e-24 * excess[0]
    with pytest.raises(ValueError, match="basis_alpha"):
        get("rotated_linear_regression", basis_alpha=1.5, **ARGS)
