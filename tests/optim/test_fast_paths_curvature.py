"""The ``foreach`` and ``fused`` paths of AdaGradNorm, GaussNewtonDiag and Sophia equal the loop.

As :mod:`test_fast_paths` (helpers and tolerances shared through ``optim_testlib``): 50 steps
next to the reference loop on the same gradients, float64 to rtol 1e-10 and float32 to rtol
1e-5 of each tensor's scale, bfloat16 within a few bf16 ulps, over the option sets of
:mod:`precond.optim.cases`. GaussNewtonDiag and Sophia get a random curvature diagonal through
``update_curvature`` every 3 steps (log-uniform, so that Sophia clips some coordinates and not
others; GaussNewtonDiag also gets negative entries, its non-positive-curvature rule).
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
    EVERY,
    GRAD_SCALES,
    IMPLS,
    STEPS,
    assert_bf16_paths_close_to_loop,
    assert_close_scaled,
    assert_opts_close,
    curvature,
    feed,
    make_params,
    run,
    two_group_optimizer,
)
from precond.optim import AdaGradNorm, GaussNewtonDiag, Sophia
from precond.optim import _dispatch
from precond.optim.cases import cases, get_case
from precond.optim.functional.gauss_newton import GaussNewtonHyper, gauss_newton_coefficients, gauss_newton_diag
from precond.optim.functional.sophia import SophiaHyper, sophia_coefficients
from precond.optim.kernels import _build

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    # the feed gives GaussNewtonDiag negative entries on purpose: its warning is expected
    pytest.mark.filterwarnings("ignore:GaussNewtonDiag.*negative:RuntimeWarning"),
]

#: the option sets of the optimizers that are not elementwise (curvature, one norm per scope)
CASES = cases(exclude={"batchable"})


def assert_moved(params, before, at_least=0.05):
    """The trajectory is not trivial: the params with unit-scale gradients moved."""
    for i in (2, 4):  # GRAD_SCALES 1.0 and 0.05 (1e-6 and () barely move)
        moved = (params[i].detach().double() - before[i].double()).abs().max().item()
        assert moved > at_least * GRAD_SCALES[i], f"param {i} moved by {moved} only"


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_fast_paths_equal_loop(case, dtype, rtol, kernels):
    cls, kw = case.cls, case.kwargs
    ref_params = make_params(dtype)
    before = [p.detach().clone() for p in ref_params]
    win = []
    ref = run(cls, kw, ref_params, **IMPLS["loop"], after_step=(lambda o: win.append(o.win_rate()["overall"])) if cls is Sophia else None)
    assert_moved(ref_params, before)
    if cls is Sophia:  # the clip min(., 1) is active for some coordinates and not for others, all along
        assert all(0.2 < w < 0.9 for w in win), win
    for impl in ("foreach", "fused"):
        params = make_params(dtype)
        opt = run(cls, kw, params, **IMPLS[impl])
        assert_opts_close(opt, ref, params, ref_params, rtol)
        assert all(float(opt.state[p]["step"]) == STEPS for p in params)


def test_sophia_clips_where_the_loop_does(kernels):
    """The win rate (coordinates with |m| < rho*bs*h + eps) read off the state is the loop's."""
    case = get_case("Sophia-bs-max")
    cls, kw = case.cls, case.kwargs
    rates = {}
    for impl in ("loop", "foreach", "fused"):
        rates[impl] = []
        run(cls, kw, make_params(torch.float64), **IMPLS[impl], after_step=lambda o: rates[impl].append(o.win_rate()["params"]))
    assert rates["foreach"] == rates["loop"] == rates["fused"]


SPREAD = ["Sophia-bs-max", "GaussNewtonDiag-sqrt-momentum-ema-max", "AdaGradNorm-decay-init", "AdaGradNorm-global-eps-max"]


@pytest.mark.parametrize("name", SPREAD)
def test_parallel_split_equals_loop(name, kernels):
    """Two threads split the concatenated element range in the middle of a tensor."""
    torch.set_num_threads(2)
    cls, kw = get_case(name).cls, get_case(name).kwargs
    shapes = [(), (7,), (37, 5), (3, 4, 5), BIG]
    ref_params = make_params(torch.float32, shapes=shapes)
    ref = run(cls, kw, ref_params, steps=10, **IMPLS["loop"])
    params = make_params(torch.float32, shapes=shapes)
    opt = run(cls, kw, params, steps=10, **IMPLS["fused"])
    assert_opts_close(opt, ref, params, ref_params, 1e-5)


