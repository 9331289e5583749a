r"""Exact curvature of a model's loss over all its trainable parameters (flattened).

* Hessian :math:`H = \nabla^2_\theta L` and its diagonal (``jacrev(jacrev(f))``);
* Hessian-vector products (double backward, graph kept for repeated products: Lanczos);
* the generalized Gauss-Newton matrix :math:`G = J^\top H_{out} J` (Schraudolph 2002;
  Martens 2020), :math:`J = \partial o/\partial\theta` from ``torch.func.jacrev`` and
  :math:`H_{out}` the loss Hessian in output space (:func:`precond.curvature.losses.output_hessian`),
  its diagonal :math:`G_{jj} = \sum_{i} J_{i,:,j}^\top H_{out,i} J_{i,:,j}`, and
  GGN-vector products :math:`J^\top H_{out} (J v)` (reverse mode only).

``loss_fn(model) -> scalar`` and ``outputs_fn(model) -> (outputs, targets)`` close over
the batch; the model's parameters are never modified and ``.grad`` is never touched, and
the model's buffers and train/eval modes are left as they were
(:func:`precond.curvature.params.preserved_state`: a BatchNorm in train mode uses the batch
statistics and its running statistics are not updated). The full matrices cost ``O(d^2)``
memory: use them for d up to a few thousand and the products beyond.

The diagonals take an optional ``basis`` ``V`` of shape ``(d, m)`` (columns ``v_i``, e.g. an
orthogonal ``U``): they then return :math:`\operatorname{diag}(V^\top C V)_i = v_i^\top C v_i`,
the curvature of the coordinates ``y`` with ``theta = V y`` (:class:`precond.curvature.RotatedOptimizer`).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import jacrev

from .losses import check_loss_type, output_hessian, rows
from .params import as_function, flatten, preserved_state, preserving_state, trainable, unflatten

LossFn = Callable[[nn.Module], torch.Tensor]
OutputsFn = Callable[[nn.Module], "tuple[torch.Tensor, torch.Tensor | None]"]


def check_basis(basis: torch.Tensor, d: int, like: torch.Tensor) -> torch.Tensor:
    """``basis`` as a ``(d, m)`` tensor of ``like``'s dtype and device, or ``ValueError``."""
    v = torch.as_tensor(basis)
    if v.dim() != 2 or v.shape[0] != d:
        raise ValueError(f"basis must be a (d, m) matrix with d = {d} (the trainable parameters' entries), got shape {tuple(v.shape)}")
    return v.to(dtype=like.dtype, device=like.device)


def _diag_in_basis(matrix: torch.Tensor, basis: torch.Tensor | None) -> torch.Tensor:
    """``diag(M)`` or ``diag(V^T M V)``."""
    if basis is None:
        return torch.diagonal(matrix).clone()
    v = check_basis(basis, matrix.shape[0], matrix)
    return torch.einsum("dm,de,em->m", v, matrix, v)


@preserving_state
def hessian(model: nn.Module, loss_fn: LossFn) -> torch.Tensor:
    """The ``(d, d)`` Hessian of ``loss_fn(model)`` in the trainable parameters (symmetrized)."""
    f, x0 = as_function(model, loss_fn)
    h = jacrev(jacrev(f))(x0)  # reverse-over-reverse (no forward-mode decompositions needed)
    return 0.5 * (h + h.T)


