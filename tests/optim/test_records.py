"""One contract per rule (issue 12): the hyperparameter record is the constructor, the checks and
the step's input; the coefficient record is what the loop, foreach and the kernels read (the C++
by field name, checked at load); the weight-decay mode is an explicit argument of one shared
pre-step; AGD's adaptive fraction is reduced in one place."""

from __future__ import annotations

import inspect

import pytest
import torch

import precond.optim as po
from precond.optim.functional import AdamHyper, AGDHyper, GaussNewtonHyper, SGDHyper, SophiaHyper, adam
from precond.optim.functional._rule import COEFFICIENTS
from precond.optim.kernels import _build

#: the constructors as they were written out by hand before the records (issue 11's code)
SIGNATURES = {
    po.AGD: "(params, lr=0.001, betas=(0.9, 0.999), delta=1e-05, weight_decay=0.0, weight_decouple=True, fixed_decay=False, "
            "amsgrad=False, win=False, clip=None, *, win_z_init='param', maximize=False, foreach=None, fused=None, nan_policy='raise')",
    po.Adam: "(params, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False, *, decoupled_weight_decay=False, "
             "eps_inside_sqrt=False, maximize=False, foreach=None, fused=None, nan_policy='raise')",
    po.AdamW: "(params, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, amsgrad=False, *, eps_inside_sqrt=False, "
              "maximize=False, foreach=None, fused=None, nan_policy='raise')",
    po.SGD: "(params, lr=0.001, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *, momentum_style='heavy_ball', "
            "decoupled_weight_decay=False, maximize=False, foreach=None, fused=None, nan_policy='raise')",
    po.AdaGrad: "(params, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, *, "
                "eps_inside_sqrt=False, maximize=False, foreach=None, fused=None, nan_policy='raise')",
    po.AdaGradNorm: "(params, lr=0.1, initial_accumulator_value=0.0, eps=1e-10, weight_decay=0.0, *, scope='group', "
                    "maximize=False, foreach=None, fused=None, nan_policy='raise')",
    po.RMSProp: "(params, lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.0, centered=False, *, "
                "eps_inside_sqrt=False, maximize=False, foreach=None, fused=None, nan_policy='raise')",
    po.AdaBound: "(params, lr=0.001, betas=(0.9, 0.999), final_lr=0.1, gamma=0.001, eps=1e-08, weight_decay=0.0, "
                 "amsbound=False, *, maximize=False, foreach=None, fused=None, nan_policy='raise')",
    po.Sophia: "(params, lr=0.0001, betas=(0.965, 0.99), rho=0.04, weight_decay=0.1, *, bs=1.0, eps=1e-15, estimator='gnb', "
               "update_every=10, curvature_samples=1, maximize=False, foreach=None, fused=None, nan_policy='raise')",
    po.GaussNewtonDiag: "(params, lr=1.0, power=-1.0, momentum=0.0, beta2=0.0, damping=1e-08, weight_decay=0.0, *, "
                        "estimator='ggn', update_every=1, curvature_samples=1, maximize=False, foreach=None, fused=None, "
                        "nan_policy='raise')",
}  # fmt: skip


def _plain(sig: inspect.Signature) -> str:
    return str(sig.replace(parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()], return_annotation=sig.empty))


@pytest.mark.parametrize("cls", list(SIGNATURES), ids=lambda c: c.__name__)
def test_the_constructor_is_the_record(cls):
    """``help(cls)`` shows the hand-written signature of before, derived from the record's fields."""
    assert _plain(inspect.signature(cls)) == SIGNATURES[cls]
    assert _plain(inspect.signature(cls.__init__)).startswith("(self, params, ")


def test_wrong_arguments_name_the_class():
    with pytest.raises(TypeError, match=r"AdamW\(\): got an unexpected keyword argument 'decoupled_weight_decay'"):
        po.AdamW([torch.zeros(1, requires_grad=True)], decoupled_weight_decay=False)


