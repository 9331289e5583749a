"""Choice of the implementation (``loop``, ``foreach`` or ``fused``) for one param group.

Explicit choices are honoured: ``fused=True`` runs the C++ kernels (if they cannot be built,
precond warns once and runs the reference loop, ``foreach`` off the CPU; tensors a kernel
does not handle, e.g. float16 or CUDA, take the loop/``foreach`` path silently);
``foreach=True`` runs ``torch._foreach_*``; ``False``/``False`` runs the loop.

``fused=None, foreach=None`` (the default) picks the fastest path known to work:

* every parameter on the CPU in float32, float64 or bfloat16, and the kernels built or
  buildable (the first call compiles them, about 20 s once per machine and torch version,
  cached afterwards): ``fused``;
* every parameter on one non-CPU device (CUDA): ``foreach`` (torch's multi-tensor kernels);
* otherwise: ``loop`` (on CPU, ``foreach`` is slower than the loop).

``PRECOND_DEFAULT_IMPL=loop|foreach|fused`` overrides the default choice (not an explicit one).

On CUDA, ``fused=True`` runs the Triton kernels (``"triton"``, :mod:`precond.optim.kernels.triton`)
when ``triton`` imports and the rule has one; the default stays ``foreach`` until a GPU
benchmark shows the kernels faster (docs/fast_steps.md, "GPU path").
``PRECOND_TRITON_ON_CPU=1`` with ``TRITON_INTERPRET=1`` (the tests' switch) routes
``fused=True`` on CPU tensors to the Triton kernels under Triton's interpreter.
"""

from __future__ import annotations

import os
from typing import Any

import torch

IMPLS = ("loop", "foreach", "fused")
DEFAULT_ENV = "PRECOND_DEFAULT_IMPL"
TRITON_CPU_ENV = "PRECOND_TRITON_ON_CPU"
FUSED_DTYPES = (torch.float32, torch.float64, torch.bfloat16)


def resolve_impl(optimizer: Any, group: dict[str, Any], params: list[torch.Tensor]) -> str:
    """``fused=True`` -> fused, ``foreach=True`` -> foreach, explicit False/False -> loop,
    and both ``None`` -> the fastest path known to work for these tensors."""
    fused, foreach = group.get("fused"), group.get("foreach")
    if fused:
        return "triton" if triton_path(optimizer, params) else "fused"
    if foreach:
        return "foreach"
    if fused is None and foreach is None:
        return default_impl(optimizer, params)
    return "loop"


def takes_triton(optimizer: Any, group: dict[str, Any], params: list[torch.Tensor]) -> bool:
    """Whether :func:`resolve_impl` gives ``"triton"`` for ``group`` (``fused=True`` and
    :func:`triton_path`), without resolving the other paths: the step asks it of every group,
    every step, before the groups' own :func:`resolve_impl`."""
    return bool(group.get("fused")) and triton_path(optimizer, params)


def triton_path(optimizer: Any, params: list[torch.Tensor]) -> bool:
    """Whether ``fused=True`` runs the Triton kernels: every param on one CUDA device (or on the
    CPU under the tests' switch, see the module docstring), a rule with a Triton kernel, and
    ``triton`` importable."""
    rule = getattr(optimizer, "rule", None)
    name = rule.name if rule is not None else getattr(optimizer, "triton_kernel", None)  # AdaGradNorm: no Rule
    if name is None or not params or any(p.device != params[0].device for p in params):
        return False
    kind = params[0].device.type
    if kind == "cpu":
        if os.environ.get(TRITON_CPU_ENV) != "1" or os.environ.get("TRITON_INTERPRET") != "1":
            return False
    elif kind != "cuda":
        return False
    from .kernels import triton_rules

    return name in triton_rules()


def default_impl(optimizer: Any, params: list[torch.Tensor]) -> str:
    """The path used when neither ``fused`` nor ``foreach`` is given (see the module docstring)."""
    forced = os.environ.get(DEFAULT_ENV, "").strip().lower()
    if forced:
        if forced not in IMPLS:
            raise ValueError(f"invalid {DEFAULT_ENV}={forced!r}: must be one of {', '.join(IMPLS)} (or unset)")
        return forced
    if not params:
        return "loop"
    device = params[0].device
    if any(p.device != device for p in params):
        return "loop"
    if device.type != "cpu":
        return "foreach"
    if any(p.dtype not in FUSED_DTYPES for p in params):
        return "loop"
    return "fused" if kernel_ops() is not None else "loop"


_BUILD: Any = None  # precond.optim.kernels._build, once imported


def kernel_ops() -> Any:
    """The kernels' ``_build.load()``: ``torch.ops.precond`` or None. Asked every step (here and by
    the non-finite check), so the import statement runs once (the package imports lazily: it
    imports the optimizers' modules)."""
    global _BUILD
    if _BUILD is None:
        from .kernels import _build

        _BUILD = _build
    return _BUILD.load()
