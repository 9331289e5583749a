r"""Stochastic estimators of curvature diagonals, for any model.

**Hutchinson** (Bekas, Kokiopoulou & Saad 2007; AdaHessian, Sophia-H): with Rademacher
:math:`z`, :math:`\mathbb E[z \odot Hz] = \operatorname{diag}(H)`; coordinate ``i`` has
variance :math:`\sum_{j\ne i} H_{ij}^2` per sample. ``n_samples`` draws are averaged.

**Gauss-Newton-Bartlett** (Sophia-G, Liu et al. 2023, Algorithm 2): draw targets
:math:`\hat y_i \sim p(\cdot\mid o_i)` from the model's own predictive distribution
(:func:`precond.curvature.losses.sample_targets`) and take :math:`\hat g = \nabla_\theta
L(o, \hat y)`, the gradient of the *mean* loss over the ``N`` rows. Because
:math:`\mathbb E_{\hat y}[\nabla_o \mathrm{nll}_i] = 0` and
:math:`\mathbb E[\nabla_o \mathrm{nll}_i \nabla_o \mathrm{nll}_i^\top] = F_i = H_{out,i}` for
these canonical losses, and rows are sampled independently,

.. math:: \mathbb E[\hat g \odot \hat g] = \tfrac1{N^2}\textstyle\sum_i \operatorname{diag}(J_i^\top F_i J_i)
          = \tfrac1N \operatorname{diag}(G),

with :math:`G` the GGN of the mean loss. **Scaling convention:** :func:`gnb_diagonal` returns
:math:`N\,\hat g\odot\hat g`, an unbiased estimate of :math:`\operatorname{diag}(G)` (the
official Sophia loop stores :math:`\hat g\odot\hat g` and multiplies by ``bs`` = N in the
step instead; pass ``scale="sophia"`` for that raw value). ``n_samples`` label draws on
the same outputs are averaged.

All estimators return one tensor per trainable parameter (``named_parameters()`` order).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from precond.optim.functional.gauss_newton import canonical_estimator

from . import exact
from .losses import check_loss_type, rows, sample_output_gradients
from .params import flatten, trainable, unflatten

GNB_SCALES = ("unbiased", "sophia")


def _check_samples(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"invalid n_samples={n!r}: must be an integer >= 1")


def rademacher(shape: tuple[int, ...], *, dtype: torch.dtype, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
    """A tensor of independent +-1 entries."""
    return torch.randint(0, 2, shape, generator=generator, device=device).to(dtype).mul_(2).sub_(1)


def _chunks(n: int, d: int, budget: int = 1 << 22) -> list[int]:
    size = max(1, min(n, budget // max(d, 1)))
    return [min(size, n - i) for i in range(0, n, size)]


def hutchinson_samples(
    model: nn.Module, loss_fn: Callable[[nn.Module], torch.Tensor], n_samples: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``(n_samples, d)``: the single-probe estimates ``z * (H z)`` (flat), for variance studies."""
    _check_samples(n_samples)
    op = exact.HVP(model, loss_fn)
    out = []
    for m in _chunks(n_samples, op.dim):
        z = rademacher((m, op.dim), dtype=op.dtype, generator=generator).to(op.device)
        out.append(z * op.batch(z))
    return torch.cat(out)


