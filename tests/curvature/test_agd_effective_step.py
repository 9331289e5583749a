"""AGD's effective step ``lr / max(sqrt(b_hat), delta)`` (curvature/diagnostics/agd_step.py),
against the step AGD actually takes."""

from __future__ import annotations

import math

import pytest
import torch

from precond.curvature.diagnostics import AGDEffectiveStep, StepContext, agd_effective_steps
from precond.optim import AGD, Adam


def _trained(delta: float, steps: int = 5, amsgrad: bool = False) -> tuple[AGD, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    w = torch.randn(50, dtype=torch.float64, requires_grad=True)
    scale = torch.logspace(-4, 1, 50, dtype=torch.float64)
    opt = AGD([w], lr=0.01, delta=delta, amsgrad=amsgrad)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (scale * w * w).sum()).backward()
        opt.step()
    return opt, w, scale


@pytest.mark.parametrize("delta", [1e-6, 1e-2, 10.0])
def test_effective_step_is_the_multiplier_of_m_hat(delta):
    opt, w, scale = _trained(delta)
    eta = agd_effective_steps(opt)
    # one more step by hand: the step AGD takes is eta_new * m_hat_new; compare with the optimizer
    before = w.detach().clone()
    opt.zero_grad()
    (0.5 * (scale * w * w).sum()).backward()
    opt.step()
    st = opt.state[w]
    t = int(st["step"])
    m_hat = st["exp_avg"] / (1 - 0.9**t)
    eta_new = agd_effective_steps(opt)
    assert torch.allclose(before - w.detach(), eta_new * m_hat, rtol=1e-9, atol=1e-14)  # atol: rounding of w - w_new at |w| ~ 1
    assert eta.shape == (50,) and float(eta.max()) <= 0.01 / delta * (1 + 1e-12)


def test_sgd_branch_is_lr_over_delta_and_the_summary():
    opt, w, _ = _trained(1e3)  # delta above every sqrt(b_hat): every coordinate on the SGD branch
    assert torch.allclose(agd_effective_steps(opt), torch.full((50,), 0.01 / 1e3, dtype=torch.float64))
    d = AGDEffectiveStep()
    ctx = StepContext(step=5, model=torch.nn.Linear(1, 1), optimizer=opt, loss_fn=lambda m: 0)
    out = d.after_step(ctx)
    assert out["sgd_branch"] == pytest.approx(1e-5) and out["median"] == pytest.approx(1e-5)
    assert out["geomean"] == pytest.approx(1e-5) and out["min"] == out["max"] == pytest.approx(1e-5)
    assert d.applies_to(opt) and not d.applies_to(Adam([torch.zeros(1, requires_grad=True)]))


def test_amsgrad_reads_the_running_maximum_and_nan_before_a_step():
    opt, w, _ = _trained(1e-8, amsgrad=True)
    st = opt.state[w]
    b_hat = st["max_exp_avg_sq"] / (1 - 0.999 ** int(st["step"]))
    assert torch.allclose(agd_effective_steps(opt), 0.01 / b_hat.sqrt().clamp(min=1e-8))
    fresh = AGD([torch.zeros(3, requires_grad=True)], lr=0.1)
    out = AGDEffectiveStep().after_step(StepContext(step=0, model=torch.nn.Linear(1, 1), optimizer=fresh, loss_fn=lambda m: 0))
    assert math.isnan(out["median"]) and out["sgd_branch"] == pytest.approx(0.1 / 1e-5)
    with pytest.raises(TypeError, match="needs an AGD optimizer"):
        agd_effective_steps(Adam([torch.zeros(1, requires_grad=True)]))


def test_a_batched_agd_gives_each_row_its_own_lr():
    torch.manual_seed(0)
    lrs = [0.01, 0.3]
    W = torch.randn(2, 6, dtype=torch.float64)
    singles = [AGD([W[i].clone().requires_grad_(True)], lr=lr, delta=1e-3) for i, lr in enumerate(lrs)]
    P = W.clone().requires_grad_(True)
    batched = AGD.batched(P, lrs, delta=1e-3)
    scale = torch.logspace(-4, 1, 6, dtype=torch.float64)
    for _ in range(4):
        for opt in singles + [batched]:
            for p in opt.param_groups[0]["params"]:
                p.grad = scale * p.detach()
            opt.step()
    want = torch.cat([agd_effective_steps(o) for o in singles])
    got = agd_effective_steps(batched)
    assert got.shape == (12,) and torch.allclose(got, want, rtol=1e-12, atol=0)  # (with the group's lr 1.0: 30 to 100x off)
