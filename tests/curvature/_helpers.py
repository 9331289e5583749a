"""Small float64 models and batches for the curvature tests."""

from __future__ import annotations

import torch
from torch import nn

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