def hutchinson_diagonal(
    model: nn.Module, loss_fn: Callable[[nn.Module], torch.Tensor], *, n_samples: int = 1, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """Hutchinson estimate of the Hessian diagonal, averaged over ``n_samples`` Rademacher probes."""
    params = [p for _, p in trainable(model)]
    return [t.clone() for t in unflatten(hutchinson_samples(model, loss_fn, n_samples, generator=generator).mean(0), params)]


def gnb_samples(
    model: nn.Module,
    outputs_fn: Callable[[nn.Module], "tuple[torch.Tensor, torch.Tensor | None]"],
    loss_type: str,
    n_samples: int,
    *,
    scale: str = "unbiased",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(n_samples, d)``: independent single-draw GNB estimates (flat) on the same outputs.

    The draws' output gradients ``dL/do`` are computed in closed form in output space
    (:func:`precond.curvature.losses.sample_output_gradients`) and pulled back with one
    batched vector-Jacobian product (``is_grads_batched``; a loop where unsupported).
    """
    check_loss_type(loss_type)
    _check_samples(n_samples)
    if scale not in GNB_SCALES:
        raise ValueError(f"invalid scale={scale!r}: must be 'unbiased' (N * g_hat^2) or 'sophia' (g_hat^2, use with bs=N)")
    params = [p for _, p in trainable(model)]
    d = sum(p.numel() for p in params)
    with torch.enable_grad():
        outputs = outputs_fn(model)[0]
        n_rows = rows(loss_type, outputs).shape[0]
        res = []
        for m in _chunks(n_samples, d):
            go = sample_output_gradients(loss_type, outputs, m, generator)
            try:
                gs = torch.autograd.grad(outputs, params, grad_outputs=go, retain_graph=True, allow_unused=True, is_grads_batched=True)
                flat = torch.cat([torch.zeros(m, p.numel(), dtype=p.dtype, device=p.device) if g is None else g.reshape(m, -1) for p, g in zip(params, gs)], dim=1)
            except RuntimeError:
                rows_ = []
                for gi in go:
                    gs = torch.autograd.grad(outputs, params, grad_outputs=gi, retain_graph=True, allow_unused=True)
                    rows_.append(flatten([torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]))
                flat = torch.stack(rows_)
            res.append(flat.detach().pow(2))
    est = torch.cat(res)
    return est * n_rows if scale == "unbiased" else est


def gnb_diagonal(
    model: nn.Module,
    outputs_fn: Callable[[nn.Module], "tuple[torch.Tensor, torch.Tensor | None]"],
    loss_type: str,
    *,
    n_samples: int = 1,
    scale: str = "unbiased",
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Gauss-Newton-Bartlett estimate of the GGN diagonal, averaged over ``n_samples`` label
    draws (module docstring for the scaling)."""
    params = [p for _, p in trainable(model)]
    mean = gnb_samples(model, outputs_fn, loss_type, n_samples, scale=scale, generator=generator).mean(0)
    return [t.clone() for t in unflatten(mean, params)]


def estimate_diagonal(
    model: nn.Module,
    estimator: str,
    *,
    loss_fn: Callable[[nn.Module], torch.Tensor] | None = None,
    outputs_fn: Callable[[nn.Module], "tuple[torch.Tensor, torch.Tensor | None]"] | None = None,
    loss_type: str | None = None,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """The curvature diagonal named ``estimator`` (``"ggn"``, ``"hessian"``, ``"gnb"``,
    ``"hutchinson"``; aliases as :data:`precond.optim.functional.gauss_newton.ESTIMATOR_ALIASES`),
    one tensor per trainable parameter. ``ggn``/``gnb`` need ``outputs_fn`` and
    ``loss_type``; ``hessian``/``hutchinson`` need ``loss_fn``."""
    kind = canonical_estimator(estimator)
    if kind in ("ggn", "gnb"):
        if outputs_fn is None or loss_type is None:
            raise ValueError(f"estimator {kind!r} needs outputs_fn and loss_type (one of 'mse', 'logistic', 'cross_entropy')")
        if kind == "gnb":
            return gnb_diagonal(model, outputs_fn, loss_type, n_samples=n_samples, generator=generator)
        params = [p for _, p in trainable(model)]
        return [t.clone() for t in unflatten(exact.ggn_diagonal(model, outputs_fn, loss_type), params)]
    if loss_fn is None:
        raise ValueError(f"estimator {kind!r} needs loss_fn (the loss of the current batch as a function of the model)")
    if kind == "hutchinson":
        return hutchinson_diagonal(model, loss_fn, n_samples=n_samples, generator=generator)
    params = [p for _, p in trainable(model)]
    return [t.clone() for t in unflatten(exact.hessian_diagonal(model, loss_fn), params)]
