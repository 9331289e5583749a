"""loss_from_outputs checks shapes instead of broadcasting (issue 11, point 11)."""

from __future__ import annotations

import pytest
import torch

from precond.curvature.losses import loss_from_outputs
from precond.problems.base import Problem


def problem_loss(loss_type, outputs, targets):
    """The problems layer's copy, ``Problem.loss_from_outputs``."""
    return type("P", (Problem,), {"loss_type": loss_type})().loss_from_outputs(outputs, targets)


@pytest.mark.parametrize("loss", [loss_from_outputs, problem_loss], ids=["curvature", "problem"])
def test_mismatched_shapes_raise_one_line_naming_them(loss):
    o, t = torch.zeros(6, 1), torch.arange(6.0)
    # (6, 1) - (6,) broadcasts to (6, 6): 0.5 * mean over 36 pairs instead of the 6 rows
    with pytest.raises(ValueError, match=r"^mse loss: outputs \(6, 1\) and targets \(6,\) differ in shape .*outputs\.squeeze\(-1\)\)$"):
        loss("mse", o, t)
    with pytest.raises(ValueError, match=r"targets \(6, 1\).*targets\.squeeze\(-1\)"):
        loss("mse", t, o)
    with pytest.raises(ValueError, match=r"^logistic loss: outputs \(6, 1\) and targets \(6,\)"):
        loss("logistic", o, t)
    with pytest.raises(ValueError, match=r"^cross_entropy loss: logits \(2, 3, 4\) need targets \(2, 3\).*got \(3, 2\)$"):
        loss("cross_entropy", torch.zeros(2, 3, 4), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="needs targets"):
        loss("mse", o, None)


def test_matching_shapes_give_the_row_mean():
    o = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert float(loss_from_outputs("mse", o, torch.zeros(2, 2))) == pytest.approx(0.5 * (5 + 34) / 2)
    assert float(loss_from_outputs("mse", o[:, 0], torch.zeros(2))) == pytest.approx(0.5 * (1 + 9) / 2)
    assert float(problem_loss("mse", o[:, :1], torch.zeros(2, 1))) == pytest.approx(0.5 * (1 + 9) / 2)
    logits = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([[0, 1, 2], [3, 0, 1]])
    # (N, T, C) logits take (N, T) class indices or the flat (N*T,) rows: the same loss
    assert torch.equal(loss_from_outputs("cross_entropy", logits, y), loss_from_outputs("cross_entropy", logits, y.reshape(-1)))
