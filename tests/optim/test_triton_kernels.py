"""The Triton kernels (issue 18) on CPU under Triton's interpreter, against the reference loop.

``TRITON_INTERPRET=1`` must be set before ``triton`` is imported and holds for the whole
process, so the checks run in a child process (``triton_worker.py``, one per fixture) and each
test asserts on that child's report for its job. ``fused=True`` reaches the kernels on CPU
tensors through the tests' switch ``PRECOND_TRITON_ON_CPU=1`` (set in the child only; CPU
defaults are unchanged). The default run checks two option sets (AGD's every option, GaussNewtonDiag's
curvature counts), bfloat16 storage, three coefficient functions, GradScaler, the class
AdaGradNorm (both scopes, GradScaler, the check), the device-side non-finite check and the custom
ops' tracing (about 30 s of CPU: the interpreter runs each program in Python); ``-m slow`` runs
every option set of the Triton rules in float64 and float32, every coefficient function, bfloat16
storage for each kernel and AdaGrad-Norm's functional two passes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from precond.optim.cases import TABLE

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton (pip install -e '.[triton]')")

WORKER = Path(__file__).with_name("triton_worker.py")
TRITON_CLASSES = {"AGD", "Adam", "AdamW", "AdaBound", "RMSProp", "AdaGrad", "Sophia", "GaussNewtonDiag", "AdaGradNorm"}
CASES = [c.name for c in TABLE if c.cls.__name__ in TRITON_CLASSES]
#: the cases of the rules with a coefficient function (AdaGrad-Norm's scale needs b_t: no such function)
COEFFICIENT_CASES = [c for c in CASES if not c.startswith("AdaGradNorm-")]

DEFAULT_JOBS = [
    "paths:AGD-amsgrad-win-clip-max/f64",  # every AGD option, maximize, two groups
    "paths:GaussNewtonDiag-sqrt-momentum-ema-max/f32",  # the curvature-count column
    "bf16:AGD-amsgrad",  # bfloat16 storage, float32 math
    "coefficients:AGD-amsgrad-win-clip-max",
    "coefficients:AdaBound-bounds-betas",
    "coefficients:GaussNewtonDiag-sqrt-momentum-ema-max",
    "scaler:Adam-amsgrad/kernel",  # GradScaler's grad_scale unscaled in the kernel
    "scaler:AGD-default/unscaled",  # the user's unscale_, found_inf only
    "nan_policy:raise",
    "nan_policy:skip",
    "finite:",  # the device-side check: NaN, +-inf, large finite values, each dtype
    "opcheck:",
    "trace:make_fx",
    "trace:aot_eager",
    "paths:AdaGradNorm-default/f64",  # the class: scope="group", two groups (the second L2 + maximize)
    "paths:AdaGradNorm-global-decay/f32",  # scope="global" over two groups
    "scaler:AdaGradNorm-default/kernel",  # AdaGrad-Norm: grad_scale in both passes, found_inf skips b^2 too
    "nan_policy:raise/AdaGradNorm",
]
BF16 = ["AGD-amsgrad", "AGD-win", "Adam-default", "AdaBound-amsbound-decay", "RMSProp-centered-momentum",
        "AdaGrad-eps-inside-max", "Sophia-bs-max", "GaussNewtonDiag-momentum-ema-decay", "AdaGradNorm-default"]  # fmt: skip
SLOW_JOBS = (
    [f"paths:{c}/{dt}" for c in CASES for dt in ("f64", "f32") if f"paths:{c}/{dt}" not in DEFAULT_JOBS]
    + [f"coefficients:{c}" for c in COEFFICIENT_CASES if f"coefficients:{c}" not in DEFAULT_JOBS]
    + [f"bf16:{c}" for c in BF16 if f"bf16:{c}" not in DEFAULT_JOBS]
    + ["agnorm:f64", "agnorm:f32", "nan_policy:propagate", "scaler:AdamW-amsgrad-max/kernel",
       "scaler:AdaGradNorm-global-decay/unscaled", "nan_policy:skip/AdaGradNorm"]
)


#: the kernels compiled for sm_90 (no GPU needed): what the interpreter cannot check (the
#: compiled language: constexpr globals, types, lowering of float64 exp2/log2, bf16 rounding)
RULE_NAMES = ["agd", "adam", "adabound", "rmsprop", "adagrad", "sophia", "gauss_newton_diag"]
PTX_DEFAULT = ["ptx:agd/f32/on", "ptx:agd/bf16/on", "ptx:agd/f64/off", "ptx:adam/f32/on", "ptx:finite/bf16",
               "ptx:adagrad_norm/f32"]  # fmt: skip
PTX_SLOW = [j for j in [f"ptx:{r}/{dt}/{m}" for r in RULE_NAMES for dt in ("f32", "bf16", "f64") for m in ("on", "off")]
            + [f"ptx:{k}/{dt}" for k in ("finite", "adagrad_norm") for dt in ("f32", "bf16", "f64")]
            if j not in PTX_DEFAULT]  # fmt: skip


def _run(jobs: list[str], *flags: str, cache: Path | None = None) -> tuple[dict[str, dict], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "PRECOND_DEFAULT_IMPL")}
    if cache is not None:
        env["TRITON_CACHE_DIR"] = str(cache)  # a fresh cache: every kernel really compiles
    out = subprocess.run([sys.executable, str(WORKER), *flags, *jobs], capture_output=True, text=True, env=env,
                         timeout=3600)  # fmt: skip
    results = {}
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            results[r["job"]] = r
    return results, out.stderr[-3000:]


def _check(job: str, report: tuple[dict[str, dict], str]) -> None:
    results, stderr = report
    assert job in results, f"the worker did not report {job} (it crashed?): {stderr}"
    assert results[job]["ok"], results[job]["error"]


@pytest.fixture(scope="module")
def default_report():
    return _run(DEFAULT_JOBS)


@pytest.fixture(scope="module")
def slow_report(request):
    """The slow jobs selected in this session, in one child."""
    wanted = [i.callspec.params["job"] for i in request.session.items
              if getattr(i, "originalname", "") == "test_triton_every_case" and hasattr(i, "callspec")]  # fmt: skip
    return _run(wanted)


@pytest.fixture(scope="module")
def ptx_report(request, tmp_path_factory):
    """The compile jobs selected in this session, in one child without the interpreter."""
    wanted = [i.callspec.params["job"] for i in request.session.items
              if getattr(i, "originalname", "") == "test_triton_compiles_for_sm90" and hasattr(i, "callspec")]  # fmt: skip
    return _run(wanted, "--compiled", cache=tmp_path_factory.mktemp("triton-cache"))


@pytest.mark.parametrize("job", PTX_DEFAULT + [pytest.param(j, marks=pytest.mark.slow) for j in PTX_SLOW])
def test_triton_compiles_for_sm90(job, ptx_report):
    _check(job, ptx_report)


@pytest.mark.parametrize("job", DEFAULT_JOBS)
def test_triton_interpreted(job, default_report):
    _check(job, default_report)


@pytest.mark.slow
@pytest.mark.parametrize("job", SLOW_JOBS)
def test_triton_every_case(job, slow_report):
    _check(job, slow_report)


def test_cpu_defaults_unchanged_without_the_switch():
    """In this (uninterpreted) process fused=True on CPU stays the C++ kernel, and the default
    on CPU is not the Triton path: the switch is the tests' only."""
    import torch

    from precond.optim import AGD, _dispatch

    ps = [torch.zeros(3, requires_grad=True)]
    assert _dispatch.resolve_impl(AGD(ps, fused=True), {"fused": True, "foreach": None}, ps) == "fused"
    assert _dispatch.resolve_impl(AGD(ps), {"fused": None, "foreach": None}, ps) != "triton"
    assert not AGD(ps, fused=True)._step_supports_amp_scaling
