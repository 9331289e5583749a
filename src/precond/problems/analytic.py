"""Analytic 2-D test functions of the lecture notes (seed 003) and seed 000, with exact gradients.

Every function is a :class:`VectorProblem`: ``value(x)`` and ``grad(x)`` work on points of
shape ``(..., d)`` (analytic formulas, no autograd), ``minimizer``/``optimum`` are the known
minimum, ``bounds`` the contour-plot ranges ``((xmin, xmax), (ymin, ymax))``, and
``initial_point(seed)`` is the classic start for seed 0 and a Gaussian perturbation of it
(``init_scale`` times N(0, I), seeded) otherwise.

Common constructor arguments: ``dtype`` ("float32" default, or "float64") of the initial
point; ``init_scale`` (float) the perturbation scale for seeds != 0.
"""

from __future__ import annotations

import math

import torch

from ._common import VectorProblem, as_dtype, generator
from .registry import register


class Analytic(VectorProblem):
    kind = "analytic"
    source = "seed 003 (lecture notes)"
    #: the classic starting point (seed 0)
    start: tuple[float, ...] = (0.0, 0.0)
    #: contour-plot ranges
    bounds: tuple[tuple[float, float], tuple[float, float]] = ((-1.0, 1.0), (-1.0, 1.0))
    default_init_scale = 0.1

    def __init__(self, dtype: str = "float32", init_scale: float | None = None) -> None:
        self.dtype = as_dtype(dtype, self.name)
        self.init_scale = float(self.default_init_scale if init_scale is None else init_scale)
        self.dim = len(self.start)

    def initial_point(self, seed: int) -> torch.Tensor:
        x0 = torch.tensor(self.start, dtype=torch.float64)
        if seed != 0:
            x0 = x0 + self.init_scale * torch.randn(self.dim, generator=generator(seed), dtype=torch.float64)
        return x0.to(self.dtype)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """The exact gradient at ``x`` (..., d), by its analytic formula."""
        raise NotImplementedError

    @property
    def minimizer(self) -> torch.Tensor:
        return torch.tensor(self._minimizer, dtype=torch.float64)

    _minimizer: tuple[float, ...] = (0.0, 0.0)


