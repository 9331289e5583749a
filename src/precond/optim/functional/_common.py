"""Shared tensor pieces of the functional update rules (the contract itself: :mod:`._rule`).

``impl="loop"`` runs the per-tensor reference code written next to each rule; ``"foreach"``
and ``"fused"`` run the fast implementations registered here (:data:`FAST_IMPLS`) by
:mod:`precond.optim.kernels` for the same rule, which take the same records.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch

#: (rule name, impl) -> ``fn(rule, params, grads, state, hyper)`` (AdaGradNorm's: ``fn(groups, accumulator, steps)``)
FAST_IMPLS: dict[tuple[str, str], Callable[..., None]] = {}

LOW_PRECISION = (torch.float16, torch.bfloat16)


def register(rule: str, impl: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator: register a fast implementation of ``rule`` under ``impl``."""

    def deco(fn: Callable[..., None]) -> Callable[..., None]:
        FAST_IMPLS[(rule, impl)] = fn
        return fn

    return deco


def fast_impl(rule: str, impl: str) -> Callable[..., None]:
    if impl not in ("foreach", "fused"):
        raise ValueError(f"invalid impl={impl!r}: must be 'loop', 'foreach' or 'fused'")
    # the kernels module registers itself on import
    from .. import kernels  # noqa: F401

    try:
        return FAST_IMPLS[(rule, impl)]
    except KeyError:
        raise NotImplementedError(
            f"{rule} has no {impl} implementation; use foreach=False, fused=False (the reference loop)"
        ) from None


def step_all(state_steps: list[torch.Tensor]) -> list[int]:
    """Increment every step counter (float32 tensors, as torch.optim) and return them as ints."""
    out = []
    for s in state_steps:
        s += 1
        out.append(int(s.item()))
    return out


@contextmanager
def working_precision(*tensors: torch.Tensor | None) -> Iterator[list[torch.Tensor | None]]:
    """Yield float32 working copies of low-precision tensors and write them back after.

    Math on bfloat16/float16 storage is done in float32 (as the fused kernels do), so the
    reference loop and the fast paths agree; float32/float64 tensors are used as they are.
    """
    if not any(t is not None and t.dtype in LOW_PRECISION for t in tensors):
        yield list(tensors)
        return
    work = [None if t is None else (t.float() if t.dtype in LOW_PRECISION else t) for t in tensors]
    yield work
    for t, w in zip(tensors, work):
        if t is not None and w is not t:
            t.copy_(w)


def ema_square_(v: torch.Tensor, x: torch.Tensor, beta2: float, one_m_beta2: float, vmax: torch.Tensor | None) -> torch.Tensor:
    """``v = beta2 v + (1-beta2) x^2`` in place, and with ``vmax`` (AMSGrad's) ``vmax = max(vmax, v)``;
    returns what the denominator reads (``vmax`` or ``v``). Adam's, AdaBound's and AGD's second moment."""
    v.mul_(beta2).addcmul_(x, x, value=one_m_beta2)
    if vmax is None:
        return v
    torch.maximum(vmax, v, out=vmax)
    return vmax


def sqrt_eps(x: torch.Tensor, eps: float, inside: bool) -> torch.Tensor:
    """``sqrt(x) + eps`` (torch's placement) or ``sqrt(x + eps)`` (``inside``), a new tensor."""
    return (x + eps).sqrt_() if inside else x.sqrt().add_(eps)


# ---- per-row hyperparameters (vectorized sweeps) ------------------------------------------
# The experiments engine stacks many independent runs of an elementwise rule as the rows
# of one (C, d) parameter and passes ``lr`` as a (C, 1) tensor. These helpers take the
# original float path unchanged (bit-for-bit) and an equivalent tensor path otherwise.


def add_scaled_(p: torch.Tensor, u: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """``p += alpha * u`` (``p.add_(u, alpha=alpha)`` for a float ``alpha``)."""
    if isinstance(alpha, torch.Tensor):
        return p.add_(u * alpha)
    return p.add_(u, alpha=alpha)


def addcdiv_scaled_(p: torch.Tensor, num: torch.Tensor, den: torch.Tensor, value: float | torch.Tensor) -> torch.Tensor:
    """``p += value * num / den`` (``p.addcdiv_(num, den, value=value)`` for a float ``value``)."""
    if isinstance(value, torch.Tensor):
        return p.add_((num / den).mul_(value))
    return p.addcdiv_(num, den, value=value)
