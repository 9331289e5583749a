"""CurvatureFeeder: every k steps, parameter order, and a short training run."""

from __future__ import annotations

import pytest
import torch

from precond.curvature import CurvatureFeeder, exact, flatten
from precond.optim import Adam, GaussNewtonDiag, Sophia

from ._helpers import problem


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
    lambda ps: GaussNewtonDiag(ps, lr=0.05, power=-0.5, damping=1e-4, estimator="hutchinson", curvature_samples=4),
    lambda ps: Sophia(ps, lr=0.05, weight_decay=0.0, update_every=2),
])  # fmt: skip
def test_training_reduces_loss(make):
    torch.manual_seed(0)
    model, loss_fn, outputs_fn = problem("cross_entropy", n=32)
    opt = make(model.parameters())
    feeder = CurvatureFeeder(opt, model, loss_type="cross_entropy", generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        start = float(loss_fn(model))
    for _ in range(40):
        feeder.maybe_update(outputs_fn=outputs_fn, loss_fn=loss_fn)
        opt.zero_grad()
        loss_fn(model).backward()
        opt.step()
    with torch.no_grad():
        assert float(loss_fn(model)) < 0.8 * start
