"""The ``foreach`` and ``fused`` paths equal the reference loop (issue "fast steps").

Every fast path runs 50 steps next to the loop on the same gradients and must agree with
it: float64 to rtol 1e-10, float32 to rtol 1e-5, both relative to the tensor's scale
(``atol = rtol * max|expected|``, since single elements pass through zero). bfloat16 is
compared more loosely (see :func:`test_bfloat16_close_to_loop`). The option sets are the
elementwise rules' of :mod:`precond.optim.cases`. The C++ extension is built once per
machine (cached); the first test that needs it pays the compile.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from optim_testlib import (
    BIG,
    IMPLS,
    SHAPES,
    STEPS,
    assert_bf16_paths_close_to_loop,
    assert_close_scaled,
    assert_opts_close,
    make_params,
    run,
    two_group_optimizer,
)
from precond.optim import AGD, NonFiniteGradientError
from precond.optim import _dispatch
from precond.optim._finite import all_finite
from precond.optim.cases import cases, get_case
from precond.optim.functional.adabound import AdaBoundHyper, adabound_coefficients
from precond.optim.functional.adagrad import AdaGradHyper, adagrad_coefficients
from precond.optim.functional.adam import AdamHyper, adam_coefficients
from precond.optim.kernels import _build

pytestmark = pytest.mark.usefixtures("one_thread")

#: the elementwise rules' option sets (AdaGradNorm and the curvature optimizers: test_fast_paths_curvature)
CASES = cases(tags={"batchable"})


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_fast_paths_equal_loop(case, dtype, rtol, kernels):
    cls, kw = case.cls, case.kwargs
    ref_params = make_params(dtype)
    ref = run(cls, kw, ref_params, **IMPLS["loop"])
    for impl in ("foreach", "fused"):
        params = make_params(dtype)
        opt = run(cls, kw, params, **IMPLS[impl])
        assert_opts_close(opt, ref, params, ref_params, rtol)


@pytest.mark.parametrize("name", ["AGD-amsgrad-win-clip-max", "AdamW-amsgrad-max", "RMSProp-centered-momentum-eps-inside-max"])
def test_parallel_split_equals_loop(name, kernels):
    """Two threads split the concatenated element range in the middle of a tensor."""
    torch.set_num_threads(2)
    case = get_case(name)
    cls, kw = case.cls, case.kwargs
    shapes = SHAPES + [BIG]
    ref_params = make_params(torch.float32, shapes=shapes)
    ref = run(cls, kw, ref_params, steps=10, **IMPLS["loop"])
    params = make_params(torch.float32, shapes=shapes)
    opt = run(cls, kw, params, steps=10, **IMPLS["fused"])
    assert_opts_close(opt, ref, params, ref_params, 1e-5)


def test_steps_counted_once(kernels):
    params = make_params(torch.float32)
    opt = run(AGD, dict(lr=1e-2), params, steps=7, fused=True)
    assert all(float(opt.state[p]["step"]) == 7.0 for p in params)


@pytest.mark.parametrize("name", ["AGD-amsgrad-decay", "Adam-l2"])
def test_two_groups_mixed_dtypes_and_params_without_grad(name, kernels):
    """Two groups with different hyperparameters, float32/float64 mixed within each group,
    and a parameter without gradient in each (it must stay untouched and stateless)."""
    case = get_case(name)

    def steps(opt, a, b):
        for k in range(STEPS):
            g = torch.Generator().manual_seed(1000 + k)
            for p in a[:2] + b[:2]:  # the last param of each group never gets a gradient
                p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
            opt.step()

    ref, ra, rb = two_group_optimizer(case, "loop")
    before = [ra[2].detach().clone(), rb[2].detach().clone()]
    steps(ref, ra, rb)
    assert torch.equal(ra[2], before[0]) and torch.equal(rb[2], before[1])
    for impl in ("foreach", "fused"):
        opt, a, b = two_group_optimizer(case, impl)
        steps(opt, a, b)
        for p, q in zip(a + b, ra + rb):
            assert_close_scaled(p.detach(), q.detach(), 1e-5 if p.dtype == torch.float32 else 1e-10)
            assert (len(opt.state[p]) == 0) == (len(ref.state[q]) == 0)


@pytest.mark.parametrize("name", ["AGD-amsgrad", "AGD-win", "Adam-default", "RMSProp-centered"])
def test_bfloat16_close_to_loop(name, kernels):
    """bfloat16 storage, float32 math in both paths. Tolerance: each store rounds to 8
    significant bits (relative error <= 2^-9); a float32 difference of one ulp between the
    kernel's and the loop's arithmetic (e.g. an FMA) flips a rounding by one bf16 ulp
    (2^-8 relative) now and then, and the states then evolve from different roundings. So
    most elements must be equal and all within 8 bf16 ulps of the tensor's scale."""
    case = get_case(name)
    assert_bf16_paths_close_to_loop(case.cls, case.kwargs)


