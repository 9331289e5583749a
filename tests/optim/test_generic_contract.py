"""Every option set of :mod:`precond.optim.cases` against the generic properties that PyTorch's
own optimizer tests check over its ``OptimizerInfo`` table (``TestOptimRenewed`` of upstream
``test/test_optim.py``, ``torch.testing._internal.common_optimizers``).

Here: state dicts (round trip, resume bit for bit, older formats), ``copy.deepcopy`` and
``pickle``, a tensor lr, hooks, an LR scheduler, zero gradients, ``torch.amp.GradScaler``'s
skip of an inf step, sparse and complex parameters, the batched form of the elementwise rules.
Elsewhere: ``foreach``/``fused`` against the loop (``test_fast_paths*.py``), the ``torch.optim``
twins (``test_against_torch.py``), every LR scheduler and the non-finite policy
(``test_contract.py``).
"""

import copy
import io
import pickle

import pytest
import torch

from optim_testlib import IMPLS, feed, make_params, run
from precond.optim.cases import cases

CASES = cases()

pytestmark = [
    # the synthetic feed gives GaussNewtonDiag negative curvature entries on purpose
    pytest.mark.filterwarnings("ignore:GaussNewtonDiag.*negative:RuntimeWarning"),
]

case_param = pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)


def assert_same(params, others):
    for p, q in zip(params, others):
        assert torch.equal(p, q)


def assert_moved(params, before):
    assert any(not torch.equal(p, b) for p, b in zip(params, before)), "nothing moved: the comparison is vacuous"


def clones(params):
    return [p.detach().clone().requires_grad_() for p in params]


# ---- state dicts -----------------------------------------------------------------------------
@case_param
def test_state_dict_round_trip_returns_what_was_loaded(case):
    opt = run(case.cls, case.kwargs, make_params(torch.float64), steps=4)
    saved = copy.deepcopy(opt.state_dict())
    other = case.make(make_params(torch.float64, seed=1))
    other.load_state_dict(saved)
    out = other.state_dict()
    assert out["param_groups"] == saved["param_groups"]  # no key added (torch's "differentiable")
    assert out["state"].keys() == saved["state"].keys()
    for i, state in saved["state"].items():
        assert out["state"][i].keys() == state.keys()
        for name, value in state.items():
            assert out["state"][i][name].dtype == value.dtype and torch.equal(out["state"][i][name], value), name


@case_param
def test_resume_from_a_serialized_state_dict_is_bit_for_bit(case):
    straight = make_params(torch.float64)
    run(case.cls, case.kwargs, straight, steps=10)
    first = make_params(torch.float64)
    opt = run(case.cls, case.kwargs, first, steps=5)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    second = clones(first)
    resumed = case.make(second)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    run(None, None, second, steps=5, start=5, opt=resumed)
    assert_moved(second, make_params(torch.float64))
    assert_same(second, straight)


@case_param
def test_an_older_state_dict_loads_and_continues(case):
    """Older precond versions saved neither ``maximize``/``foreach``/``fused`` nor the settings
    of the whole optimizer, and kept integer step counters: such a state dict loads (the
    missing options keep the constructor's values) and the run continues as if uninterrupted."""
    straight = make_params(torch.float64)
    run(case.cls, case.kwargs, straight, steps=8)
    first = make_params(torch.float64)
    opt = run(case.cls, case.kwargs, first, steps=4)
    old = copy.deepcopy(opt.state_dict())
    for group in old["param_groups"]:
        for key in ("maximize", "foreach", "fused", *case.cls._optimizer_options):
            del group[key]
    for state in old["state"].values():
        for key in ("step", "curvature_step"):
            if key in state:
                state[key] = int(state[key])
    second = clones(first)
    resumed = case.make(second)
    resumed.load_state_dict(old)
    assert resumed.param_groups[0]["maximize"] == bool(case.kwargs.get("maximize", False))
    assert resumed.nan_policy == "raise"
    assert all(s["step"].dtype == torch.float32 for s in resumed.state.values() if "step" in s)
    run(None, None, second, steps=4, start=4, opt=resumed)
    assert_same(second, straight)


# ---- copies ----------------------------------------------------------------------------------
SETTINGS = ("nan_policy", "skipped_steps", "scope", "curvature_estimator", "curvature_every", "curvature_samples")


