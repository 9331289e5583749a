"""Runs the Triton-kernel checks under Triton's interpreter, in a process of its own.

``TRITON_INTERPRET=1`` must be set before ``triton`` is imported, and it changes what
``triton`` does for the whole process, so ``tests/optim/test_triton_kernels.py`` starts this
script (``python triton_worker.py JOB...``) instead of running the checks in pytest's process.
Each job is ``kind:argument`` (see ``JOBS``); for each one line of JSON is printed:
``{"job": ..., "ok": bool, "error": str, "seconds": float}``. The checks compare against the
reference loop with the same helpers and tolerances as ``test_fast_paths.py``. With
``--compiled`` first (no interpreter), the ``ptx`` jobs compile the kernels for sm_90.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
import traceback
import warnings

#: ``--compiled``: no interpreter; the ``ptx`` jobs compile the kernels for a GPU target instead
COMPILED = sys.argv[1:2] == ["--compiled"]
if not COMPILED:
    os.environ["TRITON_INTERPRET"] = "1"
    os.environ["PRECOND_TRITON_ON_CPU"] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from optim_testlib import (  # noqa: E402
    IMPLS,
    assert_bf16_paths_close_to_loop,
    assert_close_scaled,
    assert_opts_close,
    make_params,
    run,
)
from precond import optim  # noqa: E402
from precond.optim import NonFiniteGradientError, _dispatch  # noqa: E402
from precond.optim.cases import get_case  # noqa: E402
from precond.optim.functional.adagrad_norm import AdaGradNormHyper, adagrad_norm  # noqa: E402
from precond.optim.kernels import triton as tk  # noqa: E402

# masked lanes of a block hold 0 and divide by 0 in numpy; the stores skip them
warnings.filterwarnings("ignore", message="(divide by zero|invalid value) encountered", category=RuntimeWarning)
np.seterr(divide="ignore", invalid="ignore")

#: small blocks: the tensors of make_params (1 to 360 elements) split into several chunks and
#: blocks, none a multiple of the block
tk.CONFIG.set(block=64, chunk=128)
DTYPES = {"f64": (torch.float64, 1e-10), "f32": (torch.float32, 1e-5)}


def paths(arg: str) -> None:
    """``Case/dtype``: two param groups (the case's second-group options), 50 steps, against the loop."""
    name, dt = arg.rsplit("/", 1)
    case = get_case(name)
    dtype, rtol = DTYPES[dt]

    def make(impl: str):
        ps = make_params(dtype)
        opt = case.make(case.groups(ps[:2], ps[2:]), **IMPLS[impl])
        return run(case.cls, case.kwargs, ps, opt=opt), ps

    ref, rps = make("loop")
    opt, ps = make("fused")
    assert all(_dispatch.resolve_impl(opt, g, g["params"]) == "triton" for g in opt.param_groups), "not on the Triton path"
    assert_opts_close(opt, ref, ps, rps, rtol)


def bf16(name: str) -> None:
    """bfloat16 storage: as test_fast_paths.test_bfloat16_close_to_loop (fused = Triton here)."""
    case = get_case(name)
    assert_bf16_paths_close_to_loop(case.cls, case.kwargs)


def coefficients(name: str) -> None:
    """The kernel's coefficient function equals the rule's ``coefficients`` field for field
    (steps 1..300; GaussNewtonDiag's curvature count 1..300 too), relative 1e-13."""
    import triton
    import triton.language as tl

    case = get_case(name)
    opt = case.make([torch.zeros(3, requires_grad=True)])
    hyper = opt._hyper(opt.param_groups[0])
    tr = tk.RULES[opt.rule.name]
    fn = tr.coefficients
    K = len(opt.rule.Coefficients._fields)
    steps = torch.arange(1, 301, dtype=torch.float64)
    row = torch.tensor([float(hyper.pre_step().factor), *map(float, tr.hyper(hyper))], dtype=torch.float64)
    out = torch.zeros(len(steps), K, dtype=torch.float64)

    @triton.jit
    def probe(row, steps, out, F: tl.constexpr, K: tl.constexpr, COUNTS: tl.constexpr):
        i = tl.program_id(0)
        t = tl.load(steps + i)
        if COUNTS:
            k = F(row, t, t)
        else:
            k = F(row, t)
        for j in tl.static_range(K):
            tl.store(out + i * K + j, k[j])

    counts = bool(opt.rule.counts)
    probe[(len(steps),)](row, steps, out, F=fn, K=K, COUNTS=counts)
    for i, t in enumerate(range(1, 301)):
        want = opt.rule.coefficients(hyper, t, *([t] if counts else []))
        got = out[i].tolist()
        for field, w, g in zip(opt.rule.Coefficients._fields, want, got):
            assert abs(g - w) <= 1e-13 * max(abs(w), 1e-300), f"{field} at step {t}: {g!r} != {w!r}"


def _scaled_run(case_name: str, impl: str, user_unscale: bool):
    """Six steps under torch.amp.GradScaler('cpu'); step 3's gradients overflow (inf)."""
    case = get_case(case_name)
    ps = make_params(torch.float32)
    opt = case.make(ps, **IMPLS[impl])
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2)
    seen = []
    for k in range(6):
        g = torch.Generator().manual_seed(k)
        loss = sum((p * torch.randn(p.shape, generator=g)).sum() for p in ps)
        opt.zero_grad()
        scaler.scale(loss).backward()
        if k == 3:
            ps[2].grad.view(-1)[0] = float("inf")
        if user_unscale:
            scaler.unscale_(opt)
        before = [p.detach().clone() for p in ps]
        scaler.step(opt)
        scaler.update()
        seen.append(all(torch.equal(a, p) for a, p in zip(before, ps)))
    return opt, ps, seen


