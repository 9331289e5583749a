r"""Choice of basis: run a diagonal optimizer in an orthogonal basis ``U`` (seed 002).

The paper's update ``theta -= eta * U D U^T g``: a diagonal preconditioner ``D`` applied in
the coordinates ``y = U^T theta``. :class:`RotatedOptimizer` runs *any* optimizer on ``y``:
it hands the base optimizer the rotated gradient ``U^T g`` and maps its update back with
``theta = U y``. With ``U = I`` it is the bare optimizer; with ``U`` the eigenbasis of the
Gauss-Newton matrix / Hessian it is the optimizer on the rotated (diagonalized) problem.

Between two bases, the geodesic of the orthogonal group (the paper's interpolation):

.. math:: U(\alpha) = U_0 \exp\!\big(\alpha \log(U_0^\top U_1)\big),

after flipping eigenvector signs of ``U1`` so that ``U0^T U1`` has a non-negative diagonal
and ``det(U0^T U1) = +1`` (both bases then lie in one connected component; the real
logarithm of a rotation is skew-symmetric). ``scipy.linalg.expm``/``logm``, real part,
skew-symmetrized.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import scipy.linalg
import torch
from torch import nn

from .params import flatten, trainable, unflatten


def _to_numpy(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().to(torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _like(out: np.ndarray, ref: Any) -> Any:
    if isinstance(ref, torch.Tensor):
        return torch.as_tensor(out, dtype=ref.dtype if ref.is_floating_point() else torch.float64, device=ref.device)
    return out


def check_orthogonal(u: Any, *, name: str = "U", tol: float = 1e-6) -> np.ndarray:
    """``u`` as float64 NumPy, or ``ValueError`` unless it is square with ``U^T U = I`` (to ``tol``)."""
    a = _to_numpy(u)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} must be a square (d, d) matrix, got shape {a.shape}")
    err = np.abs(a.T @ a - np.eye(a.shape[0])).max() if a.size else 0.0
    if err > tol:
        raise ValueError(f"{name} is not orthogonal: max |U^T U - I| = {err:.3g} > {tol:g} (orthonormalize it, e.g. with eigh or qr)")
    return a


def eigenbasis(matrix: Any, *, descending: bool = True) -> tuple[Any, Any]:
    """``(eigenvalues, U)`` of a symmetric matrix (``eigh``), sorted, with each eigenvector's
    largest-magnitude entry made positive (a deterministic sign)."""
    m = _to_numpy(matrix)
    m = 0.5 * (m + m.T)
    w, v = np.linalg.eigh(m)
    order = np.argsort(-w if descending else w, kind="stable")
    w, v = w[order], v[:, order]
    idx = np.abs(v).argmax(axis=0)
    v = v * np.sign(v[idx, np.arange(v.shape[1])])
    return _like(w, matrix), _like(v, matrix)


def align_signs(u0: Any, u1: Any) -> Any:
    """``U1`` with column signs flipped so that ``diag(U0^T U1) >= 0`` and ``det(U0^T U1) = +1``.

    Flipping an eigenvector's sign leaves the eigenbasis unchanged; when the determinant is
    still -1, the column with the smallest ``|(U0^T U1)_jj|`` is flipped.
    """
    a0, a1 = check_orthogonal(u0, name="U0"), check_orthogonal(u1, name="U1")
    if a0.shape != a1.shape:
        raise ValueError(f"U0 and U1 must have the same shape, got {a0.shape} and {a1.shape}")
    m = a0.T @ a1
    s = np.where(np.diag(m) < 0, -1.0, 1.0)
    a1 = a1 * s
    if np.linalg.det(a0.T @ a1) < 0:
        j = int(np.abs(np.diag(a0.T @ a1)).argmin())
        a1[:, j] = -a1[:, j]
    return _like(a1, u1)


def log_rotation(m: Any) -> np.ndarray:
    """The real skew-symmetric logarithm of a rotation ``M`` (``det M = +1``), via ``scipy.linalg.logm``.

    Raises ``ValueError`` when ``M`` has ``det -1`` or when no real logarithm comes back
    (an eigenvalue at exactly -1: a rotation by pi, where the geodesic is not unique).
    """
    a = check_orthogonal(m, name="U0^T U1")
    if a.size == 0:
        return a
    if np.linalg.det(a) < 0:
        raise ValueError("U0^T U1 has determinant -1: no geodesic in SO(d); call align_signs(U0, U1) first")
    log = scipy.linalg.logm(a)
    if isinstance(log, tuple):  # older scipy returns (logm, errest) with disp=False
        log = log[0]
    log = np.real(log)
    log = 0.5 * (log - log.T)
    err = np.abs(scipy.linalg.expm(log) - a).max()
    if err > 1e-6:
        raise ValueError(f"logm(U0^T U1) gave no real logarithm (expm error {err:.3g}): a rotation by pi has no unique geodesic")
    return log


def geodesic(u0: Any, u1: Any, alpha: float, *, align: bool = True) -> Any:
    """``U(alpha) = U0 expm(alpha logm(U0^T U1))``: ``U(0) = U0``, ``U(1) = U1`` (sign-aligned
    when ``align``), orthogonal for every ``alpha``. Returns the type (NumPy/torch) of ``U0``."""
    a0 = check_orthogonal(u0, name="U0")
    a1 = _to_numpy(align_signs(u0, u1)) if align else check_orthogonal(u1, name="U1")
    log = log_rotation(a0.T @ a1)
    out = a0 @ scipy.linalg.expm(float(alpha) * log)
    return _like(out, u0)


class RotatedOptimizer(torch.optim.Optimizer):
    """Run ``base_factory([y])`` on the coordinates ``y = U^T x`` of the flat parameters ``x``.

    Args:
        params: an ``nn.Module`` (its trainable parameters, flattened in
            ``named_parameters()`` order), one tensor, or an iterable of tensors.
        base_factory: ``lambda params: SomeOptimizer(params, **kw)``; it receives a list
            holding one flat leaf tensor ``y`` of size d.
        U: an orthogonal ``(d, d)`` matrix (torch or NumPy): column ``i`` is the direction
            of coordinate ``y_i``.

    ``step()`` sets ``y = U^T x`` and ``y.grad = U^T g``, steps the base optimizer and writes
    ``x = U y``. ``param_groups``, ``state`` and state dicts are the base optimizer's (so LR
    schedulers act on it); ``zero_grad`` clears ``x``'s gradients. Curvature-driven bases
    take curvature through :meth:`update_curvature` (a flat diagonal in the rotated
    coordinates) or :meth:`update_curvature_matrix` (a ``(d, d)`` matrix ``M`` in the original
    coordinates, fed as ``diag(U^T M U)``: the paper's ``u_i^T H u_i``).
    :class:`precond.curvature.CurvatureFeeder` feeds it ``diag(U^T C U)`` (exact or estimated,
    :meth:`basis_in`) with the base optimizer's ``curvature_estimator``, ``curvature_every``
    and ``curvature_samples``, which this wrapper exposes read-only.
    """

    def __init__(self, params: nn.Module | torch.Tensor | Iterable[torch.Tensor], base_factory: Callable[[list[torch.Tensor]], torch.optim.Optimizer], U: Any) -> None:
        if isinstance(params, nn.Module):
            xs = [p for p in params.parameters() if p.requires_grad]
        elif isinstance(params, torch.Tensor):
            xs = [params]
        else:
            xs = list(params)
        if not xs:
            raise ValueError("RotatedOptimizer: no parameters to optimize")
        self._x = xs
        d = sum(p.numel() for p in xs)
        u = check_orthogonal(U)
        if u.shape[0] != d:
            raise ValueError(f"U is {u.shape[0]}x{u.shape[0]} but the parameters have {d} entries in all")
        dtype, device = xs[0].dtype, xs[0].device
        self.U = torch.as_tensor(u, dtype=dtype, device=device)
        with torch.no_grad():
            y0 = self.U.T @ flatten([p.detach() for p in xs])
        self._y = y0.clone().requires_grad_(True)
        self.base = base_factory([self._y])
        super().__init__([self._y], dict(self.base.defaults))
        self.param_groups = self.base.param_groups
        self.state = self.base.state
        self.defaults = self.base.defaults
        self.needs_curvature = bool(getattr(self.base, "needs_curvature", False))

    @property
    def y(self) -> torch.Tensor:
        """The rotated coordinates the base optimizer works on."""
        return self._y

    # the base optimizer's curvature settings (AttributeError when it takes no curvature)
    curvature_estimator = property(lambda self: self.base.curvature_estimator)
    curvature_every = property(lambda self: self.base.curvature_every)
    curvature_samples = property(lambda self: self.base.curvature_samples)

    def basis_in(self, model: nn.Module) -> torch.Tensor:
        """``V`` of shape ``(D, d)`` over ``model``'s ``D`` flat trainable entries: row block of
        each wrapped parameter = its rows of ``U``, zero rows for the model's other parameters.
        Then ``theta = V y`` on the wrapped entries, and ``diag(V^T C V)`` is the curvature of
        the rotated coordinates ``y`` for any curvature matrix ``C`` of the model."""
        offsets, total = {}, 0
        for _, p in trainable(model):
            offsets[id(p)] = total
            total += p.numel()
        for i, p in enumerate(self._x):
            if id(p) not in offsets:
                raise ValueError(f"RotatedOptimizer: its parameter {i} (shape {tuple(p.shape)}) is not a trainable parameter of the model: pass the model it optimizes")
        v = self.U.new_zeros(total, self.U.shape[1])
        row = 0
        for p in self._x:
            v[offsets[id(p)] : offsets[id(p)] + p.numel()] = self.U[row : row + p.numel()]
            row += p.numel()
        return v

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self._x:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if all(p.grad is None for p in self._x):
            return loss
        g = flatten([torch.zeros_like(p) if p.grad is None else p.grad for p in self._x])
        self._y.copy_(self.U.T @ flatten([p.detach() for p in self._x]))
        self._y.grad = self.U.T @ g
        self.base.step()
        for p, v in zip(self._x, unflatten(self.U @ self._y, self._x)):
            p.copy_(v)
        return loss

    def update_curvature(self, diag: list[torch.Tensor]) -> None:
        """Feed the base optimizer a curvature diagonal given in the rotated coordinates (one flat tensor)."""
        if not callable(getattr(self.base, "update_curvature", None)):
            raise TypeError(f"the base optimizer {type(self.base).__name__} takes no curvature")
        diag = list(diag)
        if len(diag) != 1 or diag[0].numel() != self._y.numel():
            raise ValueError(f"update_curvature: pass [tensor of {self._y.numel()} entries] (the diagonal in the rotated basis)")
        self.base.update_curvature([diag[0].reshape(-1).to(self._y)])

    def update_curvature_matrix(self, matrix: torch.Tensor) -> None:
        """Feed ``diag(U^T M U)`` for a ``(d, d)`` curvature matrix ``M`` in the original coordinates."""
        m = torch.as_tensor(matrix, dtype=self.U.dtype, device=self.U.device)
        self.update_curvature([torch.einsum("ji,jk,ki->i", self.U, m, self.U)])

    def state_dict(self) -> dict[str, Any]:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base.load_state_dict(state_dict)
        self.param_groups = self.base.param_groups
        self.state = self.base.state