def _xy(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x.shape[-1] != 2:
        raise ValueError(f"expected points of shape (..., 2), got {tuple(x.shape)}")
    return x[..., 0], x[..., 1]


class _DiagQuadratic(Analytic):
    """f(x, y) = a x^2 + b y^2, (a, b) = ``coef``."""

    coef: tuple[float, float] = (1.0, 1.0)
    optimum = 0.0
    default_init_scale = 0.5

    def value(self, x, t=None):
        u, v = _xy(x)
        return self.coef[0] * u * u + self.coef[1] * v * v

    def grad(self, x):
        u, v = _xy(x)
        return torch.stack([2 * self.coef[0] * u, 2 * self.coef[1] * v], -1)

    def hessian(self) -> torch.Tensor:
        return torch.diag(torch.tensor([2 * self.coef[0], 2 * self.coef[1]], dtype=torch.float64))


def _diagonal(name: str, cls_name: str, coef: tuple[float, float], start: tuple[float, float], half_width: float, doc: str) -> type:
    """Register the quadratic ``coef[0] x^2 + coef[1] y^2`` from ``start``, plotted on ``[-half_width, half_width]^2``."""
    attrs = {"__doc__": doc, "name": name, "coef": coef, "start": start, "bounds": ((-half_width, half_width),) * 2}
    return register(name)(type(cls_name, (_DiagQuadratic,), attrs))


Basin = _diagonal("basin", "Basin", (1.0, 1.0), (4.0, 3.0), 5.0, "The notes' basin f = x^2 + y^2 (a round bowl), start (4, 3).")
Ravine = _diagonal("ravine", "Ravine", (1.0, 5.0), (4.0, 3.0), 5.0,
                   "The notes' ravine f = x^2 + 5 y^2 (differential curvature), start (4, 3).")
NotesQuadratic = _diagonal("notes_quadratic", "NotesQuadratic", (5.0, 0.5), (1.0, 10.0), 12.0,
                           "The notes' preconditioning example f = 1/2 (10 x^2 + y^2), theta_0 = (1, 10), H = diag(10, 1).")


@register("beale")
class Beale(Analytic):
    """Beale's function (seed 000's suggested first test).

    f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2; minimum f(3, 0.5) = 0;
    start (1, 1.5).
    """

    name = "beale"
    source = "seed 000 (AGD paper, suggested test)"
    start = (1.0, 1.5)
    bounds = ((-4.5, 4.5), (-4.5, 4.5))
    _minimizer = (3.0, 0.5)
    optimum = 0.0
    _c = (1.5, 2.25, 2.625)

    def value(self, x, t=None):
        u, v = _xy(x)
        return sum((c - u + u * v ** (k + 1)) ** 2 for k, c in enumerate(self._c))

    def grad(self, x):
        u, v = _xy(x)
        gu = torch.zeros_like(u)
        gv = torch.zeros_like(v)
        for k, c in enumerate(self._c):
            p = k + 1
            r = c - u + u * v ** p
            gu = gu + 2 * r * (v ** p - 1)
            gv = gv + 2 * r * (p * u * v ** (p - 1))
        return torch.stack([gu, gv], -1)


@register("rosenbrock")
class Rosenbrock(Analytic):
    """Rosenbrock's function, in ``dim`` >= 2 dimensions (the chained form).

    f = sum_{i<d} b (x_{i+1} - x_i^2)^2 + (a - x_i)^2; minimum at (a, a^2, ...) with f = 0 for
    a = 1 (the default; for a != 1 only d = 2 has that closed-form minimizer). Start
    (-1.2, 1, -1.2, 1, ...).

    Args: ``dim`` (int >= 2), ``a`` (float, default 1), ``b`` (float, default 100).
    """

    name = "rosenbrock"
    source = "classic (Rosenbrock 1960); seed 003's ravine in its hardest form"
    bounds = ((-2.0, 2.0), (-1.0, 3.0))
    optimum = 0.0

    def __init__(self, dim: int = 2, a: float = 1.0, b: float = 100.0, dtype: str = "float32", init_scale: float | None = None) -> None:
        if int(dim) < 2:
            raise ValueError(f"rosenbrock: dim must be >= 2, got {dim}")
        if dim > 2 and a != 1.0:
            raise ValueError("rosenbrock: a != 1 is supported only for dim = 2 (no closed-form minimizer otherwise)")
        self.a, self.b = float(a), float(b)
        self.start = tuple(-1.2 if i % 2 == 0 else 1.0 for i in range(int(dim)))
        super().__init__(dtype, init_scale)
        self._minimizer = (self.a, self.a ** 2) if dim == 2 else (1.0,) * int(dim)

    def value(self, x, t=None):
        if x.shape[-1] != self.dim:
            raise ValueError(f"rosenbrock: expected points of shape (..., {self.dim}), got {tuple(x.shape)}")
        xi, xn = x[..., :-1], x[..., 1:]
        return (self.b * (xn - xi * xi) ** 2 + (self.a - xi) ** 2).sum(-1)

    def grad(self, x):
        xi, xn = x[..., :-1], x[..., 1:]
        r = xn - xi * xi
        g = torch.zeros_like(x)
        g[..., :-1] += -4 * self.b * r * xi - 2 * (self.a - xi)
        g[..., 1:] += 2 * self.b * r
        return g


@register("saddle")
class Saddle(Analytic):
    """A strict saddle with two minima: f = x^2 + y^4/4 - y^2/2.

    Stationary points: the saddle (0, 0) (Hessian diag(2, -1)) and the minima (0, +-1) with
    f = -1/4. The start (1, 1e-3) lies almost on the saddle's stable manifold, so plain
    gradient descent stalls near (0, 0) before escaping to (0, 1) (``minimizer``; the other
    minimum is ``minimizers[1]``).
    """

    name = "saddle"
    start = (1.0, 1e-3)
    bounds = ((-1.5, 1.5), (-1.5, 1.5))
    _minimizer = (0.0, 1.0)
    optimum = -0.25
    default_init_scale = 1e-3
    saddle_point = (0.0, 0.0)

    @property
    def minimizers(self) -> torch.Tensor:
        return torch.tensor([[0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)

    def value(self, x, t=None):
        u, v = _xy(x)
        return u * u + v ** 4 / 4 - v * v / 2

    def grad(self, x):
        u, v = _xy(x)
        return torch.stack([2 * u, v ** 3 - v], -1)


@register("plateau")
class Plateau(Analytic):
    """A plateau: f = 1 - exp(-(x^2 + y^2) / (2 s^2)), s = ``width`` (default 1).

    Minimum f(0, 0) = 0; from the start (2.5, 2.5) the gradient is about 5e-3 (vanishing
    gradient on a flat region). Args: ``width`` (float > 0).
    """

    name = "plateau"
    start = (2.5, 2.5)
    bounds = ((-4.0, 4.0), (-4.0, 4.0))
    optimum = 0.0

    def __init__(self, width: float = 1.0, dtype: str = "float32", init_scale: float | None = None) -> None:
        if width <= 0:
            raise ValueError(f"plateau: width must be > 0, got {width}")
        self.s2 = float(width) ** 2
        super().__init__(dtype, init_scale)

    def value(self, x, t=None):
        u, v = _xy(x)
        return 1 - torch.exp(-(u * u + v * v) / (2 * self.s2))

    def grad(self, x):
        u, v = _xy(x)
        e = torch.exp(-(u * u + v * v) / (2 * self.s2)) / self.s2
        return torch.stack([u * e, v * e], -1)


@register("cliff")
class Cliff(Analytic):
    """A cliff: f = 0.05 (x^2 + y^2) + H * sigmoid(k (x - c)).

    A gentle bowl with a wall of height H = ``height`` (10) and steepness k = ``steepness``
    (20) at x = c = ``position`` (1): on the wall the gradient is up to H k / 4 = 50, so an
    unclipped step that reaches it is thrown far across the bowl (the notes' exploding
    gradient). Start (3, 1), on the high side. The minimizer lies on y = 0 just left of 0
    (the sigmoid's tail); it is found once by Newton's method in float64 at construction.
    """

    name = "cliff"
    start = (3.0, 1.0)
    bounds = ((-4.0, 4.0), (-3.0, 3.0))

    def __init__(self, height: float = 10.0, steepness: float = 20.0, position: float = 1.0,
                 dtype: str = "float32", init_scale: float | None = None) -> None:
        self.h, self.k, self.c = float(height), float(steepness), float(position)
        super().__init__(dtype, init_scale)
        u = 0.0
        for _ in range(100):  # Newton on f'(u) = 0.1 u + H k s (1 - s)
            s = 1 / (1 + math.exp(-self.k * (u - self.c)))
            g = 0.1 * u + self.h * self.k * s * (1 - s)
            h = 0.1 + self.h * self.k ** 2 * s * (1 - s) * (1 - 2 * s)
            step = g / h
            u -= step
            if abs(step) < 1e-16:
                break
        self._minimizer = (u, 0.0)
        self.optimum = float(self.value(torch.tensor([u, 0.0], dtype=torch.float64)))

    def value(self, x, t=None):
        u, v = _xy(x)
        return 0.05 * (u * u + v * v) + self.h * torch.sigmoid(self.k * (u - self.c))

    def grad(self, x):
        u, v = _xy(x)
        s = torch.sigmoid(self.k * (u - self.c))
        return torch.stack([0.1 * u + self.h * self.k * s * (1 - s), 0.1 * v], -1)