def scaler(arg: str) -> None:
    """GradScaler: unscale in the kernel (grad_scale) or by the user (found_inf only); the
    overflowing step is skipped on the device, counters included; equal to the loop's run."""
    name, mode = arg.rsplit("/", 1)
    user = mode == "unscaled"
    ref, rps, rseen = _scaled_run(name, "loop", user)
    opt, ps, seen = _scaled_run(name, "fused", user)
    assert opt._step_supports_amp_scaling and not ref._step_supports_amp_scaling
    assert seen == rseen and seen[3] and not any(seen[:3] + seen[4:]), (seen, rseen)
    assert_opts_close(opt, ref, ps, rps, 1e-6)


def nan_policy(arg: str) -> None:
    """``policy[/Class]`` (AGD unless named): the device-side check: a NaN gradient changes
    nothing (AdaGradNorm: its accumulator neither); 'raise' raises at that step (on CPU the flag
    is read at once), 'skip' counts it, 'propagate' applies it."""
    policy, _, name = arg.partition("/")
    cls = getattr(optim, name or "AGD")
    ps = make_params(torch.float32)
    opt = cls(ps, lr=1e-2, fused=True, nan_policy=policy)
    assert _dispatch.resolve_impl(opt, opt.param_groups[0], ps) == "triton", "not on the Triton path"
    for k in range(3):
        for p in ps:
            p.grad = torch.full_like(p, 0.5)
        opt.step()
    before = [p.detach().clone() for p in ps]
    states = [{k: v.clone() for k, v in opt.state[p].items()} for p in ps]
    ps[3].grad.view(-1)[5] = float("nan")
    if policy == "raise":
        try:
            opt.step()
        except NonFiniteGradientError:
            pass
        else:
            raise AssertionError("no NonFiniteGradientError")
    else:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            opt.step()
    changed = not all(torch.equal(a, p) for a, p in zip(before, ps))
    if policy == "propagate":
        assert changed and torch.isnan(ps[3]).any()
        return
    assert not changed
    for p, s in zip(ps, states):
        for key, v in s.items():
            assert torch.equal(opt.state[p][key], v), key
    if policy == "skip":
        assert opt.skipped_steps == 1


