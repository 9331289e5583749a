"""The torch.optim contract, case by case: schedulers against torch, closures, dtypes, bad input,
NaNs, settings of the whole optimizer, torch's spellings, the batched form's checks. The generic
properties over every option set of precond.optim.cases: test_generic_contract.py."""

import copy
import io
import warnings

import pytest
import torch

import precond.optim as po
from optim_testlib import mlp, mlp_data
from precond.experiments import vectorized
from precond.optim.cases import get_case

def train(model, opt, steps, seed=0):
    x, y = mlp_data(seed)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def test_agd_loads_published_style_checkpoint():
    """The published AGD saves no precond-only group keys and older ones an integer step."""
    a = mlp(2)
    opt = po.AGD(a.parameters(), lr=1e-3, amsgrad=True)
    train(a, opt, 5)
    sd = copy.deepcopy(opt.state_dict())  # state_dict() shares the live state's dicts
    for group in sd["param_groups"]:
        for key in ("maximize", "foreach", "fused", "win_z_init"):
            group.pop(key)
    for state in sd["state"].values():
        state["step"] = int(state["step"])  # an old integer step
    b = copy.deepcopy(a)
    opt_b = po.AGD(b.parameters(), lr=1e-3, amsgrad=True)
    opt_b.load_state_dict(sd)
    assert all(s["step"].dtype == torch.float32 for s in opt_b.state.values())
    assert opt_b.param_groups[0]["maximize"] is False
    train(a, opt, 5)
    train(b, opt_b, 5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


SCHEDULERS = {
    "StepLR": lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5),
    "MultiStepLR": lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.3),
    "ExponentialLR": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9),
    "CosineAnnealingLR": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10),
    "CosineAnnealingWarmRestarts": lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 4),
    "CyclicLR": lambda o: torch.optim.lr_scheduler.CyclicLR(o, 1e-4, 1e-2, step_size_up=3),
    "OneCycleLR": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 1e-2, total_steps=20),
    "LambdaLR": lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1 / (1 + e)),
    "MultiplicativeLR": lambda o: torch.optim.lr_scheduler.MultiplicativeLR(o, lambda e: 0.95),
    "ConstantLR": lambda o: torch.optim.lr_scheduler.ConstantLR(o, 0.5, total_iters=4),
    "LinearLR": lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, total_iters=5),
    "PolynomialLR": lambda o: torch.optim.lr_scheduler.PolynomialLR(o, 10, 2.0),
    "SequentialLR": lambda o: torch.optim.lr_scheduler.SequentialLR(
        o, [torch.optim.lr_scheduler.ConstantLR(o, 0.5, total_iters=3), torch.optim.lr_scheduler.ExponentialLR(o, 0.9)], [3]
    ),
    "ChainedScheduler": lambda o: torch.optim.lr_scheduler.ChainedScheduler(
        [torch.optim.lr_scheduler.ConstantLR(o, 0.5, total_iters=3), torch.optim.lr_scheduler.ExponentialLR(o, 0.9)]
    ),
    "ReduceLROnPlateau": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=1, factor=0.5),
}


@pytest.mark.parametrize("sched", SCHEDULERS)
def test_every_lr_scheduler_drives_precond_like_torch(sched):
    """Each scheduler gives precond's Adam the same lr (and beta1, for the cycling ones) as
    torch's Adam, so the trajectories are equal."""
    a, b = mlp(3), mlp(3)
    opt_a, opt_b = po.Adam(a.parameters(), lr=1e-2), torch.optim.Adam(b.parameters(), lr=1e-2, foreach=False)
    sa, sb = SCHEDULERS[sched](opt_a), SCHEDULERS[sched](opt_b)
    x, y = mlp_data(3)
    lrs = []
    for _ in range(20):
        losses = []
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        for s, loss in zip((sa, sb), losses):
            s.step(1.0) if sched == "ReduceLROnPlateau" else s.step()  # a plateau: lr must drop
        lrs.append(opt_a.param_groups[0]["lr"])
        assert opt_a.param_groups[0]["lr"] == opt_b.param_groups[0]["lr"]
        assert opt_a.param_groups[0]["betas"] == tuple(opt_b.param_groups[0]["betas"]) or list(opt_a.param_groups[0]["betas"]) == list(opt_b.param_groups[0]["betas"])
    assert len(set(lrs)) > 1, "the scheduler never changed the lr: the test would be vacuous"
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-10, atol=1e-12)


def test_scheduler_state_dict_and_agd_cycling_betas():
    a = mlp(4)
    opt = po.AGD(a.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-2, total_steps=30)  # cycles betas[0] too
    for _ in range(10):
        train(a, opt, 1)
        sched.step()
    assert opt.param_groups[0]["betas"][0] != 0.9
    sd = sched.state_dict()
    assert sd["last_epoch"] == 10


