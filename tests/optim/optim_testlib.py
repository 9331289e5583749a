"""Shared helpers of the optimizer tests (a plain module: conftest names collide across folders,
and no test module imports another). The option sets come from :mod:`precond.optim.cases`."""

import numpy as np
import torch

from precond.optim import GaussNewtonDiag
from precond.optim.cases import PATHS

IMPLS = PATHS


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


# ---- deterministic steps on synthetic gradients (and curvature) ---------------------------------
STEPS = 50
# shapes: 0-dim, odd sizes; BIG is above the kernels' parallel grain (2^15 elements)
SHAPES = [(), (7,), (37, 5), (3, 4, 5), (30, 12)]
BIG = (300, 120)
GRAD_SCALES = [1.0, 0.3, 1.0, 1e-6, 0.05, 0.5]  # 1e-6: below AGD's delta, the SGD branch
EVERY = 3  # curvature every 3 steps


def make_params(dtype: torch.dtype, seed: int = 0, shapes=SHAPES) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64).to(dtype).requires_grad_() for s in shapes]


def curvature(shape, g: torch.Generator, negative: bool) -> torch.Tensor:
    """Log-uniform positive entries over [e^-4, e^4]; with ``negative``, about 1 in 5 negated."""
    c = torch.exp(torch.rand(shape, generator=g, dtype=torch.float64) * 8.0 - 4.0)
    if negative:
        c = torch.where(torch.rand(shape, generator=g, dtype=torch.float64) < 0.2, -c, c)
    return c


def feed(opt, k: int, g: torch.Generator) -> None:
    """For a curvature optimizer, every EVERY steps, one curvature estimate per parameter (all
    groups, in order; GaussNewtonDiag's with negative entries); the second parameter gets every
    other one only (``None``), so curvature counts differ. Other optimizers: nothing (and no
    draw from ``g``)."""
    if not hasattr(opt, "update_curvature") or k % EVERY != 0:
        return
    ps = [p for group in opt.param_groups for p in group["params"]]
    est = [curvature(p.shape, g, isinstance(opt, GaussNewtonDiag)) for p in ps]
    if len(est) > 1 and (k // EVERY) % 2 == 1:
        est[1] = None
    opt.update_curvature(est)


def run(cls, kw, params, steps=STEPS, seed=1, opt=None, start=0, after_step=None, **impl):
    """``steps`` steps on deterministic gradients and curvature (step ``start + k`` draws the
    same ones); ``cls(params, **kw, **impl)`` unless ``opt`` is given."""
    opt = opt if opt is not None else cls(params, **kw, **impl)
    for k in range(start, start + steps):
        g = torch.Generator().manual_seed(seed * 100003 + k)
        feed(opt, k, g)
        for p, scale in zip(params, GRAD_SCALES):
            p.grad = (torch.randn(p.shape, generator=g, dtype=torch.float64) * scale).to(p.dtype)
        opt.step()
        if after_step is not None:
            after_step(opt)
    return opt


# ---- comparisons -----------------------------------------------------------------------------
def assert_close_scaled(actual, expected, rtol, what=""):
    scale = expected.double().abs().max().item() if expected.numel() else 0.0
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol, atol=rtol * max(scale, 1e-30), msg=lambda m: f"{what}: {m}")


def two_mixed_groups() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Two groups of params, float32 and float64 mixed within each; the last of each is the one
    the two-group tests leave without a gradient."""
    g = torch.Generator().manual_seed(5)
    a = [torch.randn(s, generator=g, dtype=torch.float64).to(dt).requires_grad_() for s, dt in
         [((40, 3), torch.float32), ((9,), torch.float64), ((4,), torch.float32)]]  # fmt: skip
    b = [torch.randn(s, generator=g, dtype=torch.float64).to(dt).requires_grad_() for s, dt in
         [((6, 6), torch.float64), ((50,), torch.float32), ((3,), torch.float64)]]  # fmt: skip
    return a, b


def two_group_optimizer(case, impl: str):
    """``case``'s optimizer over :func:`two_mixed_groups` (the second group with the case's
    second-group options) on path ``impl``; returns ``(opt, a, b)``."""
    a, b = two_mixed_groups()
    return case.make(case.groups(a, b), **IMPLS[impl]), a, b


def assert_bf16_paths_close_to_loop(cls, kw):
    """bfloat16 params: foreach and fused keep every state tensor in bfloat16 (the scalar
    counters and accumulators excepted) and end within 8 bf16 ulps of each tensor's scale of
    the loop, with at least 90% of the elements equal (see test_bfloat16_close_to_loop)."""
    ref_params = make_params(torch.bfloat16)
    run(cls, kw, ref_params, **IMPLS["loop"])
    for impl in ("foreach", "fused"):
        params = make_params(torch.bfloat16)
        opt = run(cls, kw, params, **IMPLS[impl])
        equal = total = 0
        for p, q in zip(params, ref_params):
            assert p.dtype == torch.bfloat16
            for name, value in opt.state[p].items():
                if name not in ("step", "sum", "curvature_step"):
                    assert value.dtype == torch.bfloat16, (impl, name)
            assert_close_scaled(p.detach(), q.detach(), 8 * 2.0**-8, impl)
            equal += int((p == q).sum())
            total += p.numel()
        assert equal >= 0.9 * total, f"{impl}: only {equal}/{total} elements equal to the loop's"


def assert_opts_close(opt, ref, params, ref_params, rtol):
    for i, (p, q) in enumerate(zip(params, ref_params)):
        assert_close_scaled(p.detach(), q.detach(), rtol, f"param {i}")
        s, r = opt.state[p], ref.state[q]
        assert set(s) == set(r)
        for name in r:
            if name == "step":
                assert float(s["step"]) == float(r["step"])
            else:
                assert_close_scaled(s[name], r[name], rtol, f"state {name} of param {i}")
