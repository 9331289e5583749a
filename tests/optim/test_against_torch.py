"""precond's optimizers that torch.optim also has: 100 steps on a small MLP, float64, rtol 1e-10."""

import copy

import pytest
import torch

from optim_testlib import mlp, mlp_data
from precond.optim.cases import PATHS, cases

#: every option set with a torch.optim twin (precond.optim.cases): two groups, the second with
#: the case's own overrides
CASES = cases(tags={"torch"})


def layers(model):
    return [list(m.parameters()) for m in model if isinstance(m, torch.nn.Linear)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("maximize", [False, True])
def test_matches_torch_optim_100_steps(case, maximize):
    kw = dict(case.kwargs, maximize=maximize)
    a = mlp(0)
    b = copy.deepcopy(a)
    x, y = mlp_data(0)
    sign = -1.0 if maximize else 1.0
    opt_a = case.cls(case.groups(*layers(a)), **kw, foreach=False, fused=False)  # the reference loop
    opt_b = case.torch_cls(case.groups(*layers(b)), **kw, foreach=False)
    for _ in range(100):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            loss = sign * torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-10, atol=1e-12)
    # the parameters really moved: the comparison is not vacuous
    assert not torch.allclose(next(a.parameters()), next(mlp(0).parameters()))
    # and the states agree too
    for (ka, sa), (kb, sb) in zip(opt_a.state_dict()["state"].items(), opt_b.state_dict()["state"].items()):
        for name, value in sb.items():
            if torch.is_tensor(value) and name in sa:
                torch.testing.assert_close(sa[name].to(value.dtype), value, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_complex_params_match_torch_optim(case):
    """Complex parameters are stepped as torch.optim steps them (real and imaginary parts as
    separate real coordinates, ``torch.view_as_real``), on every path, state included."""
    g = torch.Generator().manual_seed(0)
    x0 = [torch.randn(s, generator=g, dtype=torch.complex128) for s in [(5,), (3, 4)]]
    grads = [[torch.randn(x.shape, generator=g, dtype=torch.complex128) for x in x0] for _ in range(20)]

    def run(make):
        ps = [x.clone().requires_grad_() for x in x0]
        opt = make(case.groups(ps[:1], ps[1:]))
        for gs in grads:
            for p, gi in zip(ps, gs):
                p.grad = gi.clone()
            opt.step()
        return ps, opt

    theirs, opt_b = run(lambda groups: case.torch_cls(groups, **case.kwargs, foreach=False))
    assert (theirs[0] - x0[0]).imag.abs().max() > 1e-3  # the imaginary parts moved too
    for impl in PATHS.values():
        ours, opt_a = run(lambda groups: case.make(groups, **impl))
        for pa, pb in zip(ours, theirs):
            torch.testing.assert_close(pa, pb, rtol=1e-10, atol=1e-12)
        for pa, pb in zip(ours, theirs):
            for name, value in opt_b.state[pb].items():
                if name != "step":
                    torch.testing.assert_close(opt_a.state[pa][name], value, rtol=1e-10, atol=1e-12)
