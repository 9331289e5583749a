"""The callback interface every diagnostic implements, and how a training loop calls them.

A training loop (the experiments runner) builds a :class:`StepContext` per step and calls,
for step ``t`` (1-based):

1. after ``loss.backward()`` and *before* ``optimizer.step()``:
   :func:`run_before` (``ctx.step == t-1``: steps done so far),
2. after ``optimizer.step()``: :func:`run_after` (``ctx.step == t``), which returns the
   metrics as ``{"<diagnostic name>/<metric>": value}``.

A diagnostic runs only when due (every ``every`` steps; see :meth:`Diagnostic.due_before`
and :meth:`Diagnostic.due_after`), so it costs nothing otherwise.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import nn


@dataclass
class StepContext:
    """What a diagnostic may look at.

    Attributes:
        step: optimizer steps done so far.
        model: the model being trained.
        optimizer: its optimizer.
        loss_fn: ``loss_fn(model)`` = loss of the current batch (for HVPs / Hessians); a
            zero-argument closure over the same model is accepted too.
        outputs_fn: ``outputs_fn(model) = (outputs, targets)`` of the current batch, or None
            (a zero-argument closure is accepted too).
        loss_type: ``"mse"``, ``"logistic"``, ``"cross_entropy"`` or None.
        sample_losses: ``sample_losses(n)`` = ``n`` losses of independent minibatches
            (each a ``loss_fn``-like callable), for gradient-noise estimates; or None.
    """

    step: int
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[[nn.Module], torch.Tensor]
    outputs_fn: Callable[[nn.Module], "tuple[torch.Tensor, torch.Tensor | None]"] | None = None
    loss_type: str | None = None
    sample_losses: Callable[[int], "list[Callable[[nn.Module], torch.Tensor]]"] | None = None

    def __post_init__(self) -> None:
        # tolerate zero-argument closures (``lambda: loss(model, batch)``): they see the
        # same model object, so they work wherever a ``fn(model)`` is expected
        self.loss_fn = _takes_model(self.loss_fn)
        if self.outputs_fn is not None:
            self.outputs_fn = _takes_model(self.outputs_fn)


def _takes_model(fn: Callable[..., Any]) -> Callable[[nn.Module], Any]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume fn(model)
        return fn
    if any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params):
        return fn
    return lambda model: fn()


class Diagnostic:
    """Base class: set ``name``, override :meth:`after_step` (and :meth:`before_step` if needed)."""

    name: str = "diagnostic"
    every: int = 1

    def __init__(self, every: int = 1, name: str | None = None) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"invalid every={every!r}: must be an integer >= 1 (measure every k steps)")
        self.every = every
        if name is not None:
            self.name = name

    #: name of the optimizer method the diagnostic reads (None: works with any optimizer)
    requires_method: str | None = None

    def applies_to(self, optimizer: torch.optim.Optimizer) -> bool:
        """Whether the diagnostic can measure ``optimizer`` (e.g. AGD's fraction needs an AGD);
        a training loop that compares several optimizers skips the ones it does not apply to."""
        return self.requires_method is None or callable(getattr(optimizer, self.requires_method, None))

    def due_before(self, ctx: StepContext) -> bool:
        """Whether :meth:`before_step` runs before step ``ctx.step + 1`` (default: when that step is measured)."""
        return (ctx.step + 1) % self.every == 0

    def due_after(self, ctx: StepContext) -> bool:
        """Whether :meth:`after_step` runs after step ``ctx.step``."""
        return ctx.step % self.every == 0

    def before_step(self, ctx: StepContext) -> None:
        """Called after the gradients of the step are computed, before ``optimizer.step()``."""

    def after_step(self, ctx: StepContext) -> dict[str, float | list[float]]:
        """Metrics after the step."""
        return {}


class ParameterFractions(Diagnostic):
    """A fraction of coordinates that the optimizer reports per parameter, through its method
    :attr:`requires_method` returning ``{"params": [[f or None, ...] per group], "overall": f or
    None (optional)}``: metrics ``param/<name>`` (``model.named_parameters()`` names; ``param<i>``
    for a parameter the model does not name) and ``overall`` (the optimizer's, else the mean of
    the fractions weighted by the parameters' sizes; NaN before any step)."""

    #: what :attr:`requires_method` belongs to, for the error on another optimizer
    optimizer_kind: str = "an optimizer"

    def after_step(self, ctx: StepContext) -> dict[str, float | list[float]]:
        fn = getattr(ctx.optimizer, self.requires_method or "", None)
        if not callable(fn):
            raise TypeError(
                f"{self.name} needs {self.optimizer_kind} (with {self.requires_method}()), got {type(ctx.optimizer).__name__}"
            )
        report = fn()
        names = {id(p): n for n, p in ctx.model.named_parameters()}
        out: dict[str, float | list[float]] = {}
        hits = total = 0.0
        for group, fracs in zip(ctx.optimizer.param_groups, report["params"]):
            for p, f in zip(group["params"], fracs):
                if f is None:
                    continue
                out[f"param/{names.get(id(p), f'param{len(out)}')}"] = float(f)
                hits += f * p.numel()
                total += p.numel()
        overall = report["overall"] if "overall" in report else (hits / total if total else None)
        out["overall"] = float("nan") if overall is None else overall
        return out


def run_before(diagnostics: Iterable[Diagnostic], ctx: StepContext) -> None:
    """Call :meth:`Diagnostic.before_step` of every due diagnostic."""
    for d in diagnostics:
        if d.due_before(ctx):
            d.before_step(ctx)


def run_after(diagnostics: Iterable[Diagnostic], ctx: StepContext) -> dict[str, float | list[float]]:
    """Call :meth:`Diagnostic.after_step` of every due diagnostic; metrics keyed ``name/metric``."""
    out: dict[str, Any] = {}
    for d in diagnostics:
        if d.due_after(ctx):
            for k, v in d.after_step(ctx).items():
                out[f"{d.name}/{k}"] = v
    return out


def flat_grad(model: nn.Module, loss_fn: Callable[[nn.Module], torch.Tensor]) -> torch.Tensor:
    """The flat gradient of ``loss_fn(model)`` over the trainable parameters (``.grad`` untouched;
    buffers and modes as they were: :func:`precond.curvature.params.preserved_state`)."""
    from ..params import flatten, preserved_state, trainable

    params = [p for _, p in trainable(model)]
    with torch.enable_grad(), preserved_state(model):
        gs = torch.autograd.grad(loss_fn(model), params, allow_unused=True)
    return flatten([torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]).detach()


def sampled_gradients(ctx: StepContext, n: int, who: str) -> torch.Tensor:
    """``(n, d)``: gradients of ``n`` independent minibatch losses from ``ctx.sample_losses``."""
    if ctx.sample_losses is None:
        raise ValueError(f"{who} needs StepContext.sample_losses (independent minibatch losses) to estimate gradient noise")
    if n < 2:
        raise ValueError(f"{who}: n_samples must be >= 2 to estimate a variance, got {n}")
    losses = ctx.sample_losses(n)
    return torch.stack([flat_grad(ctx.model, lf) for lf in losses])