@pytest.mark.parametrize("scope", ["group", "global"])
def test_adagrad_norm_fused_is_independent_of_the_thread_count(scope, kernels):
    """The fused norm sums fixed blocks in a fixed order: 1 and 2 threads give the same bits."""
    shapes = [(7,), BIG, (300, 200), (5,)]
    out = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        params = make_params(torch.float32, shapes=shapes)
        opt = run(AdaGradNorm, dict(lr=0.5, weight_decay=0.1, scope=scope), params, steps=5, **IMPLS["fused"])
        out.append((params, opt.state[params[0]]["sum"].item()))
    (p1, s1), (p2, s2) = out
    assert s1 == s2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


@pytest.mark.parametrize("name", ["Sophia-plain", "GaussNewtonDiag-momentum-ema-decay", "AdaGradNorm-default", "AdaGradNorm-global-decay"])
def test_two_groups_mixed_dtypes_and_params_without_grad(name, kernels):
    """Two groups with different hyperparameters, float32/float64 mixed within each group, and
    a parameter without gradient in each: it stays untouched (and stateless unless it was fed
    curvature), the others follow the loop."""
    case = get_case(name)
    cls = case.cls

    def steps(opt, a, b):
        for k in range(STEPS):
            g = torch.Generator().manual_seed(1000 + k)
            if cls is not AdaGradNorm and k % EVERY == 0:
                # the gradless param of group b gets no curvature (None), group a's does
                est = [curvature(p.shape, g, cls is GaussNewtonDiag) for p in a] + [curvature(p.shape, g, False) for p in b[:2]]
                opt.update_curvature(est + [None])
            for p in a[:2] + b[:2]:  # the last param of each group never gets a gradient
                p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
            opt.step()

    ref, ra, rb = two_group_optimizer(case, "loop")
    before = [p.detach().clone() for p in ra + rb]
    steps(ref, ra, rb)
    assert torch.equal(ra[2], before[2]) and torch.equal(rb[2], before[5])
    assert (ra[0] - before[0]).abs().max() > 0.01 and (rb[1] - before[4]).abs().max() > 0.01
    for impl in ("foreach", "fused"):
        opt, a, b = two_group_optimizer(case, impl)
        steps(opt, a, b)
        for p, q in zip(a + b, ra + rb):
            rtol = 1e-5 if p.dtype == torch.float32 else 1e-10
            if cls is AdaGradNorm and p.dtype == torch.float64:
                # b^2 sums float32 gradients too (with weight decay, of float32 params that
                # follow the loop to float32 rounding): float64 params are as exact as b
                rtol = 1e-8
            assert_close_scaled(p.detach(), q.detach(), rtol, impl)
            assert set(opt.state[p]) == set(ref.state[q])
            for name, value in ref.state[q].items():
                tol = 1e-5 if name == "sum" else rtol
                assert_close_scaled(opt.state[p][name], value, tol, f"{impl} state {name}")
        assert torch.equal(a[2], before[2]) and torch.equal(b[2], before[5])
        assert len(opt.state[b[2]]) == 0


@pytest.mark.parametrize("name", ["Sophia-betas-decay", "GaussNewtonDiag-sqrt-momentum-ema-max", "AdaGradNorm-decay-init", "AdaGradNorm-global-decay"])
def test_bfloat16_close_to_loop(name, kernels):
    """bfloat16 storage, float32 math in every path (AdaGradNorm: the loop's own bf16 ops, the
    norm in double). Tolerance as in test_fast_paths: most elements equal, all within 8 bf16
    ulps of the tensor's scale."""
    case = get_case(name)
    assert_bf16_paths_close_to_loop(case.cls, case.kwargs)


