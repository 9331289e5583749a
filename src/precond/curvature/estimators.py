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
With a ``basis`` ``V`` of shape ``(d, m)`` (the coordinates ``y`` of ``theta = V y``, e.g.
:class:`precond.curvature.RotatedOptimizer`'s ``U``) they estimate
:math:`\operatorname{diag}(V^\top C V)` instead and return one flat tensor of ``m`` entries:
Hutchinson probes :math:`z \in \{\pm1\}^m` and returns :math:`z \odot V^\top H V z`
(:math:`\mathbb E = \operatorname{diag}(V^\top H V)`); GNB squares :math:`V^\top \hat g`
(:math:`\mathbb E[V^\top \hat g \hat g^\top V] = V^\top G V / N`). Like the exact
quantities, they leave the model's buffers and modes as they were (BatchNorm in train mode:
batch statistics, running statistics not updated; :func:`precond.curvature.params.preserved_state`).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from . import exact
from .losses import check_loss_type, rows, sample_output_gradients
from .params import flatten, preserving_state, trainable, unflatten

#: the curvature diagonals :func:`estimate_diagonal` computes, by name (what a curvature
#: optimizer's ``estimator=`` asks for): exact GGN diagonal, exact Hessian diagonal,
#: Gauss-Newton-Bartlett, Hutchinson
CURVATURE_ESTIMATORS = ("ggn", "hessian", "gnb", "hutchinson")
#: accepted aliases
ESTIMATOR_ALIASES = {"exact": "ggn", "exact_ggn": "ggn", "exact_hessian": "hessian", "gn": "ggn"}
#: the estimators that need the model's outputs and a loss type (the others need the loss)
OUTPUT_SPACE_ESTIMATORS = ("ggn", "gnb")

GNB_SCALES = ("unbiased", "sophia")


def canonical_estimator(name: str) -> str:
    """The canonical estimator name (case and aliases resolved) or ``ValueError`` naming the choices."""
    if not isinstance(name, str):
        raise TypeError(f"estimator must be a string, got {name!r}")
    key = ESTIMATOR_ALIASES.get(name.lower(), name.lower())
    if key not in CURVATURE_ESTIMATORS:
        raise ValueError(
            f"invalid estimator={name!r}: must be one of {', '.join(map(repr, CURVATURE_ESTIMATORS))} "
            f"(aliases: {', '.join(map(repr, ESTIMATOR_ALIASES))})"
        )
    return key


def _check_samples(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"invalid n_samples={n!r}: must be an integer >= 1")


def rademacher(shape: tuple[int, ...], *, dtype: torch.dtype, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
    """A tensor of independent +-1 entries."""
    return torch.randint(0, 2, shape, generator=generator, device=device).to(dtype).mul_(2).sub_(1)


def _chunks(n: int, d: int, budget: int = 1 << 22) -> list[int]:
    size = max(1, min(n, budget // max(d, 1)))
    return [min(size, n - i) for i in range(0, n, size)]


def _per_param(model: nn.Module, flat: torch.Tensor, basis: torch.Tensor | None) -> list[torch.Tensor]:
    """One tensor per trainable parameter, or ``[flat]`` for an estimate in a ``basis``."""
    if basis is not None:
        return [flat.clone()]
    return [t.clone() for t in unflatten(flat, [p for _, p in trainable(model)])]


def hutchinson_samples(
    model: nn.Module,
    loss_fn: Callable[[nn.Module], torch.Tensor],
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
    basis: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(n_samples, d)`` (``(n_samples, m)`` in a ``basis``): the single-probe estimates
    ``z * (H z)`` (``z * V^T H V z``), flat, for variance studies."""
    _check_samples(n_samples)
    op = exact.HVP(model, loss_fn)
    v = None if basis is None else exact.check_basis(basis, op.dim, op.grads[0])
    m_dim = op.dim if v is None else v.shape[1]
    out = []
    for m in _chunks(n_samples, max(op.dim, m_dim)):
        z = rademacher((m, m_dim), dtype=op.dtype, generator=generator).to(op.device)
        out.append(z * (op.batch(z) if v is None else op.batch(z @ v.T) @ v))
    return torch.cat(out)


def hutchinson_diagonal(
    model: nn.Module,
    loss_fn: Callable[[nn.Module], torch.Tensor],
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    basis: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Hutchinson estimate of the Hessian diagonal (of ``V^T H V`` in a ``basis``), averaged over
    ``n_samples`` Rademacher probes."""
    return _per_param(model, hutchinson_samples(model, loss_fn, n_samples, generator=generator, basis=basis).mean(0), basis)


@preserving_state
def gnb_samples(
    model: nn.Module,
    outputs_fn: Callable[[nn.Module], "tuple[torch.Tensor, torch.Tensor | None]"],
    loss_type: str,
    n_samples: int,
    *,
    scale: str = "unbiased",
    generator: torch.Generator | None = None,
    basis: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(n_samples, d)``: independent single-draw GNB estimates (flat) on the same outputs
    (``(n_samples, m)``, the squares of ``V^T g_hat``, in a ``basis``).

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
    v = None if basis is None else exact.check_basis(basis, d, params[0])
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
            res.append((flat.detach() if v is None else flat.detach() @ v).pow(2))
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
    basis: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Gauss-Newton-Bartlett estimate of the GGN diagonal (of ``V^T G V`` in a ``basis``),
    averaged over ``n_samples`` label draws (module docstring for the scaling)."""
    return _per_param(model, gnb_samples(model, outputs_fn, loss_type, n_samples, scale=scale, generator=generator, basis=basis).mean(0), basis)


def estimate_diagonal(
    model: nn.Module,
    estimator: str,
    *,
    loss_fn: Callable[[nn.Module], torch.Tensor] | None = None,
    outputs_fn: Callable[[nn.Module], "tuple[torch.Tensor, torch.Tensor | None]"] | None = None,
    loss_type: str | None = None,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    basis: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """The curvature diagonal named ``estimator`` (``"ggn"``, ``"hessian"``, ``"gnb"``,
    ``"hutchinson"``; aliases as :data:`ESTIMATOR_ALIASES`),
    one tensor per trainable parameter (one flat tensor of ``diag(V^T C V)`` in a ``basis``).
    ``ggn``/``gnb`` need ``outputs_fn`` and ``loss_type``; ``hessian``/``hutchinson`` need ``loss_fn``."""
    kind = canonical_estimator(estimator)
    if kind in OUTPUT_SPACE_ESTIMATORS:
        if outputs_fn is None or loss_type is None:
            raise ValueError(f"estimator {kind!r} needs outputs_fn and loss_type (one of 'mse', 'logistic', 'cross_entropy')")
        if kind == "gnb":
            return gnb_diagonal(model, outputs_fn, loss_type, n_samples=n_samples, generator=generator, basis=basis)
        return _per_param(model, exact.ggn_diagonal(model, outputs_fn, loss_type, basis=basis), basis)
    if loss_fn is None:
        raise ValueError(f"estimator {kind!r} needs loss_fn (the loss of the current batch as a function of the model)")
    if kind == "hutchinson":
        return hutchinson_diagonal(model, loss_fn, n_samples=n_samples, generator=generator, basis=basis)
    return _per_param(model, exact.hessian_diagonal(model, loss_fn, basis=basis), basis)
