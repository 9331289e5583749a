"""Small float64 models and batches for the curvature tests, a short training run fed by
:class:`precond.curvature.CurvatureFeeder`, and the confidence intervals of the estimator tests.

Failure probability: each statistical test allows at most ``DELTA = 1e-6`` in all, split over its
coordinates (Bonferroni). Hutchinson's samples are bounded, so its interval is Bernstein's
(rigorous); GNB's is the normal (CLT) interval of the mean of many independent estimates, with the
sample standard deviation.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from scipy.stats import norm
from torch import nn

from precond.curvature import CurvatureFeeder
from precond.curvature.losses import loss_from_outputs


def make_mlp(k_out: int, seed: int = 0, d_in: int = 3, hidden: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, k_out)).double()


def make_batch(loss_type: str, n: int = 6, seed: int = 1, d_in: int = 3, k: int = 3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=g, dtype=torch.float64)
    if loss_type == "mse":
        y = torch.randn(n, k, generator=g, dtype=torch.float64)
        k_out = k
    elif loss_type == "logistic":
        y = torch.randint(0, 2, (n,), generator=g).double()
        k_out = 1
    else:
        y = torch.randint(0, k, (n,), generator=g)
        k_out = k
    return x, y, k_out


def problem(loss_type: str, seed: int = 0, n: int = 6):
    """(model, loss_fn, outputs_fn) for one loss type."""
    x, y, k_out = make_batch(loss_type, n=n)
    model = make_mlp(k_out, seed)

    def outputs_fn(m):
        o = m(x)
        return (o.squeeze(-1) if loss_type == "logistic" else o), y

    def loss_fn(m):
        o, t = outputs_fn(m)
        return loss_from_outputs(loss_type, o, t)

    return model, loss_fn, outputs_fn


class Run(NamedTuple):
    start: float  # the loss before the first step
    end: float  # the loss after the last
    biggest: float  # the largest one-step change of any coordinate
    feeder: CurvatureFeeder


def train(opt_factory, steps: int = 40, **feeder_kw) -> Run:
    """``steps`` steps of ``opt_factory(model.parameters())`` on the cross-entropy MLP of
    :func:`problem` (32 rows), curvature from a :class:`CurvatureFeeder` (``feeder_kw``) before each."""
    torch.manual_seed(0)
    model, loss_fn, outputs_fn = problem("cross_entropy", n=32)
    opt = opt_factory(model.parameters())
    feeder = CurvatureFeeder(opt, model, loss_type="cross_entropy", generator=torch.Generator().manual_seed(0), **feeder_kw)
    with torch.no_grad():
        start = float(loss_fn(model))
    biggest = 0.0
    for _ in range(steps):
        feeder.maybe_update(outputs_fn=outputs_fn, loss_fn=loss_fn)
        opt.zero_grad()
        loss_fn(model).backward()
        before = [p.detach().clone() for p in model.parameters()]
        opt.step()
        biggest = max(biggest, max(float((p.detach() - b).abs().max()) for p, b in zip(model.parameters(), before)))
    with torch.no_grad():
        return Run(start, float(loss_fn(model)), biggest, feeder)


DELTA = 1e-6


def bernstein_half_width(var: torch.Tensor, bound: torch.Tensor, n: int, log_term: float) -> torch.Tensor:
    """t with 2 exp(-n t^2 / (2 var + 2 bound t / 3)) = delta_i, log_term = log(2/delta_i)."""
    a = 2 * bound * log_term / 3
    return (a + torch.sqrt(a**2 + 8 * n * var * log_term)) / (2 * n)


def hutchinson_half_width(matrix: torch.Tensor, n: int) -> torch.Tensor:
    """Bernstein half-width for the mean of ``n`` Hutchinson probes of ``matrix``: one probe is
    ``A_ii + sum_{j != i} A_ij z_i z_j``, variance ``sum_{j!=i} A_ij^2``, deviation at most ``sum_{j!=i} |A_ij|``."""
    off = matrix - torch.diag(torch.diagonal(matrix))
    return bernstein_half_width(off.pow(2).sum(1), off.abs().sum(1), n, math.log(2 * matrix.shape[0] / DELTA))


def clt_half_width(samples: torch.Tensor) -> torch.Tensor:
    """Normal (CLT) half-width for the mean of the rows of ``samples`` ``(n, d)``, Bonferroni over d."""
    n, d = samples.shape
    return norm.ppf(1 - DELTA / (2 * d)) * samples.std(0) / math.sqrt(n)


def fd_jacobian(f, x, eps=1e-6):
    """Central differences of a vector function: (m, d)."""
    cols = []
    for j in range(x.numel()):
        e = torch.zeros_like(x)
        e[j] = eps
        cols.append(((f(x + e) - f(x - e)) / (2 * eps)).reshape(-1))
    return torch.stack(cols, dim=1)