@pytest.mark.parametrize("src,dst", [("fused", "loop"), ("loop", "fused"), ("foreach", "fused")])
def test_state_dict_exchanged_between_paths(src, dst, kernels):
    case = get_case("AGD-amsgrad-decay")
    cls, kw = case.cls, case.kwargs
    straight_params = make_params(torch.float64)
    straight = run(cls, kw, straight_params, **IMPLS[dst])
    first = make_params(torch.float64)
    opt = run(cls, kw, first, steps=STEPS // 2, **IMPLS[src])
    saved = copy.deepcopy(opt.state_dict())
    second = [p.detach().clone().requires_grad_() for p in first]
    opt2 = cls(second, **kw, **IMPLS[dst])
    opt2.load_state_dict(saved)
    run(cls, kw, second, steps=STEPS - STEPS // 2, start=STEPS // 2, opt=opt2)
    assert_opts_close(opt2, straight, second, straight_params, 1e-10)


def test_tensors_the_kernel_does_not_take_use_the_loop(kernels):
    """float16 parameters and a gradient whose layout differs from its parameter's go through
    the reference loop inside a fused step: the result is the loop's, bit for bit."""
    def build():
        g = torch.Generator().manual_seed(3)
        half = torch.randn(10, generator=g).half().requires_grad_()
        transposed = torch.randn(6, 4, generator=g).t().requires_grad_()  # non-contiguous param
        plain = torch.randn(5, generator=g).requires_grad_()
        return [half, transposed, plain]

    outs = {}
    for impl in ("loop", "fused"):
        ps = build()
        opt = AGD(ps, lr=1e-2, **IMPLS[impl])
        for k in range(5):
            g = torch.Generator().manual_seed(k)
            ps[0].grad = torch.randn(10, generator=g).half()
            ps[1].grad = torch.randn(4, 6, generator=g)  # contiguous: layout differs from the param's
            ps[2].grad = torch.randn(5, generator=g)
            opt.step()
        outs[impl] = (ps, opt)
    (lp, lo), (fp, fo) = outs["loop"], outs["fused"]
    assert torch.equal(fp[0], lp[0]) and torch.equal(fp[1], lp[1])
    assert_close_scaled(fp[2].detach(), lp[2].detach(), 1e-5)
    assert all(float(fo.state[p]["step"]) == 5.0 for p in fp)


def test_coefficient_helpers_match_the_loop_expressions():
    for step in (1, 2, 17):
        c = adam_coefficients(AdamHyper(lr=0.1, betas=(0.9, 0.999)), step)
        assert (c.neg_step, c.bc2) == (-0.1 / (1.0 - 0.9**step), 1.0 - 0.999**step)
        assert adagrad_coefficients(AdaGradHyper(lr=0.1, lr_decay=0.01), step).neg_clr == -(0.1 / (1.0 + (step - 1) * 0.01))
        c = adabound_coefficients(AdaBoundHyper(lr=0.1, base_lr=0.2, final_lr=0.1, gamma=1e-3, betas=(0.9, 0.999)), step)
        assert c.lower < 0.05 < c.upper and c.step_size > 0


# ---- the non-finite check -----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_all_finite_matches_isfinite(dtype, kernels):
    g = torch.Generator().manual_seed(0)
    big = torch.randn(70000, generator=g).to(dtype)
    ts = [torch.randn(3, generator=g).to(dtype), big, torch.randn(8, 9, generator=g).to(dtype).t()]
    assert all_finite(ts)
    for bad in (float("nan"), float("inf"), -float("inf")):
        for which, index in [(0, (0,)), (1, (69999,)), (1, (40000,)), (2, (8, 1))]:
            ts2 = [t.clone() for t in ts]
            ts2[2] = ts2[2].t().contiguous().t() if which != 2 else ts[2].clone()
            ts2[which][index] = bad
            assert not all_finite(ts2), (bad, which, index)
    # the largest finite value and subnormals are finite
    edge = torch.tensor([torch.finfo(dtype).max, -torch.finfo(dtype).max, torch.finfo(dtype).tiny / 2, 0.0], dtype=dtype)
    assert all_finite([edge])


def test_nan_policy_raise_changes_nothing_with_fused(kernels):
    params = make_params(torch.float32)
    opt = run(AGD, dict(lr=1e-2), params, steps=3, fused=True)
    before = [p.detach().clone() for p in params]
    state = copy.deepcopy(opt.state_dict())
    params[4].grad[13, 7] = float("nan")
    with pytest.raises(NonFiniteGradientError):
        opt.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    assert float(opt.state_dict()["state"][0]["step"]) == float(state["state"][0]["step"]) == 3.0


# ---- choice of the default path -----------------------------------------------------------
def test_default_impl(kernels, monkeypatch):
    monkeypatch.delenv(_dispatch.DEFAULT_ENV, raising=False)
    f32 = [torch.zeros(3)]
    assert _dispatch.default_impl(None, f32) == "fused"
    assert _dispatch.default_impl(None, [torch.zeros(3, dtype=torch.bfloat16), torch.zeros(2, dtype=torch.float64)]) == "fused"
    assert _dispatch.default_impl(None, [torch.zeros(3, dtype=torch.float16)]) == "loop"
    assert _dispatch.resolve_impl(None, {"fused": False, "foreach": False}, f32) == "loop"
    assert _dispatch.resolve_impl(None, {"fused": None, "foreach": True}, f32) == "foreach"
    monkeypatch.setenv(_dispatch.DEFAULT_ENV, "loop")
    assert _dispatch.default_impl(None, f32) == "loop"
    monkeypatch.setenv(_dispatch.DEFAULT_ENV, "fast")
    with pytest.raises(ValueError, match="PRECOND_DEFAULT_IMPL"):
        _dispatch.default_impl(None, f32)


# ---- fallback when the extension cannot be built: exactly one warning ----------------------
FALLBACK_SCRIPT = textwrap.dedent(
    """
    import warnings, torch
    from precond.optim import AGD
    from precond.optim import _dispatch
    from precond.optim.kernels import KernelsUnavailableWarning

    def run(**impl):
        g = torch.Generator().manual_seed(0)
        ps = [torch.randn(5, 3, generator=g).requires_grad_(), torch.randn(4, generator=g).requires_grad_()]
        opt = AGD(ps, lr=1e-2, amsgrad=True, **impl)
        for k in range(4):
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        return ps

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fused = run(fused=True)
        default = run()
        choice = _dispatch.default_impl(None, fused)
    loop = run(fused=False, foreach=False)
    ours = [w for w in caught if issubclass(w.category, KernelsUnavailableWarning)]
    print("WARNINGS", len(ours), "OTHER", len(caught) - len(ours))
    print("EQUAL", all(torch.equal(a, b) for a, b in zip(fused + default, loop + loop)))
    print("DEFAULT", choice)
    print("MESSAGE", str(ours[0].message) if ours else "")
    """
)


@pytest.mark.parametrize("how", ["env", "bad-compiler"])
def test_fallback_with_exactly_one_warning(how, tmp_path):
    env = dict(os.environ)
    env.pop(_dispatch.DEFAULT_ENV, None)
    if how == "env":
        env["PRECOND_DISABLE_EXTENSIONS"] = "1"
    else:  # a fresh cache, so that a build is attempted, with a compiler that does not exist
        env.pop("PRECOND_DISABLE_EXTENSIONS", None)
        env["TORCH_EXTENSIONS_DIR"] = str(tmp_path / "ext")
        env["CXX"] = str(tmp_path / "no-such-compiler")
    out = subprocess.run([sys.executable, "-c", FALLBACK_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert lines["WARNINGS"] == "1 OTHER 0", out.stdout
    assert lines["EQUAL"] == "True"
    assert lines["DEFAULT"] == "loop"
    assert ("PRECOND_DISABLE_EXTENSIONS" in lines["MESSAGE"]) == (how == "env")
