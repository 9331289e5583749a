"""CurvatureFeeder: every k steps, parameter order, a short training run, and RotatedOptimizer."""

from __future__ import annotations

import pytest
import torch

from precond.curvature import CurvatureFeeder, RotatedOptimizer, exact, flatten
from precond.optim import Adam, GaussNewtonDiag, Sophia

from ._helpers import problem, train


def test_feeder_every_k_and_order():
    model, loss_fn, outputs_fn = problem("cross_entropy")
    params = list(model.parameters())
    # groups in an order different from the model's
    opt = GaussNewtonDiag([{"params": params[2:]}, {"params": params[:2]}], lr=0.1, update_every=3)
    feeder = CurvatureFeeder(opt, model, loss_type="cross_entropy")
    assert feeder.estimator == "ggn" and feeder.every == 3
    done = [feeder.maybe_update(outputs_fn=outputs_fn, loss_fn=loss_fn) for _ in range(7)]
    assert done == [True, False, False, True, False, False, True]
    g = exact.ggn_diagonal(model, outputs_fn, "cross_entropy")
    got = flatten([opt.state[p]["curvature"] for p in params])
    torch.testing.assert_close(got, g)
    assert all(p.grad is None for p in params)


def test_feeder_official_sophia_schedule_and_errors():
    model, loss_fn, outputs_fn = problem("logistic")
    opt = Sophia(model.parameters())
    feeder = CurvatureFeeder(opt, model, loss_type="logistic", first=10)
    done = [feeder.maybe_update(outputs_fn=outputs_fn) for _ in range(21)]
    assert [i for i, d in enumerate(done) if d] == [10, 20]
    with pytest.raises(TypeError, match="update_curvature"):
        CurvatureFeeder(Adam(model.parameters()), model, loss_type="mse")
    with pytest.raises(ValueError, match="loss_type"):
        CurvatureFeeder(opt, model)
    with pytest.raises(ValueError, match="every"):
        CurvatureFeeder(opt, model, loss_type="mse", every=0)


@pytest.mark.parametrize("make", [
    lambda ps: GaussNewtonDiag(ps, lr=0.2, power=-1, damping=1e-2, beta2=0.9, estimator="gnb", curvature_samples=8),
    lambda ps: GaussNewtonDiag(ps, lr=0.3, power=-1, damping=1e-2),
    lambda ps: GaussNewtonDiag(ps, lr=0.2, power=-0.5, damping=1e-4, estimator="hutchinson", curvature_samples=4),
    lambda ps: Sophia(ps, lr=0.05, weight_decay=0.0, update_every=2),
])  # fmt: skip
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # GaussNewtonDiag's note on negative Hutchinson entries
def test_training_reduces_loss(make):
    run = train(make)
    assert run.end < 0.8 * run.start


# ---- RotatedOptimizer (issue 11, point 10) ----------------------------------------------------


def _orthogonal(d, seed):
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def test_feeder_reads_the_rotated_optimizers_settings():
    """The feeder takes the wrapped optimizer's estimator and schedule, not a default ``gnb``."""
    model, _, _ = problem("cross_entropy")
    u = _orthogonal(sum(p.numel() for p in model.parameters()), 0)
    rot = RotatedOptimizer(model, lambda ps: GaussNewtonDiag(ps, lr=0.1, estimator="hessian", update_every=3, curvature_samples=5), u)
    feeder = CurvatureFeeder(rot, model)
    assert (feeder.estimator, feeder.every, feeder.n_samples) == ("hessian", 3, 5)
    with pytest.raises(TypeError, match="takes no curvature|update_curvature"):
        CurvatureFeeder(RotatedOptimizer(model, lambda ps: Adam(ps), u), model, loss_type="mse")
    with pytest.raises(ValueError, match="not a trainable parameter of the model"):
        CurvatureFeeder(rot, problem("cross_entropy", seed=1)[0], loss_type="cross_entropy")


def test_feeder_without_curvature_estimator_asks_for_one():
    class Custom(torch.optim.SGD):
        def update_curvature(self, diag):
            self.fed = diag

    model, _, outputs_fn = problem("mse")
    with pytest.raises(ValueError, match="curvature_estimator.*estimator="):
        CurvatureFeeder(Custom(model.parameters(), lr=0.1), model, loss_type="mse")
    feeder = CurvatureFeeder(Custom(model.parameters(), lr=0.1), model, loss_type="mse", estimator="ggn")
    feeder.update(outputs_fn=outputs_fn)
    torch.testing.assert_close(flatten(feeder.optimizer.fed), exact.ggn_diagonal(model, outputs_fn, "mse"))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # GaussNewtonDiag's note on negative Hessian entries
@pytest.mark.parametrize("estimator", ["ggn", "hessian"])
def test_rotated_feeder_feeds_the_rotated_curvature(estimator):
    """Exact estimators give diag(U^T C U) of the wrapped coordinates, also for a subset of the
    model's parameters in another order (the other parameters' curvature does not enter)."""
    model, loss_fn, outputs_fn = problem("cross_entropy")
    params = list(model.parameters())
    full = exact.ggn(model, outputs_fn, "cross_entropy") if estimator == "ggn" else exact.hessian(model, loss_fn)
    offsets = torch.tensor([0] + [p.numel() for p in params]).cumsum(0)
    for which in ([0, 1, 2, 3], [2, 0]):
        idx = torch.cat([torch.arange(offsets[i], offsets[i + 1]) for i in which])
        u = _orthogonal(idx.numel(), 1)
        rot = RotatedOptimizer([params[i] for i in which], lambda ps: GaussNewtonDiag(ps, lr=0.1, estimator=estimator), u)
        CurvatureFeeder(rot, model, loss_type="cross_entropy").update(loss_fn=loss_fn, outputs_fn=outputs_fn)
        want = torch.einsum("ji,jk,ki->i", u, full[idx][:, idx], u)
        torch.testing.assert_close(rot.state[rot.y]["curvature"], want, rtol=1e-10, atol=1e-13)
        assert not torch.allclose(want, torch.diagonal(full)[idx], rtol=0.1)  # the basis matters


@pytest.mark.parametrize("make", [
    lambda ps: GaussNewtonDiag(ps, lr=0.1, power=-1, damping=1e-2),
    lambda ps: GaussNewtonDiag(ps, lr=0.2, power=-1, damping=1e-2, beta2=0.9, estimator="gnb", curvature_samples=8),
    lambda ps: Sophia(ps, lr=0.05, weight_decay=0.0, update_every=2),
    lambda ps: Sophia(ps, lr=0.05, weight_decay=0.0, update_every=2, estimator="hutchinson"),
])  # fmt: skip
def test_rotated_training_reduces_loss(make):
    """feeder + RotatedOptimizer(curvature optimizer) trains end to end in a random basis."""

    def rotated(params):
        params = list(params)
        return RotatedOptimizer(params, make, _orthogonal(sum(p.numel() for p in params), 2))

    run = train(rotated)
    assert run.feeder.updates == (40 if isinstance(run.feeder.optimizer.base, GaussNewtonDiag) else 20)
    assert run.end < 0.8 * run.start
