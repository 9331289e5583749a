"""Host-side driving of the fast paths, shared by every rule.

A rule's module registers its two fast paths with :func:`register_foreach` (the rule's
``torch._foreach_*`` math on lists, after the shared pre-step) and :func:`register_fused` (the
kernel's own options). Everything else is here, the same for every rule:

* ``fused``: :func:`fused_step` increments the step counters, builds the per-tensor table of
  the rule's coefficient record (one row per tensor, computed in double once per distinct
  step), launches ``torch.ops.precond.<rule>_step`` on the CPU tensors with the group's
  :class:`~precond.optim.functional._rule.PreStep`, and hands whatever the kernel does not take
  (other devices, float16, layouts not shared with the state) to the reference loop
  (``foreach`` off the CPU). Without the extension it falls back to the same loop/foreach
  paths; :mod:`._build` has warned once.
* ``foreach``: :func:`foreach_step` runs the body per (device, dtype, step) bucket (and
  curvature count, for GaussNewtonDiag: one coefficient record per bucket), upcasting
  bfloat16/float16 buckets to float32 for the math as the loop's ``working_precision`` does.

A record holding tensors (a batched optimizer's per-row lrs, shape ``(C, 1, ...)``:
:meth:`precond.optim.PrecondOptimizer.batched`) runs the same kernels on its stacked ``(C, ...)``
tensors with a table of one coefficient row per run (:func:`run_table`, shape ``(n, C, K)``: the
kernel cuts each tensor into its ``C`` runs); the ``foreach`` path hands it to the loop.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Hashable, Mapping, Sequence

import torch

from ..functional._common import LOW_PRECISION, register
from ..functional._rule import Hyper, PreStep, Rule
from .._dispatch import FUSED_DTYPES
from . import _build

Lists = Sequence[list[torch.Tensor]]


def increment_steps(state_steps: list[torch.Tensor]) -> list[int]:
    """``step += 1`` for every counter (float32, as the loop's ``s += 1``) and their values as ints."""
    if not state_steps:
        return []
    torch._foreach_add_(state_steps, 1.0)
    return [int(s) for s in torch.stack(state_steps).tolist()]


def coeff_table(keys: Sequence[Hashable], row: Callable[[Any], Sequence[float]]) -> torch.Tensor:
    """(n, K) float64 table: row ``i`` holds ``row(keys[i])``; computed once per distinct key
    (a step, or e.g. GaussNewtonDiag's (step, curvature count) pair)."""
    distinct = {s: tuple(float(x) for x in row(s)) for s in set(keys)}
    if len(distinct) == 1:
        only = next(iter(distinct.values()))
        return torch.tensor([only], dtype=torch.float64).expand(len(keys), len(only))
    return torch.tensor([distinct[s] for s in keys], dtype=torch.float64)


def subset(lst: list[torch.Tensor], idx: Sequence[int]) -> list[torch.Tensor]:
    """``lst[idx]`` for a used list; an unused (empty) state list stays empty."""
    return [lst[i] for i in idx] if lst else lst


def fallback_impl(params: list[torch.Tensor]) -> str:
    """The path used when the kernels cannot run: the loop on CPU, ``foreach`` elsewhere."""
    return "loop" if all(p.is_cpu for p in params) else "foreach"


def clip_value(clip: float | None) -> float:
    return math.inf if clip is None else float(clip)


def _lists(rule: Rule, params: list[torch.Tensor], grads: list[torch.Tensor], state: Mapping[str, list[Any]]) -> list[list[Any]]:
    """(params, grads, *state lists in the kernel's order, *count lists, steps)."""
    return [params, grads, *rule.lists(state), *[state[name] for name in rule.counts], state["step"]]


def _state_of(rule: Rule, lists: Lists) -> dict[str, list[Any]]:
    """:func:`_lists` back as the rule's state mapping."""
    names = (*rule.state, *rule.counts, "step")
    return dict(zip(names, lists[2:]))


def _run_on(rule: Rule, lists: Lists, idx: Sequence[int], hyper: Hyper, impl: str) -> None:
    """``rule`` on the tensors ``idx`` of :func:`_lists` ``lists`` by ``impl``."""
    sub = [subset(lst, idx) for lst in lists]
    rule(sub[0], sub[1], _state_of(rule, sub), hyper, impl=impl)


def runs_of(hyper: Hyper) -> int | None:
    """``C`` for the record of a batched optimizer (its per-row lr tensors are ``(C, 1, ...)``),
    ``None`` for a plain record."""
    return next((v.shape[0] for v in vars(hyper).values() if isinstance(v, torch.Tensor)), None)


def run_table(rule: Rule, hyper: Hyper, keys: Sequence[Hashable], runs: int) -> torch.Tensor:
    """``(n, runs, K)`` float64: row ``r`` of tensor ``i`` is ``rule.coefficients`` at ``keys[i]`` of
    run ``r``'s record (``hyper`` with each per-run tensor's ``r``-th value, as a float), computed
    once per distinct key and values (a sweep's runs share few lrs). The records of the distinct
    values and the rows' index into them are kept from step to step (:func:`_run_records`)."""
    fields = tuple(k for k, v in vars(hyper).items() if isinstance(v, torch.Tensor))
    per_run = tuple(zip(*[getattr(hyper, k).double().reshape(runs).tolist() for k in fields]))
    records, index = _run_records(hyper, fields, per_run)

    def table(key: Hashable) -> torch.Tensor:
        rows = torch.tensor([rule.coefficients(h, *key) for h in records], dtype=torch.float64)
        return rows if index is None else rows.index_select(0, index)

    distinct = {key: table(key) for key in set(keys)}
    if len(distinct) == 1:
        return next(iter(distinct.values())).expand(len(keys), runs, -1)
    return torch.stack([distinct[key] for key in keys])


_RECORDS: dict[Hashable, tuple[list[Hyper], torch.Tensor | None]] = {}


def _run_records(hyper: Hyper, fields: tuple[str, ...], per_run: tuple[tuple[float, ...], ...]) -> tuple[list[Hyper], torch.Tensor | None]:
    """The records of the distinct per-run values of ``fields`` and each run's index into them
    (``None``: every run has its own), cached by the record's other values (a batched optimizer's
    steps all ask for the same ones)."""
    rest = tuple((k, v) for k, v in vars(hyper).items() if k not in fields)
    try:
        memo: Hashable | None = (type(hyper), rest, per_run)
        hit = _RECORDS.get(memo)
    except TypeError:  # an unhashable value: computed afresh
        memo, hit = None, None
    if hit is not None:
        return hit
    distinct = list(dict.fromkeys(per_run))
    records = [type(hyper).of(vars(hyper), **dict(zip(fields, v))) for v in distinct]
    pos = {v: i for i, v in enumerate(distinct)}
    index = None if len(distinct) == len(per_run) else torch.tensor([pos[v] for v in per_run])
    if memo is not None:
        if len(_RECORDS) >= 256:
            _RECORDS.clear()
        _RECORDS[memo] = (records, index)
    return records, index


def _cuts_into_runs(rule: Rule, lists: Lists, i: int, runs: int) -> bool:
    """Whether the kernel takes tensor ``i`` of :func:`_lists` ``lists`` and can cut it into ``runs``
    rows: a ``(runs, ...)`` contiguous CPU tensor of a kernel dtype, its state laid out alike."""
    p = lists[0][i]
    if not (p.is_cpu and p.dim() >= 1 and p.shape[0] == runs and p.is_contiguous() and p.dtype in FUSED_DTYPES):
        return False
    return all(lst[i].dtype == p.dtype and lst[i].shape == p.shape and lst[i].stride() == p.stride()
               for lst in lists[1: 2 + len(rule.state)] if lst)  # fmt: skip


def fused_step(rule: Rule, options: Callable[[Any], tuple], params: list[torch.Tensor], grads: list[torch.Tensor],
               state: Mapping[str, list[Any]], hyper: Hyper) -> None:  # fmt: skip
    """One fused step of ``rule``: its kernel ``(params, grads, *state lists, coefficient table,
    *pre-step, *options(hyper))`` returns the indices it did not take, which run the loop.

    A batched optimizer's record (:func:`runs_of`): the kernel takes its stacked tensors with
    :func:`run_table`; a decoupled decay ``p *= 1 - lr wd``, whose factor is then one per run, is
    applied here before the kernel (the kernel's pre-step applies it first too)."""
    if not params:
        return
    ops = _build.load()
    if ops is None:
        return rule(params, grads, state, hyper, impl=fallback_impl(params))
    runs = runs_of(hyper)
    lists = _lists(rule, params, grads, state)
    ok = [bool(p.is_cpu) if runs is None else _cuts_into_runs(rule, lists, i, runs) for i, p in enumerate(params)]
    if not all(ok):
        _run_on(rule, lists, [i for i, k in enumerate(ok) if not k], hyper, "foreach" if runs is None else fallback_impl(params))
        if not any(ok):
            return
        lists = [subset(lst, [i for i, k in enumerate(ok) if k]) for lst in lists]
    steps = lists[-1]
    keys = rule.keys(increment_steps(steps), _state_of(rule, lists) if rule.counts else {})
    pre = hyper.pre_step()
    if runs is None:
        table = coeff_table(keys, lambda key: rule.coefficients(hyper, *key))
    else:
        table = run_table(rule, hyper, keys, runs)
        if isinstance(pre.factor, torch.Tensor):  # decoupled decay, one factor per run
            for p in lists[0]:
                p.mul_(pre.factor)
            pre = PreStep("none", 0.0, pre.maximize)
    skipped = getattr(ops, f"{rule.name}_step")(*lists[: 2 + len(rule.state)], table, *pre, *options(hyper))
    if skipped:
        if runs is not None:  # _cuts_into_runs admits only what the kernel takes
            raise RuntimeError(f"precond kernels: {rule.name}_step refused stacked tensors {list(skipped)} it was expected to take")
        torch._foreach_sub_(subset(steps, skipped), 1.0)  # the loop counts these steps itself
        _run_on(rule, lists, skipped, hyper, "loop")


def foreach_step(lists: Lists, keys: Sequence[Hashable], body: Callable[[list[list[torch.Tensor]], Any], None]) -> None:
    """Run ``body(work_lists, key)`` per (device, dtype, key) bucket (``keys``: one per tensor,
    e.g. its step).

    ``work_lists`` mirrors ``lists``; in low-precision buckets it holds float32 copies, and
    everything but the gradients (index 1) is copied back afterwards. ``body`` must update
    the params and state lists in place and leave the gradients untouched.
    """
    params = lists[0]
    if not params:
        return
    buckets: dict[tuple[torch.device, torch.dtype, Hashable], list[int]] = {}
    for i, (p, key) in enumerate(zip(params, keys)):
        buckets.setdefault((p.device, p.dtype, key), []).append(i)
    for (_, dtype, key), idx in buckets.items():
        sub = [subset(lst, idx) if len(idx) != len(params) else lst for lst in lists]
        if dtype not in LOW_PRECISION:
            body(sub, key)
            continue
        work = [[t.float() for t in lst] for lst in sub]
        body(work, key)
        for k, (orig, new) in enumerate(zip(sub, work)):
            if k != 1 and orig:
                torch._foreach_copy_(orig, new)


def foreach_pre_step(p: list[torch.Tensor], g: list[torch.Tensor], pre: PreStep) -> list[torch.Tensor]:
    """The foreach pre-step: ``-g`` under ``maximize``, L2 ``g + factor * p`` (new lists:
    ``p.grad`` is never modified) or decoupled/fixed decay ``p *= factor`` in place."""
    if pre.maximize:
        g = torch._foreach_neg(g)
    if pre.weight_decay == "l2":
        g = torch._foreach_add(g, p, alpha=pre.factor)
    elif pre.weight_decay != "none":
        torch._foreach_mul_(p, pre.factor)
    return g


def foreach_ema_square(v: list[torch.Tensor], x: list[torch.Tensor], beta2: float, one_m_beta2: float,
                       vmax: list[torch.Tensor] | None) -> list[torch.Tensor]:  # fmt: skip
    """:func:`~precond.optim.functional._common.ema_square_` on lists."""
    torch._foreach_mul_(v, beta2)
    torch._foreach_addcmul_(v, x, x, value=one_m_beta2)
    if vmax is None:
        return v
    torch._foreach_maximum_(vmax, v)
    return vmax


def foreach_sqrt_eps(x: list[torch.Tensor], eps: float, inside: bool) -> list[torch.Tensor]:
    """:func:`~precond.optim.functional._common.sqrt_eps` on lists (new lists)."""
    if inside:
        out = torch._foreach_add(x, eps)
        torch._foreach_sqrt_(out)
    else:
        out = torch._foreach_sqrt(x)
        torch._foreach_add_(out, eps)
    return out


def register_foreach(rule: Rule) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator: ``body(p, g, *state lists, coefficients, hyper)`` is ``rule``'s foreach math on
    one bucket, after the pre-step (``g`` is the effective gradient)."""

    def deco(body: Callable[..., None]) -> Callable[..., None]:
        @register(rule.name, "foreach")
        def run(rule: Rule, params, grads, state, hyper: Hyper) -> None:
            if hyper.has_tensor():
                return rule(params, grads, state, hyper, impl="loop")
            pre = hyper.pre_step()

            def bucket(lists: list[list[torch.Tensor]], key: tuple[int, ...]) -> None:
                p, g, *tensors = lists
                body(p, foreach_pre_step(p, g, pre), *tensors, rule.coefficients(hyper, *key), hyper)

            keys = rule.keys(increment_steps(state["step"]), state)
            foreach_step([params, grads, *rule.lists(state)], keys, bucket)

        return body

    return deco


def register_fused(rule: Rule, options: Callable[[Any], tuple]) -> None:
    """``rule``'s fused path: its kernel, with ``options(hyper)`` its own arguments after the pre-step."""
    register(rule.name, "fused")(lambda rule, *args: fused_step(rule, options, *args))