def finite(_: str) -> None:
    """nonfinite_flag: 0 for finite tensors (3e38 included), 1 for one NaN, +inf or -inf in the
    last block of the last tensor, for float32, float64 and bfloat16."""
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        ts = [torch.randn(n, generator=torch.Generator().manual_seed(n)).to(dtype) for n in (1, 40, 300)]
        ts.append(torch.full((70,), 3e38, dtype=dtype))
        assert float(tk.nonfinite_flag(ts)) == 0.0, dtype
        for bad in (float("nan"), float("inf"), -float("inf")):
            broken = [t.clone() for t in ts]
            broken[2][299] = bad
            assert float(tk.nonfinite_flag(broken)) == 1.0, (dtype, bad)


def _adam_args(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    shapes = [(5,), (70,), (3, 4)]
    ps = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    gs = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    state = [torch.zeros_like(p) for p in ps] * 2
    steps = [torch.zeros((), dtype=torch.float32) for _ in ps]
    return (ps, gs, state, [True, True, False], steps, [], [0.0, 0.9, 0.999, 1e-2, 1e-8], None, None, "none", False,
            [False, False])  # fmt: skip


def opcheck(_: str) -> None:
    """torch.library.opcheck on the Adam op (schema, fake tensor, AOT dispatch)."""
    torch.library.opcheck(torch.ops.precond_triton.adam_step.default, _adam_args())


def trace(mode: str) -> None:
    """A step holding the op traced: ``make_fx`` (fake tensors) or ``torch.compile(fullgraph=True)``
    (aot_eager), and the compiled step equals the op called directly."""
    op = torch.ops.precond_triton.adam_step
    if mode == "make_fx":
        from torch.fx.experimental.proxy_tensor import make_fx

        args = _adam_args()

        def f(ps, gs, state, steps):
            op(ps, gs, state, args[3], steps, [], args[6], None, None, "none", False, [False, False])
            return ps

        graph = make_fx(f, tracing_mode="fake")(args[0], args[1], args[2], args[4])
        assert "precond_triton.adam_step" in str(graph.code), graph.code
        return
    ref, got = _adam_args(), _adam_args()
    op(*ref)

    def step(ps, gs, state, steps):
        op(ps, gs, state, [True, True, False], steps, [], [0.0, 0.9, 0.999, 1e-2, 1e-8], None, None, "none", False, [False, False])

    torch.compile(step, fullgraph=True, backend="aot_eager")(got[0], got[1], got[2], got[4])
    for a, b in zip(got[0] + got[2] + got[4], ref[0] + ref[2] + ref[4]):
        assert torch.equal(a, b)


def agnorm(arg: str) -> None:
    """AdaGrad-Norm's two passes against the loop: two groups (L2; L2 with maximize, which changes
    the norm of ``-g + wd p``), 50 steps, one scope."""
    dtype, rtol = DTYPES[arg]
    hypers = [AdaGradNormHyper(lr=0.5, weight_decay=0.1),
              AdaGradNormHyper(lr=0.2, eps=1e-3, weight_decay=0.05, maximize=True)]  # fmt: skip
    out = {}
    for impl in ("loop", "triton"):
        ps = make_params(dtype)
        acc = torch.zeros((), dtype=torch.float64)
        steps = [torch.zeros(()) for _ in ps]
        for k in range(50):
            g = torch.Generator().manual_seed(k)
            gs = [torch.randn(p.shape, generator=g, dtype=torch.float64).to(dtype) for p in ps]
            groups = [(ps[:2], gs[:2], hypers[0]), (ps[2:], gs[2:], hypers[1])]
            if impl == "loop":
                adagrad_norm(groups, acc, steps)
            else:
                tk.adagrad_norm.adagrad_norm_step(groups, acc, steps)
        out[impl] = (ps, acc, steps)
    (ps, acc, steps), (rps, racc, rsteps) = out["triton"], out["loop"]
    assert_close_scaled(acc, racc, rtol, "b^2")
    for p, q in zip(ps, rps):
        assert_close_scaled(p, q, rtol, "param")
    assert [float(s) for s in steps] == [float(s) for s in rsteps]


PTX_ARGS = dict(ptrs="*i64", n_tensors="i32", numels="*i64", chunk_tensor="*i32", chunk_start="*i64", hyper="*fp64",
                scale_ptr="*fp32", skip_ptr="*fp32", flag="*fp32", out="*fp64", acc_ptr="*fp64")  # fmt: skip


def ptx(arg: str) -> None:
    """``rule/dtype/on|off``, ``finite/dtype`` or ``adagrad_norm/dtype``: the kernel compiles for
    an H100/H200 (sm_90: ``triton.compile`` with an explicit target, to PTX and cubin; no GPU
    needed), with every boolean option on (weight decay L2, maximize, GradScaler's scale, the
    skip flag) or off (decoupled decay), with 16-byte vector loads in the PTX."""
    import inspect

    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    assert not os.environ.get("TRITON_INTERPRET"), "run with --compiled"
    name, dt, *mode = arg.split("/")
    DT = {"f32": tl.float32, "bf16": tl.bfloat16, "f64": tl.float64}[dt]
    CT = tl.float64 if DT == tl.float64 else tl.float32
    block = dict(BLOCK=1024, CHUNK=8192, VEC=16 // {"f32": 4, "bf16": 2, "f64": 8}[dt])
    if name == "finite":
        kernels = [(tk.finite.nonfinite_kernel, dict(DT=DT, **block))]
    elif name == "adagrad_norm":
        an = tk.adagrad_norm
        on = dict(WD=1, HAS_SCALE=True, HAS_SKIP=True, **block)
        kernels = [(an.sumsq_kernel, dict(DT=DT, MAXIMIZE=True, **on)), (an.apply_kernel, dict(DT=DT, CT=CT, MAXIMIZE=True, **on))]
    else:
        tr, on = tk.RULES[name], mode == ["on"]
        consts = dict(DT=DT, CT=CT, WD=1 if on else 2, MAXIMIZE=on, HAS_SCALE=on, HAS_SKIP=on, **block)
        kernels = [(tr.kernel, {**consts, **{o: on for o in tr.options}})]
    for fn, consts in kernels:
        names = list(inspect.signature(fn.fn).parameters)
        signature = {n: "constexpr" if n in consts else PTX_ARGS[n] for n in names}
        src = ASTSource(fn=fn, signature=signature, constexprs={(names.index(k),): v for k, v in consts.items()})
        compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4, "enable_fp_fusion": True})
        ptx_text = compiled.asm["ptx"]
        assert ".entry" in ptx_text and compiled.asm["cubin"], "no PTX/cubin"
        # 16-byte loads: the main launch's alignment and mask hints reached the compiler
        assert re.search(r"ld\.global[\w.:]*\.v[24]\.", ptx_text), f"{fn.fn.__name__}: no vector loads in the PTX"


JOBS = {f.__name__: f for f in (paths, bf16, coefficients, scaler, nan_policy, finite, opcheck, trace, agnorm, ptx)}


def main(jobs: list[str]) -> None:
    for job in jobs:
        kind, _, arg = job.partition(":")
        t0 = time.perf_counter()
        try:
            with torch.no_grad() if kind in ("agnorm",) else contextlib.nullcontext():
                JOBS[kind](arg)
            ok, err = True, ""
        except Exception as exc:  # reported to the test, which fails with it
            ok, err = False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-3000:]}"
        print(json.dumps({"job": job, "ok": ok, "error": err, "seconds": round(time.perf_counter() - t0, 2)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[2:] if COMPILED else sys.argv[1:])
