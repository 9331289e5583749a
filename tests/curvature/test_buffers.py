"""Curvature computations leave a model's buffers and train/eval modes as they found them
(issue 11, point 12), and BatchNorm in train mode means the loss with batch statistics."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from precond.curvature import CurvatureFeeder, estimate_diagonal, exact, gnb_diagonal, hutchinson_diagonal
from precond.curvature.diagnostics.base import flat_grad
from precond.curvature.losses import loss_from_outputs
from precond.curvature.params import flat_params, flatten, preserved_state, set_flat_params
from precond.optim import GaussNewtonDiag

from ._helpers import fd_jacobian


def bn_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 3)).double()


def bn_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 3 * 3, 3)).double()


def batch(model: nn.Module, n: int = 8):
    g = torch.Generator().manual_seed(1)
    shape = (n, 3) if isinstance(model[0], nn.Linear) else (n, 1, 5, 5)
    return torch.randn(*shape, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def closures(model: nn.Module):
    x, y = batch(model)
    return (lambda m: loss_from_outputs("cross_entropy", m(x), y)), (lambda m: (m(x), y))


def state(model: nn.Module):
    return {k: v.clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()]


def assert_unchanged(model: nn.Module, before) -> None:
    buffers, modes = before
    after = model.state_dict()
    for k, v in buffers.items():
        assert torch.equal(after[k], v), k
    assert [m.training for m in model.modules()] == modes
    assert all(m.track_running_stats for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))


def _warm(model: nn.Module) -> None:
    """Non-trivial running statistics (so that eval mode differs from train mode)."""
    x, _ = batch(model, n=16)
    with torch.no_grad():
        model(x * 2 + 1)


COMPUTATIONS = {
    "hessian": lambda m, lf, of: exact.hessian(m, lf),
    "hessian_diagonal": lambda m, lf, of: exact.hessian_diagonal(m, lf),
    "hessian_diagonal_hvp": lambda m, lf, of: exact.hessian_diagonal(m, lf, max_dense=0),
    "hvp": lambda m, lf, of: exact.HVP(m, lf)(torch.ones(exact.HVP(m, lf).dim, dtype=torch.float64)),
    "jacobian": lambda m, lf, of: exact.jacobian(m, of, "cross_entropy"),
    "ggn": lambda m, lf, of: exact.ggn(m, of, "cross_entropy"),
    "ggn_diagonal": lambda m, lf, of: exact.ggn_diagonal(m, of, "cross_entropy"),
    "ggnvp": lambda m, lf, of: exact.GGNVP(m, of, "cross_entropy")(flat_params(m)),
    "gnb": lambda m, lf, of: gnb_diagonal(m, of, "cross_entropy", n_samples=3),
    "hutchinson": lambda m, lf, of: hutchinson_diagonal(m, lf, n_samples=3),
    "estimate_diagonal": lambda m, lf, of: [estimate_diagonal(m, k, loss_fn=lf, outputs_fn=of, loss_type="cross_entropy") for k in ("ggn", "gnb", "hessian", "hutchinson")],
    "feeder": lambda m, lf, of: CurvatureFeeder(GaussNewtonDiag(m.parameters()), m, loss_type="cross_entropy").update(outputs_fn=of),
    "flat_grad": lambda m, lf, of: flat_grad(m, lf),
}  # fmt: skip


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("make", [bn_mlp, bn_cnn], ids=["bn1d", "bn2d"])
@pytest.mark.parametrize("name", list(COMPUTATIONS))
def test_curvature_leaves_buffers_and_modes(name, make, train):
    model = make()
    _warm(model)
    model.train(train)
    loss_fn, outputs_fn = closures(model)
    before = state(model)
    COMPUTATIONS[name](model, loss_fn, outputs_fn)
    assert_unchanged(model, before)


def test_errors_leave_buffers_and_modes():
    """An error raised after the forward (a bad basis, a closure that fails or flips the mode)
    leaves the running statistics and the modes as they were."""
    model = bn_mlp()
    _warm(model)
    loss_fn, outputs_fn = closures(model)
    before = state(model)
    with pytest.raises(ValueError, match="basis"):
        exact.ggn_diagonal(model, outputs_fn, "cross_entropy", basis=torch.eye(3, dtype=torch.float64))

    def failing(m):
        out = outputs_fn(m)
        m.eval()
        m[1].running_mean.add_(1.0)
        raise RuntimeError("boom")

    for fn in (lambda: exact.ggn(model, failing, "cross_entropy"), lambda: gnb_diagonal(model, failing, "cross_entropy"), lambda: exact.HVP(model, failing)):
        with pytest.raises(RuntimeError, match="boom"):
            fn()
        assert_unchanged(model, before)
    # a buffer the block leaves untouched is not written (graphs that saved it stay valid)
    version = model[1].running_mean._version
    with preserved_state(model):
        pass
    assert model[1].running_mean._version == version


@pytest.mark.parametrize("make", [bn_mlp, bn_cnn], ids=["bn1d", "bn2d"])
def test_train_mode_curvature_uses_batch_statistics(make):
    """In train mode the curvature is that of the training loss (batch statistics): the Hessian
    against central differences of autograd gradients of a train-mode copy, the GGN against J^T H J
    from finite differences; in eval mode the running statistics make it a different function."""
    model = make()
    _warm(model)
    loss_fn, outputs_fn = closures(model)
    probe = copy.deepcopy(model)  # train mode: its running statistics change, its outputs do not depend on them
    x0 = flat_params(probe)

    def grad(x):
        set_flat_params(probe, x)
        return flatten(torch.autograd.grad(loss_fn(probe), list(probe.parameters())))

    def outputs(x):
        set_flat_params(probe, x)
        with torch.no_grad():
            return outputs_fn(probe)[0]

    h = exact.hessian_diagonal(model, loss_fn)
    torch.testing.assert_close(h, torch.diagonal(fd_jacobian(grad, x0)), atol=1e-6, rtol=1e-5)
    j_fd, out, y = fd_jacobian(outputs, x0), outputs(x0), outputs_fn(model)[1]
    h_out = fd_jacobian(lambda o: torch.func.grad(lambda oo: loss_from_outputs("cross_entropy", oo.reshape(out.shape), y))(o), out.reshape(-1))
    torch.testing.assert_close(exact.ggn_diagonal(model, outputs_fn, "cross_entropy"), torch.diagonal(j_fd.T @ h_out @ j_fd), atol=1e-6, rtol=1e-5)
    model.eval()
    assert not torch.allclose(exact.hessian_diagonal(model, loss_fn), h, rtol=1e-2)
