"""CurvatureSchedule: the names and fields checked, ``of(optimizer)``, and the feeder driven by one."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from precond.curvature import CurvatureFeeder, CurvatureSchedule, RotatedOptimizer, exact, flatten
from precond.optim import GaussNewtonDiag, Sophia

from ._helpers import problem

NAMES = "'ggn', 'hessian', 'gnb', 'hutchinson'"


def test_fields_are_checked_and_the_estimator_canonical():
    assert CurvatureSchedule("EXACT").estimator == "ggn" and CurvatureSchedule("exact_hessian").estimator == "hessian"
    with pytest.raises(ValueError, match=rf"^invalid estimator='kfac': must be one of {NAMES} \(aliases: 'exact'"):
        CurvatureSchedule("kfac")
    with pytest.raises(TypeError, match="estimator must be a string, got 3"):
        CurvatureSchedule(3)
    for field, value, low in [("every", 0, 1), ("every", 2.0, 1), ("every", True, 1), ("n_samples", 0, 1), ("first", -1, 0)]:
        with pytest.raises(ValueError, match=rf"^invalid {field}={value!r}: must be an integer >= {low}$"):
            CurvatureSchedule("gnb", **{field: value})
    with pytest.raises(dataclasses.FrozenInstanceError):
        CurvatureSchedule("gnb").every = 2


def test_due_on_first_then_every_k():
    assert [c for c in range(31) if CurvatureSchedule("gnb", every=10, first=10).due(c)] == [10, 20, 30]
    assert [c for c in range(7) if CurvatureSchedule("ggn", every=3).due(c)] == [0, 3, 6]


def test_of_reads_the_optimizers_settings_and_checks_its_estimator():
    x = torch.zeros(3, requires_grad=True)
    opt = Sophia([x], estimator="Hutchinson", update_every=4, curvature_samples=2)
    assert opt.curvature_estimator == "hutchinson"  # the optimizer keeps the name, lower-cased
    assert CurvatureSchedule.of(opt) == CurvatureSchedule("hutchinson", every=4, n_samples=2, first=0)
    assert CurvatureSchedule.of(opt, every=3, first=1, n_samples=None) == CurvatureSchedule("hutchinson", 3, 2, 1)
    assert CurvatureSchedule.of(GaussNewtonDiag([x], estimator="exact")).estimator == "ggn"
    rot = RotatedOptimizer([x], lambda ps: GaussNewtonDiag(ps, estimator="hessian", update_every=5), torch.eye(3))
    assert CurvatureSchedule.of(rot) == CurvatureSchedule("hessian", every=5)
    # optim does not know the names (it may not import the curvature layer): the schedule refuses
    bad = Sophia([x], estimator="kfac")
    with pytest.raises(ValueError, match=rf"^invalid estimator='kfac': must be one of {NAMES}"):
        CurvatureSchedule.of(bad)
    with pytest.raises(ValueError, match="invalid estimator='kfac'"):
        CurvatureFeeder(bad, torch.nn.Linear(3, 1), loss_type="mse")
    with pytest.raises(TypeError, match="estimator must be a string"):
        Sophia([x], estimator=3)
    with pytest.raises(TypeError, match="no field 'samples'"):
        CurvatureSchedule.of(opt, samples=3)
    with pytest.raises(ValueError, match=rf"SGD has no curvature_estimator: pass estimator= \({NAMES}\)"):
        CurvatureSchedule.of(torch.optim.SGD([x], lr=0.1))
    assert CurvatureSchedule.of(torch.optim.SGD([x], lr=0.1), estimator="gnb") == CurvatureSchedule("gnb")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # GaussNewtonDiag's note on negative Hessian entries
def test_feeder_follows_an_explicit_schedule():
    """The schedule given, not the optimizer's settings (GN asks for the GGN every step)."""
    model, loss_fn, outputs_fn = problem("mse")
    opt = GaussNewtonDiag(model.parameters(), lr=0.1)
    feeder = CurvatureFeeder(opt, model, schedule=CurvatureSchedule("hessian", every=2, first=1))
    assert (feeder.estimator, feeder.every, feeder.n_samples, feeder.first) == ("hessian", 2, 1, 1)
    done = [feeder.maybe_update(loss_fn=loss_fn, outputs_fn=outputs_fn) for _ in range(6)]
    assert done == [False, True, False, True, False, True]
    torch.testing.assert_close(flatten(opt.curvature()), exact.hessian_diagonal(model, loss_fn))
    with pytest.raises(TypeError, match="schedule= or the fields"):
        CurvatureFeeder(opt, model, schedule=CurvatureSchedule("ggn"), every=2, loss_type="mse")
    with pytest.raises(TypeError, match="schedule must be a CurvatureSchedule"):
        CurvatureFeeder(opt, model, schedule={"estimator": "ggn"}, loss_type="mse")
    with pytest.raises(ValueError, match="estimator 'gnb' needs loss_type"):
        CurvatureFeeder(opt, model, schedule=CurvatureSchedule("gnb"))