class HVP:
    """Hessian-vector products ``v -> H v`` at the model's current parameters.

    The gradient graph is built once (``create_graph=True``) and reused by every call, so
    repeated products (Lanczos, Hutchinson) cost one backward each.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        self.params = [p for _, p in trainable(model)]
        self.dim = sum(p.numel() for p in self.params)
        with torch.enable_grad(), preserved_state(model):
            loss = loss_fn(model)
            self.grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        self.grads = tuple(torch.zeros_like(p) if g is None else g for p, g in zip(self.params, self.grads))
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device

    def gradient(self) -> torch.Tensor:
        """The flat gradient at the current point."""
        return flatten([g.detach() for g in self.grads])

    def batch(self, vs: torch.Tensor) -> torch.Tensor:
        """``(n, d) -> (n, d)``: one product per row, vectorized (``is_grads_batched``); falls
        back to a loop for layers that do not support batched gradients."""
        if vs.dim() != 2 or vs.shape[1] != self.dim:
            raise ValueError(f"HVP.batch: expected shape (n, {self.dim}), got {tuple(vs.shape)}")
        vs = vs.to(dtype=self.dtype, device=self.device)
        try:
            parts = [t.reshape(vs.shape[0], *p.shape) for t, p in zip(torch.split(vs, [p.numel() for p in self.params], dim=1), self.params)]
            with torch.enable_grad():
                hv = torch.autograd.grad(self.grads, self.params, grad_outputs=parts, retain_graph=True, allow_unused=True, is_grads_batched=True)
            return torch.cat([torch.zeros(vs.shape[0], p.numel(), dtype=self.dtype, device=self.device) if h is None else h.reshape(vs.shape[0], -1) for p, h in zip(self.params, hv)], dim=1).detach()
        except RuntimeError:
            return torch.stack([self(v) for v in vs])

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        if v.shape != (self.dim,):
            raise ValueError(f"HVP: expected a vector of shape ({self.dim},), got {tuple(v.shape)}")
        vs = unflatten(v.to(dtype=self.dtype, device=self.device), self.params)
        with torch.enable_grad():
            hv = torch.autograd.grad(self.grads, self.params, grad_outputs=vs, retain_graph=True, allow_unused=True)
        return flatten([torch.zeros_like(p) if h is None else h for p, h in zip(self.params, hv)]).detach()


def hvp(model: nn.Module, loss_fn: LossFn, v: torch.Tensor) -> torch.Tensor:
    """``H v`` for one flat vector ``v``."""
    return HVP(model, loss_fn)(v)


def hessian_diagonal(model: nn.Module, loss_fn: LossFn, *, max_dense: int = 4096, basis: torch.Tensor | None = None) -> torch.Tensor:
    """The exact Hessian diagonal (``diag(V^T H V)`` with a ``basis``): from the full Hessian
    when ``d <= max_dense``, else one Hessian-vector product per coordinate (per column of
    ``V``: ``d`` or ``m`` backward passes)."""
    params = [p for _, p in trainable(model)]
    d = sum(p.numel() for p in params)
    if d <= max_dense:
        return _diag_in_basis(hessian(model, loss_fn), basis)
    op = HVP(model, loss_fn)
    if basis is not None:
        v = check_basis(basis, d, params[0])
        return torch.stack([torch.dot(v[:, i], op(v[:, i])) for i in range(v.shape[1])])
    out = torch.empty(d, dtype=op.dtype, device=op.device)
    e = torch.zeros(d, dtype=op.dtype, device=op.device)
    for j in range(d):
        e[j] = 1.0
        out[j] = op(e)[j]
        e[j] = 0.0
    return out


def _outputs(model: nn.Module, outputs_fn: OutputsFn, loss_type: str):
    check_loss_type(loss_type)
    f, x0 = as_function(model, lambda m: outputs_fn(m)[0])
    with torch.no_grad():
        out = f(x0)
    return f, x0, out


@preserving_state
def jacobian(model: nn.Module, outputs_fn: OutputsFn, loss_type: str) -> torch.Tensor:
    """``J`` as ``(N, k, d)``: rows of the outputs (see :mod:`precond.curvature.losses`) by parameters."""
    f, x0, out = _outputs(model, outputs_fn, loss_type)
    j = jacrev(f)(x0)  # (*out.shape, d)
    n, k = rows(loss_type, out).shape
    return j.reshape(n, k, -1)


@preserving_state
def ggn(model: nn.Module, outputs_fn: OutputsFn, loss_type: str) -> torch.Tensor:
    """The ``(d, d)`` generalized Gauss-Newton matrix ``J^T H_out J`` of the mean loss."""
    f, x0, out = _outputs(model, outputs_fn, loss_type)
    j = jacobian(model, outputs_fn, loss_type)
    h = output_hessian(loss_type, out).to(j.dtype)
    g = torch.einsum("nkd,nkl,nle->de", j, h, j)
    return 0.5 * (g + g.T)


@preserving_state
def ggn_diagonal(model: nn.Module, outputs_fn: OutputsFn, loss_type: str, *, basis: torch.Tensor | None = None) -> torch.Tensor:
    """The exact GGN diagonal ``sum_i diag(J_i^T H_i J_i)`` (one Jacobian: ``N*k`` backward
    passes); with a ``basis`` ``V``, ``diag(V^T G V)`` from ``J_i V``."""
    f, x0, out = _outputs(model, outputs_fn, loss_type)
    j = jacobian(model, outputs_fn, loss_type)
    if basis is not None:
        j = j @ check_basis(basis, j.shape[-1], j)
    h = output_hessian(loss_type, out).to(j.dtype)
    return torch.einsum("nkd,nkl,nld->d", j, h, j)


class GGNVP:
    """GGN-vector products ``v -> J^T H_out (J v)`` at the current parameters (no matrix formed).

    ``J v`` by the double-vjp trick (``J v = d/du <J^T u, v>``), so only reverse mode is
    used; the output graph is built once and reused by every call.
    """

    def __init__(self, model: nn.Module, outputs_fn: OutputsFn, loss_type: str) -> None:
        check_loss_type(loss_type)
        self.loss_type = loss_type
        self.params = [p for _, p in trainable(model)]
        self.dim = sum(p.numel() for p in self.params)
        with torch.enable_grad(), preserved_state(model):
            self.out = outputs_fn(model)[0]
            self.u = torch.zeros_like(self.out, requires_grad=True)
            jtu = torch.autograd.grad(self.out, self.params, self.u, create_graph=True, allow_unused=True)
        self.jtu = [torch.zeros_like(p) if g is None else g for p, g in zip(self.params, jtu)]
        self.h = output_hessian(loss_type, self.out)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        if v.shape != (self.dim,):
            raise ValueError(f"GGNVP: expected a vector of shape ({self.dim},), got {tuple(v.shape)}")
        vs = unflatten(v.to(self.params[0].dtype), self.params)
        with torch.enable_grad():
            (jv,) = torch.autograd.grad(self.jtu, self.u, vs, retain_graph=True, allow_unused=True)
            if jv is None:
                jv = torch.zeros_like(self.out)
            r = rows(self.loss_type, jv)
            w = torch.einsum("nkl,nl->nk", self.h.to(r.dtype), r).reshape(self.out.shape)
            jtw = torch.autograd.grad(self.out, self.params, w, retain_graph=True, allow_unused=True)
        return flatten([torch.zeros_like(p) if g is None else g for p, g in zip(self.params, jtw)]).detach()


def ggn_vector_product(model: nn.Module, outputs_fn: OutputsFn, loss_type: str, v: torch.Tensor) -> torch.Tensor:
    """``G v`` for one flat vector ``v``."""
    return GGNVP(model, outputs_fn, loss_type)(v)
