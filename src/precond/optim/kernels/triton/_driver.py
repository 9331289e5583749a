"""Host side of the Triton path: one custom op per rule, its launches, and the optimizer's step.

* :class:`TritonRule` binds a :class:`~precond.optim.functional._rule.Rule` to its kernel, the
  hyperparameters the kernel reads (``hyper(h)``: a row of doubles after the pre-step's factor)
  and its compile-time options (``options(h)``), and registers the op
  ``torch.ops.precond_triton.<rule>_step`` (``torch.library.custom_op``, with a fake
  implementation: ``torch.compile`` and ``make_fx`` trace a step holding it).
* The op (:func:`launch`) increments the step counters on the device, launches the rule's
  kernel once per storage dtype over a cached plan (:mod:`._plan`), and when a skip flag is
  given (GradScaler's ``found_inf``, or the non-finite check) leaves everything unchanged on the
  device when it is set, the counters included. No ``.item()``, no host-to-device copy once the
  plan and the hyper row are cached: the step can be captured in a CUDA graph.
* :func:`step` is the functional entry (``rule``'s lists, as ``rule(..., impl=...)`` takes them);
  :func:`optimizer_step` what :class:`precond.optim.PrecondOptimizer` runs for a group on the
  Triton path, and :func:`begin_step` / :func:`end_step` the device-side non-finite check of a
  whole step and its deferred report.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import torch
from torch import Tensor

from ...functional._rule import Hyper, Rule
from . import _plan
from ._config import CONFIG, TL_DTYPES
from ._lang import WD_CODES
from .finite import nonfinite_flag

#: rule name -> its Triton binding (each rule module registers its own)
RULES: dict[str, "TritonRule"] = {}

_HYPER_ROWS: "OrderedDict[tuple, Tensor]" = OrderedDict()


def hyper_row(values: list[float], device: torch.device) -> Tensor:
    """The float64 device tensor of ``values``, cached (no copy per step)."""
    key = (device, tuple(values))
    row = _HYPER_ROWS.get(key)
    if row is None:
        row = _HYPER_ROWS[key] = torch.tensor(values, dtype=torch.float64).to(device)
        if len(_HYPER_ROWS) > 256:
            _HYPER_ROWS.popitem(last=False)
    return row


@dataclass(frozen=True, eq=False)
class TritonRule:
    """``rule``'s Triton kernel and its ``@triton.jit`` ``coefficients(row, t[, k])``, which
    returns the rule's coefficient record field for field (the tests compare it with
    ``rule.coefficients``); ``hyper(h)`` the doubles it reads after the pre-step factor (the row
    ``(factor, *hyper(h))``), ``options`` the names of the kernel's boolean compile-time options
    and ``option_values(h)`` their values."""

    rule: Rule
    kernel: Any
    coefficients: Any
    hyper: Callable[[Any], tuple[float, ...]]
    options: tuple[str, ...] = ()
    option_values: Callable[[Any], tuple[bool, ...]] = lambda h: ()
    op: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        RULES[self.rule.name] = self
        object.__setattr__(self, "op", _define_op(self.rule.name))


def _define_op(name: str) -> Any:
    def impl(params: list[Tensor], grads: list[Tensor], state: list[Tensor], present: list[bool], steps: list[Tensor],
             counts: list[Tensor], hyper: list[float], grad_scale: Optional[Tensor], skip: Optional[Tensor],
             weight_decay: str, maximize: bool, options: list[bool]) -> None:  # fmt: skip
        launch(RULES[name], params, grads, state, present, steps, counts, hyper, grad_scale, skip, weight_decay, maximize,
               options)  # fmt: skip

    op = torch.library.custom_op(f"precond_triton::{name}_step", impl, mutates_args=("params", "state", "steps"))
    op.register_fake(lambda *args: None)
    return op


def launch(tr: TritonRule, params: list[Tensor], grads: list[Tensor], state: list[Tensor], present: list[bool],
           steps: list[Tensor], counts: list[Tensor], hyper: list[float], grad_scale: Optional[Tensor],
           skip: Optional[Tensor], weight_decay: str, maximize: bool, options: list[bool]) -> None:  # fmt: skip
    """The op's implementation: ``state`` holds the present state lists (``present``, one flag
    per :attr:`Rule.state`) back to back; every tensor on one device, contiguous, its state and
    gradient of its dtype (what :func:`takes` checks)."""
    n = len(params)
    if n == 0:
        return
    device = params[0].device
    lists, k = [], 0
    for on in present:
        lists.append(state[k * n : (k + 1) * n] if on else [])
        k += bool(on)
    torch._foreach_add_(steps, 1.0)
    row = hyper_row(hyper, device)
    opts = dict(zip(tr.options, (bool(o) for o in options)))
    for dtype, idx in buckets(params).items():
        pick = (lambda lst: [lst[i] for i in idx] if lst else []) if len(idx) < n else (lambda lst: lst)
        data = [pick(params), pick(grads), *[pick(lst) for lst in lists]]
        columns = [*data, pick(steps), *([pick(counts)] if counts else [])]
        ct = torch.float64 if dtype == torch.float64 else torch.float32
        for plan in _plan.plan(columns, CONFIG.chunk, device, _plan.vector_width(data, params[idx[0]].element_size())):
            tr.kernel[(plan.n_chunks,)](
                plan.ptrs, plan.n_tensors, plan.numels, plan.chunk_tensor, plan.chunk_start, row,
                row if grad_scale is None else grad_scale, row if skip is None else skip,
                DT=TL_DTYPES[dtype], CT=TL_DTYPES[ct], WD=WD_CODES[weight_decay], MAXIMIZE=bool(maximize),
                HAS_SCALE=grad_scale is not None, HAS_SKIP=skip is not None, VEC=plan.vec, **CONFIG.launch_options(), **opts,
            )  # fmt: skip
    if skip is not None:
        torch._foreach_add_(steps, skip, alpha=-1.0)  # a skipped step is not counted


def buckets(params: list[Tensor]) -> dict[torch.dtype, list[int]]:
    """The indices of ``params`` by dtype (one launch per dtype), in first-seen order."""
    out: dict[torch.dtype, list[int]] = {}
    for i, p in enumerate(params):
        out.setdefault(p.dtype, []).append(i)
    return out


def takes(i: int, params: list[Tensor], grads: list[Tensor], lists: list[list[Any]], device: torch.device) -> bool:
    """Whether the kernel takes tensor ``i``: on ``device``, a kernel dtype, contiguous, with its
    gradient and state of its dtype and size."""
    p, g = params[i], grads[i]
    if p.device != device or p.dtype not in TL_DTYPES or not p.is_contiguous():
        return False
    for t in [g] + [lst[i] for lst in lists if lst]:
        if t.device != device or t.dtype != p.dtype or t.numel() != p.numel() or not t.is_contiguous():
            return False
    return True


def step(rule: Rule, params: list[Tensor], grads: list[Tensor], state: Mapping[str, list[Any]], hyper: Hyper, *,
         grad_scale: Optional[Tensor] = None, skip: Optional[Tensor] = None) -> None:  # fmt: skip
    """One step of ``rule`` on the Triton path (the functional form of ``rule(..., impl=...)``).

    ``grad_scale``: divide the gradients by it in the kernel (GradScaler's scale); ``skip``: a
    0-dim tensor on the device, nonzero to leave everything unchanged (GradScaler's
    ``found_inf``, or :func:`~.finite.nonfinite_flag`). Tensors the kernel does not take (see
    :func:`takes`) run the reference loop (``foreach`` off the CPU); only they read ``skip`` on
    the host. Step counters must be on the params' device (:func:`optimizer_step` moves them).
    """
    if not params:
        return
    tr = RULES[rule.name]
    if hyper.has_tensor():
        return rule(params, grads, state, hyper, impl="loop")
    if rule.check is not None:
        rule.check(state)
    lists = rule.lists(state)
    device = params[0].device
    taken = [takes(i, params, grads, lists, device) for i in range(len(params))]
    ok = [i for i, on in enumerate(taken) if on]
    rest = [i for i, on in enumerate(taken) if not on]
    if rest:
        _fallback(rule, [params, grads, lists, state], rest, hyper, grad_scale, skip)
    if not ok:
        return
    sub = (lambda lst: [lst[i] for i in ok] if lst else []) if rest else (lambda lst: lst)
    present = [bool(lst) for lst in lists]
    flat = [t for lst in lists if lst for t in sub(lst)]
    counts = [c.to(device) if c.device != device else c for name in rule.counts for c in sub(state[name])]
    pre = hyper.pre_step()
    tr.op(sub(params), sub(grads), flat, present, sub(state["step"]), counts, [float(pre.factor), *map(float, tr.hyper(hyper))],
          grad_scale, skip, pre.weight_decay, pre.maximize, list(tr.option_values(hyper)))  # fmt: skip


def _fallback(rule: Rule, parts: list[Any], idx: list[int], hyper: Hyper, grad_scale, skip) -> None:
    """Tensors the kernel does not take: the loop (``foreach`` off the CPU), with GradScaler's
    unscale and skip read on the host (one sync, on this rare path only)."""
    params, grads, lists, state = parts
    if skip is not None and float(skip) != 0.0:
        return
    sel = lambda lst: [lst[i] for i in idx]  # noqa: E731
    gs = sel(grads) if grad_scale is None else [g / grad_scale.to(g.device, g.dtype) for g in sel(grads)]
    sub_state = {name: sel(lst) for name, lst in zip(rule.state, lists) if lst}
    sub_state["step"] = sel(state["step"])
    for name in rule.counts:
        sub_state[name] = sel(state[name])
    rule(sel(params), gs, sub_state, hyper, impl="loop" if all(p.is_cpu for p in sel(params)) else "foreach")


# ---- the optimizer's step on the Triton path -------------------------------------------------


def optimizer_step(opt: Any, originals: list[Tensor], params: list[Tensor], grads: list[Tensor],
                   state: dict[str, list[Any]], hyper: Hyper) -> None:  # fmt: skip
    """One param group's step: step counters moved to the params' device once (torch's fused
    optimizers keep them there; :meth:`load_state_dict` brings them back to the CPU), then
    :func:`step` with this step's GradScaler scale and skip flag (:func:`begin_step`)."""
    for k, p in enumerate(originals):
        s = opt.state[p]["step"]
        if s.device != p.device:
            opt.state[p]["step"] = state["step"][k] = s.to(p.device)
    scale, skip = getattr(opt, "grad_scale", None), opt.__dict__.get("_triton_skip")
    step(opt.rule, params, grads, state, hyper, grad_scale=scale, skip=skip)


def begin_step(opt: Any, grads: list[Tensor]) -> None:
    """Before a step whose groups all take the Triton path: report the checks of earlier steps
    that the device has finished (:func:`report`), then this step's skip flag on the device:
    GradScaler's ``found_inf`` when it gives one (it has checked every gradient), else the
    non-finite check of every gradient unless ``nan_policy="propagate"``."""
    report(opt, wait=False)
    found = getattr(opt, "found_inf", None)
    if found is not None:
        flag = found.reshape(())
    elif opt.nan_policy != "propagate":
        flag = nonfinite_flag(grads)
        opt.__dict__.setdefault("_triton_pending", []).append(_pending(flag))
    else:
        flag = None
    opt.__dict__["_triton_skip"] = flag


def end_step(opt: Any) -> None:
    """After the step: drop its flag; report the checks the device has finished (on CPU: this one)."""
    opt.__dict__.pop("_triton_skip", None)
    report(opt, wait=False)


def _pending(flag: Tensor) -> tuple[Tensor, Any]:
    """``(host copy, event)``: a non-blocking copy into pinned memory and the event after it (CUDA),
    or the flag itself (CPU: nothing to wait for). None during CUDA graph capture (no report)."""
    if flag.device.type != "cuda":
        return flag, None
    if torch.cuda.is_current_stream_capturing():  # a graph's replays skip on the device and report nothing
        return torch.zeros(()), None
    host = torch.empty((), dtype=flag.dtype, pin_memory=True)
    host.copy_(flag, non_blocking=True)
    event = torch.cuda.Event()
    event.record()
    return host, event


def report(opt: Any, *, wait: bool) -> None:
    """The deferred side of the device check: for each earlier step whose flag the device has
    written (or every one, ``wait=True``), a set flag raises
    :class:`~precond.optim.NonFiniteGradientError` (``nan_policy="raise"``) or counts a skipped
    step and warns (``"skip"``). That step changed nothing (the kernels skipped on the device)."""
    pending = opt.__dict__.get("_triton_pending")
    if pending and torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
        return  # no event query during a capture
    while pending:
        host, event = pending[0]
        if event is not None and not wait and not event.query():
            return
        if event is not None:
            event.synchronize()
        pending.pop(0)
        if float(host) == 0.0:
            continue
        name = type(opt).__name__
        if opt.nan_policy == "raise":
            from ..._base import NonFiniteGradientError

            pending.clear()
            raise NonFiniteGradientError(
                f"{name}.step: a gradient held NaN or inf; the step was skipped on the device (no parameter or "
                "state changed; reported once the device finished it, without a host sync). Fix the loss (or "
                "lower the lr), or construct the optimizer with nan_policy='skip' or 'propagate'."
            )
        opt._skipped_steps += 1
        warnings.warn(f"{name}.step skipped: non-finite gradient ({opt._skipped_steps} step(s) skipped so far)",
                      RuntimeWarning, stacklevel=3)  # fmt: skip