def test_a_record_checks_its_fields_as_the_constructor_does():
    p = [torch.zeros(1, requires_grad=True)]
    for record, cls, bad in [(AdamHyper, po.Adam, dict(eps=0.0)), (AGDHyper, po.AGD, dict(betas=(1.0, 0.9))),
                             (SGDHyper, po.SGD, dict(nesterov=True)), (GaussNewtonHyper, po.GaussNewtonDiag, dict(power=-2))]:  # fmt: skip
        with pytest.raises(ValueError) as ours:
            record(**bad)
        with pytest.raises(ValueError) as theirs:
            cls(p, **bad)
        assert str(ours.value) == str(theirs.value)
    assert AdamHyper(betas=[0.8, 0.9]).betas == (0.8, 0.9)  # the canonical form, as a param group keeps it


def test_validate_options_is_the_constructor_without_params():
    assert po.Adam.validate_options(lr=0.1, amsgrad=True) is None
    assert po.Sophia.validate_options(estimator="hutchinson", update_every=3) is None
    with pytest.raises(ValueError, match=r"invalid lr=0.0: must lie in \(0.0, inf\)"):
        po.AdaBound.validate_options(lr=0.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bad'"):
        po.AGD.validate_options(bad=1)
    with pytest.raises(ValueError, match="fused=True and foreach=True"):
        po.SGD.validate_options(fused=True, foreach=True)


def test_the_functional_rule_is_the_class_step():
    """The documented functional call (precond.optim.functional._rule) is the optimizer's step, bit for bit."""
    g = torch.Generator().manual_seed(0)
    p0, grads = torch.randn(5, generator=g), [torch.randn(5, generator=g) for _ in range(3)]
    p = p0.clone()
    state = {"step": [torch.tensor(0.0)], "exp_avg": [torch.zeros(5)], "exp_avg_sq": [torch.zeros(5)]}
    for grad in grads:
        adam([p], [grad], state, AdamHyper(lr=0.1, weight_decay=0.1, decoupled_weight_decay=True))
    q = p0.clone().requires_grad_()
    opt = po.AdamW([q], lr=0.1, weight_decay=0.1, foreach=False, fused=False)
    for grad in grads:
        q.grad = grad
        opt.step()
    assert torch.equal(p, q.detach()) and torch.equal(state["exp_avg_sq"][0], opt.state[q]["exp_avg_sq"])


def test_the_weight_decay_mode_comes_from_the_record():
    cases = [
        (AGDHyper(weight_decay=0.1, lr=0.01), ("decoupled", 1.0 - 0.01 * 0.1)),
        (AGDHyper(weight_decay=0.1, lr=0.01, fixed_decay=True), ("fixed", 1.0 - 0.1)),
        (AGDHyper(weight_decay=0.1, weight_decouple=False), ("l2", 0.1)),
        (AGDHyper(weight_decay=0.1, win=True), ("none", 0.0)),  # acts through Win's formula
        (AGDHyper(), ("none", 0.0)),
        (SGDHyper(weight_decay=0.2), ("l2", 0.2)),
        (SophiaHyper(weight_decay=0.1, lr=0.5), ("decoupled", 1.0 - 0.5 * 0.1)),
        (SophiaHyper(weight_decay=0.0), ("none", 0.0)),  # the official p *= 1 is skipped: the same bits
    ]
    for hyper, (mode, factor) in cases:
        assert hyper.pre_step()[:2] == (mode, factor), hyper
    assert AdamHyper(maximize=True).pre_step() == ("none", 0.0, True)


# ---- the kernels read named fields, and the mode as an argument ------------------------------
def test_every_kernel_reads_its_records_fields(kernels):
    ops = _build.load()
    assert set(COEFFICIENTS) == {"adam", "agd", "sgd", "adagrad", "rmsprop", "adabound", "sophia", "gauss_newton_diag", "adagrad_norm"}
    for rule, record in COEFFICIENTS.items():
        assert list(ops.coefficient_fields(rule)) == list(record._fields), rule
        schema = str(getattr(ops, f"{rule}_step").default._schema)
        assert "Tensor coeffs" in schema and "weight_decay" in schema and "maximize" in schema, schema


def test_a_kernel_reading_other_fields_is_refused_at_load():
    class Ops:  # a build whose Adam kernel reads its row in another order
        def coefficient_fields(self, rule):
            fields = list(COEFFICIENTS[rule]._fields)
            return fields[::-1] if rule == "adam" else fields

    with pytest.raises(RuntimeError, match="the adam kernel reads the coefficients"):
        _build.check_fields(Ops())


def _adam_kernel(weight_decay, factor, g):
    p = torch.tensor([2.0, -4.0])
    c = adam.coefficients(AdamHyper(lr=0.1), 1)
    table = torch.tensor([c], dtype=torch.float64)
    _build.load().adam_step([p], [g], [torch.zeros(2)], [torch.zeros(2)], [], table, weight_decay, factor, False, False, False)
    return p


def test_the_kernel_takes_the_mode_it_is_given_not_one_read_off_the_values(kernels):
    zero = torch.zeros(2)  # Adam's own step is 0 on a zero gradient: only the pre-step moves p
    assert torch.equal(_adam_kernel("none", 0.5, zero), torch.tensor([2.0, -4.0]))
    assert torch.equal(_adam_kernel("decoupled", 0.5, zero), torch.tensor([1.0, -2.0]))
    assert torch.equal(_adam_kernel("fixed", 0.5, zero), torch.tensor([1.0, -2.0]))
    assert torch.equal(_adam_kernel("l2", 0.0, zero), torch.tensor([2.0, -4.0]))
    assert not torch.equal(_adam_kernel("l2", 0.5, zero), torch.tensor([2.0, -4.0]))
    with pytest.raises(RuntimeError, match="weight_decay must be 'none', 'l2', 'decoupled' or 'fixed', got 'l1'"):
        _adam_kernel("l1", 0.5, zero)
    with pytest.raises(RuntimeError, match="no weight_decay='decoupled' in this rule"):
        _build.load().adagrad_step([torch.zeros(2)], [zero], [torch.zeros(2)], torch.zeros(1, 2, dtype=torch.float64),
                                   "decoupled", 0.5, False, False)  # fmt: skip


# ---- AGD's adaptive fraction, reduced in one place ------------------------------------------
def test_adaptive_fraction_overall_and_per_row_of_a_batched_optimizer():
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(3, 40, generator=g, dtype=torch.float64)
    grads = [torch.randn(3, 40, generator=g, dtype=torch.float64) * torch.tensor([[1e-7], [1.0], [1e-3]], dtype=torch.float64)
             for _ in range(4)]  # fmt: skip
    lrs = [0.1, 0.01, 0.05]
    X = x0.clone().requires_grad_()
    batched = po.AGD.batched(X, lrs, delta=1e-4)
    rows = [x0[i].clone().requires_grad_() for i in range(3)]
    single = [po.AGD([r], lr=lr, delta=1e-4, foreach=False, fused=False) for r, lr in zip(rows, lrs)]
    assert batched.adaptive_fraction()["rows"] is None
    for grad in grads:
        X.grad = grad.clone()
        batched.step()
        for i, opt in enumerate(single):
            rows[i].grad = grad[i].clone()
            opt.step()
    fr = batched.adaptive_fraction()
    assert fr["rows"] == [o.adaptive_fraction()["overall"] for o in single]
    assert fr["rows"][0] == 0.0 and fr["rows"][1] == 1.0  # tiny gradients: the SGD branch; unit ones: adaptive
    assert fr["overall"] == fr["groups"][0] == pytest.approx(sum(fr["rows"]) / 3, abs=1e-15)
    assert "rows" not in single[0].adaptive_fraction()