def test_closure_is_called_with_grad_enabled_and_loss_returned():
    a = mlp(5)
    x, y = mlp_data(5)
    opt = po.AGD(a.parameters(), lr=1e-3)
    calls = []

    def closure():
        calls.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(a(x), y)
        loss.backward()
        return loss

    before = [p.detach().clone() for p in a.parameters()]
    loss = opt.step(closure)
    assert calls == [True] and torch.is_tensor(loss) and loss.item() > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, a.parameters()))


def test_params_without_grad_are_skipped_and_zero_grad_sets_none():
    w1 = torch.nn.Parameter(torch.randn(3))
    w2 = torch.nn.Parameter(torch.randn(3))
    opt = po.AGD([w1, w2], lr=1e-2)
    before = w2.detach().clone()
    w1.sum().backward()
    opt.step()
    assert torch.equal(w2, before) and len(opt.state[w2]) == 0 and len(opt.state[w1]) > 0
    opt.zero_grad()
    assert w1.grad is None


DTYPE_CASES = [("AGD-default", dict(lr=1e-3)), ("Adam-amsgrad", {}), ("SGD-ema", {}), ("AdaGrad-default", {}),
               ("RMSProp-centered-momentum", dict(momentum=0.5)), ("AdaBound-amsbound-decay", {})]  # fmt: skip


@pytest.mark.parametrize("name,overrides", DTYPE_CASES, ids=[n for n, _ in DTYPE_CASES])
def test_dtypes_float32_and_bfloat16_track_float64(name, overrides):
    """float32 follows the float64 run closely; bfloat16 params (fp32 math, bf16 storage) stay
    bfloat16 and follow it within bf16 resolution."""
    base = mlp(6)
    x, y = mlp_data(6)
    finals = {}
    for dtype in (torch.float64, torch.float32, torch.bfloat16):
        model = copy.deepcopy(base).to(dtype)
        opt = get_case(name).make(model.parameters(), **overrides)
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x.to(dtype)), y.to(dtype)).backward()
            opt.step()
        assert all(p.dtype == dtype for p in model.parameters())
        assert all(t.dtype == dtype for s in opt.state.values() for k, t in s.items() if k != "step" and torch.is_tensor(t) and t.dim() > 0)
        finals[dtype] = torch.cat([p.detach().double().flatten() for p in model.parameters()])
    ref = finals[torch.float64]
    moved = (ref - torch.cat([p.detach().double().flatten() for p in base.parameters()])).abs().max()
    assert moved > 1e-3
    assert (finals[torch.float32] - ref).abs().max() < 1e-4
    assert (finals[torch.bfloat16] - ref).abs().max() < 0.05


