"""Shared helpers of the optimizer tests (a plain module: conftest names collide across folders)."""

import numpy as np
import torch


def nonconvex_grad(x: np.ndarray) -> np.ndarray:
    """Gradient of f(x) = sum_i (1-x_i)^2 + 10 (x_{i+1}-x_i^2)^2 + 0.3 sum_i sin(3 x_i) (non-convex)."""
    g = -2.0 * (1.0 - x) + 0.9 * np.cos(3.0 * x)
    r = x[1:] - x[:-1] ** 2
    g[1:] += 20.0 * r
    g[:-1] += -40.0 * x[:-1] * r
    return g


def run_precond(opt_factory, x0_groups, n_steps, grad_fn=nonconvex_grad, dtype=torch.float64):
    """Run a precond optimizer on the concatenation of groups, feeding numpy gradients."""
    params = [torch.tensor(x, dtype=dtype, requires_grad=True) for x in x0_groups]
    opt = opt_factory(params)
    sizes = [x.size for x in x0_groups]
    history = []
    for _ in range(n_steps):
        x = np.concatenate([p.detach().double().numpy() for p in params])
        g = grad_fn(x)
        for p, gi in zip(params, np.split(g, np.cumsum(sizes)[:-1])):
            p.grad = torch.tensor(gi, dtype=dtype)
        opt.step()
        history.append(np.concatenate([p.detach().double().numpy() for p in params]))
    return np.array(history), opt


def mlp(seed: int, dtype=torch.float64) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(dtype)


def mlp_data(seed: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 6, generator=g, dtype=dtype), torch.randn(32, 3, generator=g, dtype=dtype)


#: AGD option combinations checked against the references (NumPy re-statement, authors' class)
AGD_CASES = [
    dict(lr=1e-3),
    dict(lr=3e-3, betas=(0.8, 0.99), delta=1e-3),
    dict(lr=1e-3, delta=1e-1),  # mostly the SGD branch
    dict(lr=1e-3, betas=(0.0, 0.999)),  # b1 = 0: s_t = g_t - g_{t-1}
    dict(lr=1e-3, weight_decay=0.1),
    dict(lr=1e-3, weight_decay=0.1, fixed_decay=True),
    dict(lr=1e-3, weight_decay=0.1, weight_decouple=False),
    dict(lr=1e-3, amsgrad=True),
    dict(lr=1e-3, clip=0.5),
    dict(lr=1e-3, win=True, weight_decay=0.01),
    dict(lr=1e-3, win=True, weight_decay=0.01, win_z_init="zeros"),
    dict(lr=1e-3, win=True, amsgrad=True, clip=1.0, weight_decay=0.05),
]