@case_param
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copy_keeps_every_setting_and_continues_like_the_original(case, how):
    params = make_params(torch.float64)
    opt = run(case.cls, dict(case.kwargs, nan_policy="skip"), params, steps=4)
    params[1].grad = torch.full_like(params[1], float("nan"))
    with pytest.warns(RuntimeWarning, match="skipped"):
        opt.step()
    copied = copy.deepcopy(opt) if how == "deepcopy" else pickle.loads(pickle.dumps(opt))
    for name in SETTINGS:
        if hasattr(opt, name):
            assert getattr(copied, name) == getattr(opt, name), name
    assert copied.skipped_steps == 1 and copied.nan_policy == "skip"
    public = lambda o: {k for k in vars(o) if not k.startswith("_")}  # noqa: E731 (torch's test_deepcopy_copies_all_public_attrs)
    assert public(copied) == public(opt)
    copied_params = [p for g in copied.param_groups for p in g["params"]]
    assert all(p is not q for p, q in zip(params, copied_params))
    run(None, None, params, steps=4, start=4, opt=opt)
    run(None, None, copied_params, steps=4, start=4, opt=copied)
    assert_same(copied_params, params)


# ---- the learning rate -----------------------------------------------------------------------
@case_param
@pytest.mark.parametrize("shape", [[], [1], [1, 1]], ids=str)
def test_tensor_lr_works_like_the_float(case, shape):
    """torch.optim accepts a one-element tensor lr of any of these shapes; so does precond, with
    the float's trajectory bit for bit (a float64 tensor holds the float exactly)."""
    ref = make_params(torch.float64)
    run(case.cls, case.kwargs, ref, steps=5)
    params = make_params(torch.float64)
    run(case.cls, dict(case.kwargs, lr=torch.full(shape, case.kwargs["lr"], dtype=torch.float64)), params, steps=5)
    assert_moved(params, make_params(torch.float64))
    assert_same(params, ref)


@case_param
def test_a_tensor_lr_of_several_elements_is_refused_at_construction(case):
    with pytest.raises(ValueError, match="must hold one element"):
        case.make(make_params(torch.float64), lr=torch.full((2, 1), 0.1))
    opt = case.make(make_params(torch.float64))
    with pytest.raises(ValueError, match="must hold one element"):
        opt.add_param_group({"params": [torch.zeros(3, requires_grad=True)], "lr": torch.full((3,), 0.1)})
    assert len(opt.param_groups) == 1  # the refused group was not kept