BAD = [
    (po.AGD, dict(lr=-1.0), "lr"),
    (po.AGD, dict(betas=(1.0, 0.999)), "betas[0]"),
    (po.AGD, dict(betas=(0.9, -0.1)), "betas[1]"),
    (po.AGD, dict(betas=(0.9,)), "betas"),
    (po.AGD, dict(delta=-1e-5), "delta"),
    (po.AGD, dict(weight_decay=-0.1), "weight_decay"),
    (po.AGD, dict(clip=0.0), "clip"),
    (po.AGD, dict(win_z_init="ones"), "win_z_init"),
    (po.Adam, dict(eps=-1e-8), "eps"),
    # a zero epsilon alone in a denominator: 0/0 where a gradient is zero (the spec validator's rule too)
    (po.Adam, dict(eps=0.0), "eps=0.0: must be > 0"),
    (po.AdamW, dict(eps=0.0), "eps=0.0: must be > 0"),
    (po.AGD, dict(delta=0.0), "delta=0.0: must be > 0"),
    (po.RMSProp, dict(eps=0.0), "eps=0.0: must be > 0"),
    (po.Sophia, dict(eps=0.0), "eps=0.0: must be > 0"),  # h <= 0 and m = 0: 0/0
    (po.AdaGradNorm, dict(eps=0.0), "eps=0 with initial_accumulator_value=0"),
    (po.AGD, dict(betas=0.9), "invalid betas=0.9: must be a pair"),
    (po.Sophia, dict(betas=0.9), "invalid betas=0.9: must be a pair"),
    (po.Adam, dict(lr=float("nan")), "lr"),
    (po.AdamW, dict(weight_decay=-1.0), "weight_decay"),
    (po.SGD, dict(momentum=1.0), "momentum"),
    (po.SGD, dict(dampening=1.5), "dampening"),
    (po.SGD, dict(nesterov=True), "nesterov"),
    (po.SGD, dict(momentum_style="polyak"), "momentum_style"),
    (po.AdaGrad, dict(lr_decay=-1.0), "lr_decay"),
    (po.AdaGrad, dict(eps=0.0), "eps=0"),
    (po.AdaGrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (po.AdaGradNorm, dict(scope="layer"), "scope"),
    (po.RMSProp, dict(alpha=1.0), "alpha"),
    (po.RMSProp, dict(momentum=-0.1), "momentum"),
    (po.AdaBound, dict(gamma=0.0), "gamma"),
    (po.AdaBound, dict(final_lr=-0.1), "final_lr"),
    (po.AdaBound, dict(lr=0.0), "lr"),
    (po.Adam, dict(nan_policy="ignore"), "nan_policy"),
    (po.Adam, dict(fused=True, foreach=True), "fused=True and foreach=True"),
]


@pytest.mark.parametrize("cls,kwargs,needle", BAD, ids=lambda v: str(v) if isinstance(v, str) else None)
def test_bad_hyperparameters_name_the_argument_and_range(cls, kwargs, needle):
    with pytest.raises(ValueError) as err:
        cls([torch.nn.Parameter(torch.zeros(2))], **kwargs)
    assert needle in str(err.value)


@pytest.mark.parametrize("cls,kwargs,needle", BAD, ids=lambda v: str(v) if isinstance(v, str) else None)
def test_validate_options_raises_what_the_constructor_raises(cls, kwargs, needle):
    """The spec layer's check (PrecondOptimizer.validate_options): the same error, word for word."""
    with pytest.raises(ValueError) as theirs:
        cls([torch.nn.Parameter(torch.zeros(2))], **kwargs)
    with pytest.raises(ValueError) as ours:
        cls.validate_options(**kwargs)
    assert str(ours.value) == str(theirs.value) and needle in str(ours.value)


def test_bad_hyperparameter_in_a_param_group_is_caught():
    with pytest.raises(ValueError, match=r"invalid lr=-0.1: must lie in \[0.0, inf\)"):
        po.AGD([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": -0.1}])
    with pytest.raises(TypeError, match="betas"):
        po.Adam([torch.nn.Parameter(torch.zeros(2))], betas=("a", 0.9))


def nan_setup(policy):
    w = torch.nn.Parameter(torch.ones(4))
    opt = po.AGD([w], lr=1e-2, nan_policy=policy)
    w.grad = torch.ones(4)
    opt.step()
    state = copy.deepcopy(opt.state[w])
    before = w.detach().clone()
    w.grad = torch.tensor([1.0, float("nan"), 1.0, float("inf")])
    return w, opt, state, before


def test_nan_policy_raise_changes_nothing():
    w, opt, state, before = nan_setup("raise")
    with pytest.raises(po.NonFiniteGradientError, match="nan_policy='skip'"):
        opt.step()
    assert torch.equal(w, before)
    assert all(torch.equal(state[k], opt.state[w][k]) for k in state)


def test_nan_policy_skip_counts_and_warns():
    w, opt, state, before = nan_setup("skip")
    with pytest.warns(RuntimeWarning, match="skipped"):
        opt.step()
    assert opt.skipped_steps == 1 and torch.equal(w, before)
    assert all(torch.equal(state[k], opt.state[w][k]) for k in state)
    w.grad = torch.ones(4)
    opt.step()  # a finite step afterwards proceeds
    assert not torch.equal(w, before) and int(opt.state[w]["step"]) == 2


def test_nan_policy_propagate_applies_the_update():
    w, opt, _, _ = nan_setup("propagate")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
    assert torch.isnan(w).any()


def test_agd_never_mutates_grad_under_l2_decay():
    w = torch.nn.Parameter(torch.ones(3))
    opt = po.AGD([w], lr=1e-2, weight_decay=0.5, weight_decouple=False)
    w.grad = torch.full((3,), 0.25)
    opt.step()
    assert torch.equal(w.grad, torch.full((3,), 0.25))


def test_agd_adaptive_fraction_reports_the_switch():
    torch.manual_seed(0)
    model = mlp(8)
    x, y = mlp_data(8)
    result = {}
    for delta in (1e-12, 1e3):
        m = copy.deepcopy(model)
        opt = po.AGD([dict(params=list(m[0].parameters())), dict(params=list(m[2].parameters()), delta=delta)], lr=1e-3, delta=1e-12)
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.mse_loss(m(x), y).backward()
            opt.step()
        result[delta] = opt.adaptive_fraction()
    frac = result[1e3]
    assert frac["groups"][0] > 0.9 and frac["groups"][1] == 0.0
    assert len(frac["params"][0]) == 2 and frac["params"][1] == [0.0, 0.0]
    # the group fraction is the coordinate-weighted mean of the parameter fractions
    sizes = [p.numel() for p in model[0].parameters()]
    assert abs(frac["groups"][0] - sum(f * n for f, n in zip(frac["params"][0], sizes)) / sum(sizes)) < 1e-12
    fresh = po.AGD(mlp(8).parameters())
    assert fresh.adaptive_fraction()["groups"] == [None]


def test_agd_win_z_init_choices():
    """'param' (default) starts z = p; 'zeros' (the current published code) pulls p to about p/3."""
    out = {}
    for init in ("param", "zeros"):
        w = torch.nn.Parameter(torch.full((3,), 10.0))
        opt = po.AGD([w], lr=1e-3, win=True, win_z_init=init)
        w.grad = torch.full((3,), 1e-3)
        opt.step()
        out[init] = w.detach()
    assert torch.all((out["param"] - 10.0).abs() < 0.1)
    assert torch.all((out["zeros"] - 10.0 / 3).abs() < 0.1)


def test_zero_eps_with_a_zero_gradient_coordinate_is_refused_or_safe():
    """Where 0/0 could happen the constructor refuses a zero epsilon (test above); AdaBound's
    rate is clipped to its bounds, so eps=0 stays finite there (and is accepted, as by the
    authors' class): a coordinate with a zero gradient does not move."""
    w = torch.nn.Parameter(torch.ones(3))
    opt = po.AdaBound([w], lr=1e-2, eps=0.0, nan_policy="propagate")
    for impl in ({"foreach": False, "fused": False}, {"foreach": True}, {"fused": True}):
        for group in opt.param_groups:
            group.update({"foreach": None, "fused": None, **impl})
        w.grad = torch.tensor([0.0, 1.0, -1.0])
        opt.step()
        assert torch.isfinite(w).all() and w[0] == 1.0


def test_settings_of_the_whole_optimizer_cannot_differ_between_groups():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    for cls, key, value in [(po.Adam, "nan_policy", "skip"), (po.AdaGradNorm, "scope", "global"), (po.Sophia, "estimator", "hutchinson"),
                            (po.GaussNewtonDiag, "update_every", 3)]:  # fmt: skip
        with pytest.raises(ValueError, match=f"{key} holds for the whole optimizer"):
            cls([{"params": [a]}, {"params": [b], key: value}])
        opt = cls([a])
        with pytest.raises(ValueError, match=f"{key} holds for the whole optimizer"):
            opt.add_param_group({"params": [b], key: value})
        assert len(opt.param_groups) == 1
    opt = po.Sophia([a], estimator="hutchinson", update_every=4, curvature_samples=2, nan_policy="skip")
    assert (opt.curvature_estimator, opt.curvature_every, opt.curvature_samples, opt.nan_policy) == ("hutchinson", 4, 2, "skip")
    with pytest.raises(AttributeError):
        opt.nan_policy = "raise"  # read-only: a setting is given at construction


def test_torch_spellings_are_the_same_classes():
    """``torch.optim.X`` -> ``precond.optim.X`` needs nothing else for every class both have."""
    assert po.Adagrad is po.AdaGrad and po.RMSprop is po.RMSProp
    for name in ("SGD", "Adam", "AdamW", "Adagrad", "RMSprop"):
        assert issubclass(getattr(po, name), torch.optim.Optimizer) and hasattr(torch.optim, name)
    table = po.available()
    assert len(set(table.values())) == len(table)  # each optimizer listed once
    assert po.get_optimizer("Adagrad") is po.AdaGrad and po.get_optimizer("RMSprop") is po.RMSProp


def test_batched_validates_every_row_and_is_a_class_capability():
    X = torch.zeros(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r"invalid lr=0.0: must lie in \(0.0, inf\)"):
        po.AdaBound.batched(X, [0.1, 0.0])  # AdaBound's lr must be > 0, in every row
    with pytest.raises(ValueError, match="invalid lr=-1.0"):
        po.Adam.batched(X, [0.1, -1.0])
    with pytest.raises(ValueError, match="one per row"):
        po.Adam.batched(X, [0.1, 0.2, 0.3])
    opt = po.AdaBound.batched(X, [0.1, 0.2], final_lr=0.05)
    assert opt.param_groups[0]["lr"] == 1.0 and opt.param_groups[0]["_row_lr"].shape == (2, 1)
    # the sweep planner asks the classes' capability (no list of names in vectorized.py)
    assert {n for n in po.available() if vectorized.batchable(n)} == {"sgd", "adam", "adamw", "agd", "adagrad", "rmsprop", "adabound"}
    assert not vectorized.batchable("torch.Adam") and not vectorized.batchable("no-such-optimizer")
