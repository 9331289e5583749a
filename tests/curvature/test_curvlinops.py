"""An independent reference: curvlinops (Dangel et al., ``curvlinops-for-pytorch``, test-only).

Its ``GGNLinearOperator`` and ``HessianLinearOperator`` times the identity give the full GGN and
Hessian of the batch loss, built by its own code (``torch.func`` jvp/vjp of a functional model
and an ``nn`` loss module), not by precond's. The exact quantities of :mod:`precond.curvature.exact`
must match them to rounding, and the means of the estimators must lie within a confidence
interval (:mod:`._helpers`) of their diagonals, on an MLP (three losses), a CNN and a model with
``(N, T, C)`` sequence outputs.

Loss conventions: precond's mse is ``0.5 * ||o - y||^2`` summed over the last dim and averaged
over the rows, i.e. ``MSELoss(reduction="sum") / (2 * rows)``; its cross entropy and logistic loss
are torch's ``"mean"`` losses. ``CrossEntropyLoss`` wants the class dim second, so the sequence
model is wrapped in a ``(N, T, C) -> (N, C, T)`` permute for curvlinops (this changes nothing in
parameter space).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from precond.curvature import exact, gnb_samples, hutchinson_samples
from precond.curvature.losses import loss_from_outputs

from ._helpers import clt_half_width, hutchinson_half_width

curvlinops = pytest.importorskip("curvlinops")  # installed by `make install` (Makefile): these tests run in `make test`
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")  # raised inside curvlinops' imports


class SeqNet(nn.Module):
    """``(N, T, c_in) -> (N, T, c)``: a causal convolution over time, tanh, a linear read-out."""

    def __init__(self, c_in: int = 3, hidden: int = 4, c: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, hidden, 2, padding=1)
        self.out = nn.Linear(hidden, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.tanh(self.conv(x.transpose(1, 2))[..., : x.shape[1]])
        return self.out(z.transpose(1, 2))


class ClassSecond(nn.Module):
    def forward(self, o: torch.Tensor) -> torch.Tensor:
        return o.transpose(1, 2)


@dataclass
class Case:
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    loss_type: str

    def outputs_fn(self, m: nn.Module):
        o = m(self.x)
        return (o.squeeze(-1) if self.loss_type == "logistic" else o), self.y

    def loss_fn(self, m: nn.Module) -> torch.Tensor:
        return loss_from_outputs(self.loss_type, *self.outputs_fn(m))

    def reference(self, which: str) -> torch.Tensor:
        """curvlinops' full GGN (``which="ggn"``) or Hessian, in precond's loss scaling."""
        model_func, y, scale = self.model, self.y, 1.0
        if self.loss_type == "mse":
            loss_func, scale = nn.MSELoss(reduction="sum"), 1.0 / (2 * self.y[..., 0].numel())
        elif self.loss_type == "logistic":
            loss_func, y = nn.BCEWithLogitsLoss(), self.y.unsqueeze(-1)
        else:
            loss_func = nn.CrossEntropyLoss()
            if self.y.dim() > 1:
                model_func = nn.Sequential(self.model, ClassSecond())
        params = [p for p in self.model.parameters() if p.requires_grad]
        cls = curvlinops.GGNLinearOperator if which == "ggn" else curvlinops.HessianLinearOperator
        op = cls(model_func, loss_func, params, [(self.x, y)])
        return scale * (op @ torch.eye(op.shape[1], dtype=torch.float64))


def make_case(name: str) -> Case:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    arch, loss_type = name.split("-")
    if arch == "mlp":
        k = 1 if loss_type == "logistic" else 3
        model, x = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, k)), torch.randn(8, 3, generator=g)
        rows = (8,)
    elif arch == "cnn":
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 3 * 3, 3))
        x, rows = torch.randn(6, 1, 5, 5, generator=g), (6,)
    else:
        model, x, rows = SeqNet(), torch.randn(4, 5, 3, generator=g), (4, 5)
    x = x.double()
    if loss_type == "mse":
        y = torch.randn(*rows, 3, generator=g, dtype=torch.float64)
    elif loss_type == "logistic":
        y = torch.randint(0, 2, rows, generator=g).double()
    else:
        y = torch.randint(0, 3, rows, generator=g)
    return Case(model.double(), x, y, loss_type)


CASES = ["mlp-mse", "mlp-logistic", "mlp-cross_entropy", "cnn-cross_entropy", "seq-cross_entropy", "seq-mse"]


@pytest.mark.parametrize("name", CASES)
def test_exact_ggn_and_hessian_match_curvlinops(name):
    case = make_case(name)
    ggn, hess = case.reference("ggn"), case.reference("hessian")
    assert not torch.allclose(ggn, hess, atol=1e-6)  # nonlinear models: the two differ, both are checked
    torch.testing.assert_close(exact.ggn(case.model, case.outputs_fn, case.loss_type), ggn, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(exact.ggn_diagonal(case.model, case.outputs_fn, case.loss_type), torch.diagonal(ggn), rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(exact.hessian(case.model, case.loss_fn), hess, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(exact.hessian_diagonal(case.model, case.loss_fn), torch.diagonal(hess), rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(exact.hessian_diagonal(case.model, case.loss_fn, max_dense=0), torch.diagonal(hess), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", CASES)
def test_gnb_is_unbiased_for_curvlinops_ggn_diagonal(name):
    case = make_case(name)
    want = torch.diagonal(case.reference("ggn"))
    samples = gnb_samples(case.model, case.outputs_fn, case.loss_type, 4000, generator=torch.Generator().manual_seed(3))
    mean, half = samples.mean(0), clt_half_width(samples)
    assert torch.all((mean - want).abs() <= half + 1e-12), ((mean - want).abs() / half).max()
    big = want > 1e-3 * want.max()
    assert (half[big] < 0.5 * want[big]).float().mean() > 0.8  # the interval would catch a wrong scale


@pytest.mark.parametrize("name", ["mlp-mse", "mlp-cross_entropy", "cnn-cross_entropy", "seq-cross_entropy"])
def test_hutchinson_is_unbiased_for_curvlinops_hessian_diagonal(name):
    case = make_case(name)
    hess = case.reference("hessian")
    want = torch.diagonal(hess)
    n = 6000
    mean = hutchinson_samples(case.model, case.loss_fn, n, generator=torch.Generator().manual_seed(4)).mean(0)
    half = hutchinson_half_width(hess, n)
    assert torch.all((mean - want).abs() <= half), ((mean - want).abs() / half).max()
    # the (rigorous, loose) interval would catch an estimate off by a factor 2 on most coordinates
    big = want.abs() > 1e-3 * want.abs().max()
    assert (half[big] < want.abs()[big]).float().mean() > 0.5
