"""Reddi, Kale & Kumar (ICLR 2018, "On the Convergence of Adam and Beyond"): online problems
on which Adam fails to converge, with their regret.

All are linear online losses ``f_t(x) = c_t x`` on the domain [-1, 1] (projection in
``after_step``/``project``), played from ``x_1 = 1`` (seed 0; other seeds start at
``1 - 0.1 |N(0, 1)|``). ``batches`` yields ``Batch(t=t)`` with ``t = 1, 2, ...``.

- ``reddi``: section 3, ``c_t = C`` when ``t mod 3 == 1``, else ``-1`` (``C > 2``; default 3). Over
  a period the sum is ``C - 2 > 0``, so the best fixed point is ``x* = -1``. Their Theorem 1 uses
  b1 = 0, b2 = 1/(1 + C^2).
- ``reddi_fig1``: Figure 1, ``c_t = 1010`` when ``t mod 101 == 1``, else ``-10``; ``x* = -1``.
- ``reddi_stochastic``: ``c_t = 1010`` with probability 0.01, else ``-10`` (i.i.d., fixed by
  ``sequence_seed``); ``E f = 0.2 x``, ``x* = -1``.

``regret(problem, iterates)`` computes ``R_T = sum_t f_t(x_t) - min_{x in [-1,1]} sum_t f_t(x)``
and ``R_T / T`` (running, for every T).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._common import VectorProblem, as_dtype, generator
from .registry import register


class OnlineLinear(VectorProblem):
    """Base: ``f_t(x) = coef(t) * x`` on [-1, 1]."""

    kind = "online"
    source = "seed 003; Reddi, Kale, Kumar 2018"
    dim = 1
    bounds = ((-1.0, 1.0),)
    lower, upper = -1.0, 1.0

    def __init__(self, dtype: str = "float32") -> None:
        self.dtype = as_dtype(dtype, self.name)

    def coef(self, t: int) -> float:
        raise NotImplementedError

    def coefs(self, T: int) -> np.ndarray:
        """``c_1 .. c_T`` as a float64 array."""
        return np.array([self.coef(t) for t in range(1, T + 1)], dtype=np.float64)

    @property
    def minimizer(self) -> torch.Tensor:
        return torch.tensor([-1.0], dtype=torch.float64)

    def initial_point(self, seed: int) -> torch.Tensor:
        x = 1.0 if seed == 0 else 1.0 - 0.1 * abs(float(torch.randn(1, generator=generator(seed))))
        return torch.tensor([max(x, -1.0)], dtype=self.dtype)

    def value(self, x: torch.Tensor, t: int | None = None) -> torch.Tensor:
        """``f_t(x)``; with ``t=None``, the average loss over one period (or the expectation)."""
        c = self.mean_coef() if t is None else self.coef(int(t))
        return c * x[..., 0]

    def grad(self, x: torch.Tensor, t: int) -> torch.Tensor:
        return torch.full_like(x, self.coef(int(t)))

    def mean_coef(self) -> float:
        raise NotImplementedError

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(self.lower, self.upper)

    def after_step(self, model, t: int) -> None:
        with torch.no_grad():
            model.x.clamp_(self.lower, self.upper)

    def evaluate(self, model) -> dict[str, float]:
        x = float(model.x.detach()[0])
        v = self.mean_coef() * x
        return {"x": x, "loss": v, "val_loss": v, "test_loss": v, "dist_to_opt": abs(x + 1.0),
                "suboptimality": v - self.mean_coef() * -1.0}

    @property
    def optimum(self) -> float:  # type: ignore[override]
        return -self.mean_coef()


@register("reddi")
class ReddiPeriodic(OnlineLinear):
    """Section 3: ``f_t(x) = C x`` if ``t mod 3 == 1`` else ``-x``. Args: ``C`` (> 2, default 3)."""

    name = "reddi"

    def __init__(self, C: float = 3.0, dtype: str = "float32") -> None:
        if not C > 2:
            raise ValueError(f"reddi: the counterexample needs C > 2, got C={C}")
        self.C = float(C)
        super().__init__(dtype)

    def coef(self, t: int) -> float:
        return self.C if t % 3 == 1 else -1.0

    def mean_coef(self) -> float:
        return (self.C - 2.0) / 3.0


@register("reddi_fig1")
class ReddiFigure1(OnlineLinear):
    """Figure 1: ``f_t(x) = 1010 x`` if ``t mod 101 == 1`` else ``-10 x``.

    Args: ``big`` (1010), ``small`` (10), ``period`` (101); needs ``big > (period - 1) small``.
    """

    name = "reddi_fig1"

    def __init__(self, big: float = 1010.0, small: float = 10.0, period: int = 101, dtype: str = "float32") -> None:
        if not big > (period - 1) * small:
            raise ValueError(f"reddi_fig1: need big > (period-1)*small so that x* = -1; got {big}, {small}, {period}")
        self.big, self.small, self.period = float(big), float(small), int(period)
        super().__init__(dtype)

    def coef(self, t: int) -> float:
        return self.big if t % self.period == 1 else -self.small

    def mean_coef(self) -> float:
        return (self.big - (self.period - 1) * self.small) / self.period


@register("reddi_stochastic")
class ReddiStochastic(OnlineLinear):
    """Stochastic variant: ``f_t(x) = 1010 x`` with probability ``p`` = 0.01, else ``-10 x``.

    The draws are i.i.d. and fixed by ``sequence_seed`` (default 0), so ``value(x, t)`` and
    ``batches(seed)`` agree for any run seed; vary ``sequence_seed`` to resample.
    Args: ``big`` (1010), ``small`` (10), ``p`` (0.01), ``sequence_seed`` (0).
    """

    name = "reddi_stochastic"
    _chunk = 4096

    def __init__(self, big: float = 1010.0, small: float = 10.0, p: float = 0.01, sequence_seed: int = 0, dtype: str = "float32") -> None:
        if not 0 < p < 1:
            raise ValueError(f"reddi_stochastic: p must be in (0, 1), got {p}")
        if not p * big - (1 - p) * small > 0:
            raise ValueError("reddi_stochastic: need p*big > (1-p)*small so that x* = -1")
        self.big, self.small, self.p, self.sequence_seed = float(big), float(small), float(p), int(sequence_seed)
        self._draws: dict[int, np.ndarray] = {}
        super().__init__(dtype)

    def _chunk_draws(self, k: int) -> np.ndarray:
        if k not in self._draws:
            self._draws[k] = np.random.default_rng([self.sequence_seed, k]).random(self._chunk) < self.p
        return self._draws[k]

    def coef(self, t: int) -> float:
        if t < 1:
            raise ValueError(f"steps start at t = 1, got {t}")
        k, i = divmod(t - 1, self._chunk)
        return self.big if self._chunk_draws(k)[i] else -self.small

    def mean_coef(self) -> float:
        return self.p * self.big - (1 - self.p) * self.small


@dataclass
class Regret:
    """``total[T-1] = R_T`` and ``average[T-1] = R_T / T`` for every T; ``final``/``final_average`` at the end."""

    total: np.ndarray
    average: np.ndarray

    @property
    def final(self) -> float:
        return float(self.total[-1])

    @property
    def final_average(self) -> float:
        return float(self.average[-1])


def regret(problem: OnlineLinear, iterates) -> Regret:
    """Regret of the played points ``x_1, ..., x_T`` (array of shape (T,) or (T, ...), x_t played at step t).

    ``R_T = sum_{t<=T} c_t x_t - min_{x in [-1, 1]} sum_{t<=T} c_t x = sum c_t x_t + |sum c_t|``
    (the best fixed point of a linear loss on [-1, 1] is an endpoint). Extra trailing
    dimensions (a sweep of runs) are kept.
    """
    x = np.asarray(torch.as_tensor(iterates).detach().double().cpu().numpy() if isinstance(iterates, torch.Tensor) else iterates, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError("regret: need at least one iterate, shape (T,) or (T, ...)")
    T = x.shape[0]
    c = problem.coefs(T).reshape((T,) + (1,) * (x.ndim - 1))
    played = np.cumsum(c * x, axis=0)
    best = -np.abs(np.cumsum(c, axis=0))
    total = played - best
    steps = np.arange(1, T + 1, dtype=np.float64).reshape(c.shape)
    return Regret(total=total, average=total / steps)