@case_param
def test_an_lr_scheduler_drives_the_steps(case):
    """StepLR halves every group's lr every 2 steps: the run equals one whose lrs are set by
    hand, and differs from one without the scheduler."""
    def with_schedule(set_lr):
        params = make_params(torch.float64)
        opt = case.make(params)
        base = [g["lr"] for g in opt.param_groups]
        sched = set_lr(opt, base)
        run(None, None, params, steps=6, opt=opt, after_step=lambda o: sched())
        return params

    def by_scheduler(opt, base):
        return torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5).step

    def by_hand(opt, base):
        count = [0]

        def step():
            count[0] += 1
            for g, lr in zip(opt.param_groups, base):
                g["lr"] = lr * 0.5 ** (count[0] // 2)

        return step

    scheduled = with_schedule(by_scheduler)
    assert_same(scheduled, with_schedule(by_hand))
    plain = make_params(torch.float64)
    run(case.cls, case.kwargs, plain, steps=6)
    assert any(not torch.equal(p, q) for p, q in zip(scheduled, plain))


# ---- hooks -----------------------------------------------------------------------------------
@case_param
def test_hooks_run_in_order(case):
    params = make_params(torch.float64)
    opt = case.make(params)
    seen = []
    opt.register_step_pre_hook(lambda o, args, kwargs: seen.append("step pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: seen.append("step post"))
    opt.register_state_dict_pre_hook(lambda o: seen.append("state_dict pre"))
    opt.register_state_dict_post_hook(lambda o, sd: seen.append("state_dict post") or dict(sd, note="hooked"))
    opt.register_load_state_dict_pre_hook(lambda o, sd: seen.append("load pre"))
    opt.register_load_state_dict_post_hook(lambda o: seen.append("load post"))
    run(None, None, params, steps=1, opt=opt)
    sd = opt.state_dict()
    assert sd["note"] == "hooked"
    opt.load_state_dict(sd)
    assert seen == ["step pre", "step post", "state_dict pre", "state_dict post", "load pre", "load post"]


# ---- zero gradients, inf gradients under a GradScaler -------------------------------------------
def moves_without_gradient(opt) -> bool:
    """Weight decay (decoupled, or L2 through the gradient) and AGD's Win start ``z = 0`` move
    parameters whose gradient is zero: there a zero gradient is not a no-op by the rule itself."""
    return any(g.get("weight_decay", 0.0) > 0 or (g.get("win") and g.get("win_z_init") == "zeros") for g in opt.param_groups)


@case_param
def test_zero_gradients_leave_the_parameters_unchanged(case):
    params = make_params(torch.float64)
    opt = case.make(params)
    before = clones(params)
    for k in range(4):
        feed(opt, k, torch.Generator().manual_seed(k))
        for p in params:
            p.grad = torch.zeros_like(p)
        opt.step()
    assert all(float(s["step"]) == 4 for s in opt.state.values())
    if moves_without_gradient(opt):  # the rule itself moves them: check that it does, not a no-op
        assert any(not torch.equal(p, b) for p, b in zip(params, before))
    else:
        assert_same(params, before)


@case_param
def test_grad_scaler_skips_a_step_with_inf_gradients(case):
    """``torch.amp.GradScaler``: a scaled loss whose gradients overflow to inf skips the step
    (parameters and state untouched, no error under nan_policy="raise"), and the next, finite,
    step is the unscaled one."""
    params, ref = make_params(torch.float32), make_params(torch.float32)
    opt, ref_opt = case.make(params), case.make(ref)
    for o in (opt, ref_opt):
        feed(o, 0, torch.Generator().manual_seed(0))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    before, state_before = clones(params), copy.deepcopy(opt.state_dict())
    scaler.scale(sum((p * 1e35).sum() for p in params)).backward()  # 2^16 * 1e35 > float32 max
    scaler.step(opt)
    scaler.update()
    assert_same(params, before)
    assert str(opt.state_dict()) == str(state_before)
    assert scaler.get_scale() == 2.0**15
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(p.shape, generator=g) for p in params]
    opt.zero_grad()
    scaler.scale(sum((p * w).sum() for p, w in zip(params, weights))).backward()
    scaler.step(opt)
    for q, w in zip(ref, weights):
        q.grad = w.clone()
    ref_opt.step()
    assert_moved(params, before)
    assert_same(params, ref)


# ---- inputs it refuses or maps ---------------------------------------------------------------------
@case_param
def test_sparse_gradients_are_refused_with_a_clear_error(case):
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = case.make(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        opt.step()


@case_param
def test_complex_parameters_are_real_views_or_refused(case):
    """Where supported, a complex parameter steps exactly like its ``torch.view_as_real`` as a
    real parameter (torch.optim's semantics; test_against_torch compares with torch itself),
    on every path; elsewhere the constructor refuses it, saying "complex"."""
    g = torch.Generator().manual_seed(0)
    x0 = [torch.randn(s, generator=g, dtype=torch.complex128) for s in [(7,), (3, 4), ()]]
    if "complex" not in case.tags:
        with pytest.raises(ValueError, match="complex"):
            case.make([x.clone().requires_grad_() for x in x0])
        return
    grads = [[torch.randn(x.shape, generator=g, dtype=torch.complex128) for x in x0] for _ in range(6)]
    for impl in IMPLS.values():
        zs = [x.clone().requires_grad_() for x in x0]
        rs = [torch.view_as_real(x).clone().requires_grad_() for x in x0]
        opts = case.make(zs, **impl), case.make(rs, **impl)
        for gs in grads:
            for z, r, gi in zip(zs, rs, gs):
                z.grad, r.grad = gi.clone(), torch.view_as_real(gi).clone()
            for o in opts:
                o.step()
        assert_same([torch.view_as_real(z) for z in zs], rs)
        assert_moved(rs, [torch.view_as_real(x) for x in x0])
        if hasattr(opts[0], "adaptive_fraction"):
            assert opts[0].adaptive_fraction() == opts[1].adaptive_fraction()


# ---- the batched form (vectorized sweeps) --------------------------------------------------------
@case_param
def test_batched_rows_step_like_separate_optimizers(case):
    """``cls.batched(X, lrs)``: row i of the stacked X follows its own optimizer with lr lrs[i]
    (the reference loop); a rule that is not elementwise refuses."""
    lr = case.kwargs["lr"]
    lrs = [lr, lr / 2, lr * 3]
    hyper = {k: v for k, v in case.kwargs.items() if k != "lr"}
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 5, generator=g, dtype=torch.float64)
    X = x0.clone().requires_grad_()
    if "batchable" not in case.tags:
        with pytest.raises(TypeError, match="cannot run batched"):
            case.cls.batched(X, lrs, **hyper)
        return
    opt = case.cls.batched(X, lrs, **hyper)
    rows = [x0[i].clone().requires_grad_() for i in range(3)]
    singles = [case.make([r], lr=lri, **IMPLS["loop"]) for r, lri in zip(rows, lrs)]
    for _ in range(10):
        grad = torch.randn(3, 5, generator=g, dtype=torch.float64)
        X.grad = grad.clone()
        opt.step()
        for i, (r, o) in enumerate(zip(rows, singles)):
            r.grad = grad[i].clone()
            o.step()
    torch.testing.assert_close(X.detach(), torch.stack([r.detach() for r in rows]), rtol=1e-12, atol=1e-14)
    assert not torch.allclose(X[0], X[1])  # the rows' lrs differ, and so do the rows