@pytest.mark.parametrize("src,dst", [("fused", "loop"), ("loop", "fused"), ("foreach", "fused"), ("fused", "foreach")])
@pytest.mark.parametrize("name", SPREAD)
def test_state_dict_exchanged_between_paths(name, src, dst, kernels):
    cls, kw = get_case(name).cls, get_case(name).kwargs
    straight_params = make_params(torch.float64)
    straight = run(cls, kw, straight_params, **IMPLS[dst])
    first = make_params(torch.float64)
    opt = run(cls, kw, first, steps=STEPS // 2 + 1, **IMPLS[src])  # 26: mid-way between two curvatures
    saved = copy.deepcopy(opt.state_dict())
    second = [p.detach().clone().requires_grad_() for p in first]
    opt2 = cls(second, **kw, **IMPLS[dst])
    opt2.load_state_dict(saved)
    run(cls, kw, second, steps=STEPS - STEPS // 2 - 1, start=STEPS // 2 + 1, opt=opt2)
    assert_opts_close(opt2, straight, second, straight_params, 1e-10)


@pytest.mark.parametrize("cls,kw", [(AdaGradNorm, dict(lr=0.5, scope="global")), (GaussNewtonDiag, dict(lr=0.1, beta2=0.9))])
def test_state_dict_keeps_counters_and_accumulators_exact(cls, kw, kernels):
    """torch.optim casts floating-point state to the param's dtype on load; AdaGradNorm keeps its
    b^2 in float64 and GaussNewtonDiag its curvature count in float32, so a resumed run is the
    uninterrupted one bit for bit (float32 and bfloat16 params, fused path)."""
    for dtype in (torch.float32, torch.bfloat16):
        straight_params = make_params(dtype)
        run(cls, kw, straight_params, **IMPLS["fused"])
        first = make_params(dtype)
        opt = run(cls, kw, first, steps=STEPS // 2 + 1, **IMPLS["fused"])
        second = [p.detach().clone().requires_grad_() for p in first]
        opt2 = cls(second, **kw, **IMPLS["fused"])
        opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
        key, want = ("sum", torch.float64) if cls is AdaGradNorm else ("curvature_step", torch.float32)
        assert all(opt2.state[p][key].dtype == want and opt2.state[p][key].device.type == "cpu" for p in second)
        run(cls, kw, second, steps=STEPS - STEPS // 2 - 1, start=STEPS // 2 + 1, opt=opt2)
        assert all(torch.equal(a, b) for a, b in zip(second, straight_params))


def test_tensors_the_kernel_does_not_take_use_the_loop(kernels):
    """float16 parameters go through the reference loop inside a fused step (bit for bit); for
    AdaGradNorm, whose norm covers the whole scope, the whole scope then takes the loop."""
    def build(cls, kw, impl):
        g = torch.Generator().manual_seed(3)
        ps = [torch.randn(10, generator=g).half().requires_grad_(), torch.randn(6, 4, generator=g).requires_grad_()]
        return ps, cls(ps, **kw, **IMPLS[impl])

    for cls, kw in [(Sophia, dict(lr=0.05)), (GaussNewtonDiag, dict(lr=0.1, momentum=0.5)), (AdaGradNorm, dict(lr=0.5))]:
        outs = {}
        for impl in ("loop", "fused"):
            ps, opt = build(cls, kw, impl)
            for k in range(6):
                g = torch.Generator().manual_seed(k)
                feed(opt, k, g)
                for p in ps:
                    p.grad = torch.randn(p.shape, generator=g).to(p.dtype)
                opt.step()
            outs[impl] = (ps, opt)
        (lp, _), (fp, fo) = outs["loop"], outs["fused"]
        assert torch.equal(fp[0], lp[0]), cls.__name__
        if cls is AdaGradNorm:
            assert torch.equal(fp[1], lp[1])
        else:
            assert_close_scaled(fp[1].detach(), lp[1].detach(), 1e-5)
        assert all(float(fo.state[p]["step"]) == 6.0 for p in fp)


@pytest.mark.parametrize("impl", ["foreach", "fused"])
def test_gauss_newton_fast_paths_refuse_a_step_without_curvature(impl, kernels):
    p = torch.ones(3)
    steps, ks = [torch.tensor(0.0)], [torch.tensor(0.0)]
    state = {"step": steps, "curvature": [torch.ones(3)], "curvature_step": ks}
    with pytest.raises(RuntimeError, match="update_curvature"):
        gauss_newton_diag([p], [torch.ones(3)], state, GaussNewtonHyper(lr=0.1, damping=0.0), impl=impl)
    assert float(steps[0]) == 0.0 and torch.equal(p, torch.ones(3))


def test_adagrad_norm_global_scope_needs_one_path():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = AdaGradNorm([{"params": [a], "fused": False, "foreach": False}, {"params": [b], "foreach": True, "fused": None}], scope="global")
    a.grad, b.grad = torch.ones(2), torch.ones(3)
    with pytest.raises(ValueError, match="same foreach/fused"):
        opt.step()
    assert torch.equal(a, torch.zeros(2)) and len(opt.state[a]) == 0


def test_coefficient_helpers_match_the_loop_expressions():
    for step, k in [(1, 1), (2, 1), (17, 5)]:
        h = GaussNewtonHyper(lr=0.1, momentum=0.9, beta2=0.99, damping=1e-3, weight_decay=0.01)
        assert gauss_newton_coefficients(h, step, k) == (0.9, 1.0 - 0.9**step, 1.0 - 0.99**k, 1e-3, -0.1)
        assert h.pre_step() == ("decoupled", 1.0 - 0.1 * 0.01, False)
        h0 = GaussNewtonHyper(lr=0.1, momentum=0.0, beta2=0.0, damping=0.0, weight_decay=0.0)
        c0 = gauss_newton_coefficients(h0, step, k)
        assert (c0.bc1, c0.bc2, h0.pre_step().weight_decay) == (1.0, 1.0, "none")
    h = SophiaHyper(lr=0.1, betas=(0.9, 0.99), rho=0.04, bs=2.0, weight_decay=0.1)
    assert sophia_coefficients(h, 1) == (0.9, 0.04 * 2.0, 1e-15, -0.1)
    assert h.pre_step() == ("decoupled", 1.0 - 0.1 * 0.1, False)


# ---- choice of the default path -----------------------------------------------------------
class RecordingOps:
    """Stands for ``torch.ops.precond``: forwards every op and records (name, returned value)."""

    def __init__(self, ops):
        self._ops, self.calls = ops, []

    def __getattr__(self, name):
        op = getattr(self._ops, name)

        def call(*args, **kwargs):
            out = op(*args, **kwargs)
            self.calls.append((name, out))
            return out

        return call


@pytest.mark.parametrize("cls,kw", [(Sophia, {}), (GaussNewtonDiag, dict(damping=0.5)), (AdaGradNorm, {}), (AdaGradNorm, dict(scope="global"))],
                         ids=["Sophia", "GaussNewtonDiag", "AdaGradNorm-group", "AdaGradNorm-global"])  # fmt: skip
def test_default_is_fused_on_cpu(cls, kw, kernels, monkeypatch):
    """``fused=None, foreach=None`` runs the C++ kernel on CPU tensors (one call per step, every
    tensor taken); explicit ``False``/``False`` runs the loop (no call)."""
    monkeypatch.delenv(_dispatch.DEFAULT_ENV, raising=False)
    op = {Sophia: "sophia_step", GaussNewtonDiag: "gauss_newton_diag_step", AdaGradNorm: "adagrad_norm_step"}[cls]
    rec = RecordingOps(_build.load())
    monkeypatch.setitem(_build._state, "ops", rec)
    for impl, expected in [({}, 3), (IMPLS["fused"], 3), (IMPLS["loop"], 0)]:
        rec.calls.clear()
        run(cls, kw, make_params(torch.float32), steps=3, **impl)
        assert [c for c in rec.calls if c[0] != "all_finite"] == [(op, [])] * expected, impl


# ---- fallback when the extension cannot be built ---------------------------------------------
FALLBACK_SCRIPT = textwrap.dedent(
    """
    import warnings, torch
    from precond.optim import AdaGradNorm, GaussNewtonDiag, Sophia
    from precond.optim.kernels import KernelsUnavailableWarning

    def run(cls, kw, **impl):
        g = torch.Generator().manual_seed(0)
        ps = [torch.randn(5, 3, generator=g).requires_grad_(), torch.randn(4, generator=g, dtype=torch.float64).requires_grad_()]
        opt = cls(ps, **kw, **impl)
        for k in range(6):
            if hasattr(opt, "update_curvature") and k % 2 == 0:
                opt.update_curvature([torch.rand(p.shape, generator=g, dtype=p.dtype) + 0.1 for p in ps])
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
            opt.step()
        return ps

    cases = [(Sophia, dict(lr=0.05, rho=0.5)), (GaussNewtonDiag, dict(lr=0.1, power=-0.5, momentum=0.9, beta2=0.9)),
             (AdaGradNorm, dict(lr=0.5, weight_decay=0.1)), (AdaGradNorm, dict(lr=0.5, scope="global"))]
    equal = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for cls, kw in cases:
            loop = run(cls, kw, fused=False, foreach=False)
            for impl in (dict(fused=True), dict()):
                equal &= all(torch.equal(a, b) for a, b in zip(run(cls, kw, **impl), loop))
    ours = [w for w in caught if issubclass(w.category, KernelsUnavailableWarning)]
    print("WARNINGS", len(ours), "OTHER", len(caught) - len(ours))
    print("EQUAL", equal)
    """
)


def test_fallback_without_extension_equals_loop():
    """``PRECOND_DISABLE_EXTENSIONS=1``: fused and the default run the loop (bit for bit), and
    precond warns once."""
    env = dict(os.environ)
    env.pop(_dispatch.DEFAULT_ENV, None)
    env["PRECOND_DISABLE_EXTENSIONS"] = "1"
    out = subprocess.run([sys.executable, "-c", FALLBACK_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert lines["WARNINGS"] == "1 OTHER 0", out.stdout
    assert lines["EQUAL"] == "True"
