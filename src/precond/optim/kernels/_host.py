"""Host-side driving of the fast paths, shared by every rule.

* :func:`fused_step` increments the step counters, builds the per-tensor table of per-step
  scalars (one row per tensor, computed in double by the rule's own coefficient helper, once
  per distinct step), launches the rule's C++ kernel on the CPU tensors, and hands whatever
  the kernel does not take (other devices, float16, layouts not shared with the state) to the
  reference loop (``foreach`` off the CPU). Without the extension it falls back to the same
  loop/foreach paths; :mod:`._build` has warned once.
* :func:`foreach_step` runs a rule's ``torch._foreach_*`` body per (device, dtype, step) bucket,
  upcasting bfloat16/float16 buckets to float32 for the math as the loop's
  ``working_precision`` does.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Hashable, Sequence

import torch

from ..functional._common import LOW_PRECISION
from . import _build

Lists = Sequence[list[torch.Tensor]]


def increment_steps(state_steps: list[torch.Tensor]) -> list[int]:
    """``step += 1`` for every counter (float32, as the loop's ``s += 1``) and their values as ints."""
    if not state_steps:
        return []
    torch._foreach_add_(state_steps, 1.0)
    return [int(s) for s in torch.stack(state_steps).tolist()]


def coeff_table(steps: Sequence[Hashable], row: Callable[[Any], Sequence[float]]) -> torch.Tensor:
    """(n, K) float64 table: row ``i`` holds ``row(steps[i])``; computed once per distinct key
    (a step, or e.g. GaussNewtonDiag's (step, curvature count) pair)."""
    distinct = {s: tuple(float(x) for x in row(s)) for s in set(steps)}
    if len(distinct) == 1:
        only = next(iter(distinct.values()))
        return torch.tensor([only], dtype=torch.float64).expand(len(steps), len(only))
    return torch.tensor([distinct[s] for s in steps], dtype=torch.float64)


def subset(lst: list[torch.Tensor], idx: Sequence[int]) -> list[torch.Tensor]:
    """``lst[idx]`` for a used list; an unused (empty) state list stays empty."""
    return [lst[i] for i in idx] if lst else lst


def has_tensor_hyperparameter(hp: dict[str, Any]) -> bool:
    """Per-row tensor hyperparameters (vectorized sweeps) are the loop's business."""
    return any(isinstance(v, torch.Tensor) for v in hp.values())


def fallback_impl(params: list[torch.Tensor]) -> str:
    """The path used when the kernels cannot run: the loop on CPU, ``foreach`` elsewhere."""
    return "loop" if all(p.device.type == "cpu" for p in params) else "foreach"


def clip_value(clip: float | None) -> float:
    return math.inf if clip is None else float(clip)


def fused_step(
    rule: Callable[..., None],
    lists: Lists,
    state_steps: list[torch.Tensor],
    hp: dict[str, Any],
    row: Callable[[int], Sequence[float]],
    launch: Callable[[Any, Lists, torch.Tensor], list[int]],
) -> None:
    """One fused step of ``rule`` over ``lists`` = (params, grads, *state lists).

    ``row(step)`` gives the kernel's per-step scalars; ``launch(ops, lists, table)`` calls the
    kernel and returns the indices it did not take.
    """
    params = lists[0]
    if not params:
        return
    ops = None if has_tensor_hyperparameter(hp) else _build.load()
    if ops is None:
        rule(*lists, state_steps, **hp, impl=fallback_impl(params))
        return
    if all(p.device.type == "cpu" for p in params):
        cpu_lists, cpu_steps = lists, state_steps
    else:
        cpu = [i for i, p in enumerate(params) if p.device.type == "cpu"]
        other = [i for i, p in enumerate(params) if p.device.type != "cpu"]
        rule(*[subset(lst, other) for lst in lists], subset(state_steps, other), **hp, impl="foreach")
        if not cpu:
            return
        cpu_lists, cpu_steps = [subset(lst, cpu) for lst in lists], subset(state_steps, cpu)
    table = coeff_table(increment_steps(cpu_steps), row)
    skipped = launch(ops, cpu_lists, table)
    if skipped:
        left = subset(cpu_steps, skipped)
        torch._foreach_sub_(left, 1.0)  # the loop counts these steps itself
        rule(*[subset(lst, skipped) for lst in cpu_lists], left, **hp, impl="loop")


def foreach_step(
    lists: Lists,
    state_steps: list[torch.Tensor],
    body: Callable[[list[list[torch.Tensor]], int], None],
) -> None:
    """Run ``body(work_lists, step)`` per (device, dtype, step) bucket.

    ``work_lists`` mirrors ``lists``; in low-precision buckets it holds float32 copies, and
    everything but the gradients (index 1) is copied back afterwards. ``body`` must update
    the params and state lists in place and leave the gradients untouched.
    """
    params = lists[0]
    if not params:
        return
    steps = increment_steps(state_steps)
    buckets: dict[tuple[torch.device, torch.dtype, int], list[int]] = {}
    for i, (p, s) in enumerate(zip(params, steps)):
        buckets.setdefault((p.device, p.dtype, s), []).append(i)
    for (_, dtype, step), idx in buckets.items():
        sub = [subset(lst, idx) if len(idx) != len(params) else lst for lst in lists]
        if dtype not in LOW_PRECISION:
            body(sub, step)
            continue
        work = [[t.float() for t in lst] for lst in sub]
        body(work, step)
        for k, (orig, new) in enumerate(zip(sub, work)):
            if k != 1 and orig:
                torch._foreach_copy_(orig, new)


def run_foreach(
    rule: Callable[..., None],
    lists: Lists,
    state_steps: list[torch.Tensor],
    hp: dict[str, Any],
    body: Callable[[list[list[torch.Tensor]], int], None],
) -> None:
    """The ``foreach`` path of ``rule``: :func:`foreach_step`, or the loop for tensor hyperparameters."""
    if has_tensor_hyperparameter(hp):
        rule(*lists, state_steps, **hp, impl="loop")
    else:
        foreach_step(lists, state_steps, body)


def foreach_prelude(
    p: list[torch.Tensor], g: list[torch.Tensor], *, maximize: bool, l2: float = 0.0, decay: float = 1.0
) -> list[torch.Tensor]:
    """The start of every foreach body: ``-g`` under ``maximize``, L2 decay ``g + l2 * p`` (new
    lists: ``p.grad`` is never modified) and decoupled decay ``p *= decay`` in place."""
    if maximize:
        g = torch._foreach_neg(g)
    if l2 != 0.0:
        g = torch._foreach_add(g, p, alpha=l2)
    if decay != 1.0:
        torch._foreach_mul_(p, decay)
    return g
