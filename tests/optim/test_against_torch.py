"""precond's optimizers that torch.optim also has: 100 steps on a small MLP, float64, rtol 1e-10."""

import copy

import pytest
import torch

import precond.optim as po
from optim_testlib import mlp, mlp_data

# (precond class, torch class, kwargs for group 0, kwargs for group 1)
CASES = [
    (po.SGD, torch.optim.SGD, dict(lr=0.05), dict(lr=0.01, weight_decay=0.1)),
    (po.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9), dict(lr=0.02, momentum=0.5, dampening=0.3)),
    (po.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True), dict(lr=0.01, momentum=0.8, nesterov=True, weight_decay=1e-2)),
    (po.AdaGrad, torch.optim.Adagrad, dict(lr=0.05), dict(lr=0.1, lr_decay=0.01, weight_decay=0.01)),
    # torch.optim.Adagrad reads initial_accumulator_value from its constructor only (a group's own
    # value is ignored), so this case passes it to the constructor of both.
    (po.AdaGrad, torch.optim.Adagrad, dict(lr=0.05, eps=0.0), dict(lr=0.02, eps=1e-3), dict(initial_accumulator_value=0.1)),
    (po.RMSProp, torch.optim.RMSprop, dict(lr=1e-3), dict(lr=1e-2, alpha=0.9, weight_decay=0.1)),
    (po.RMSProp, torch.optim.RMSprop, dict(lr=1e-3, centered=True, momentum=0.9), dict(lr=1e-3, momentum=0.5, eps=1e-4)),
    (po.Adam, torch.optim.Adam, dict(lr=1e-2), dict(lr=3e-3, betas=(0.8, 0.99), weight_decay=0.1)),
    (po.Adam, torch.optim.Adam, dict(lr=1e-2, amsgrad=True), dict(lr=1e-3, amsgrad=True, eps=1e-4)),
    (po.AdamW, torch.optim.AdamW, dict(lr=1e-2), dict(lr=3e-3, weight_decay=0.3)),
    (po.AdamW, torch.optim.AdamW, dict(lr=1e-2, amsgrad=True, weight_decay=0.1), dict(lr=1e-3, amsgrad=True)),
    (po.Adam, torch.optim.Adam, dict(lr=1e-2, decoupled_weight_decay=True, weight_decay=0.05), dict(lr=1e-3, decoupled_weight_decay=True, weight_decay=0.2)),
]


def two_groups(model, kw0, kw1):
    layers = [m for m in model if isinstance(m, torch.nn.Linear)]
    return [dict(params=list(layers[0].parameters()), **kw0), dict(params=list(layers[1].parameters()), **kw1)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0].__name__}-{c[2]}")
@pytest.mark.parametrize("maximize", [False, True])
def test_matches_torch_optim_100_steps(case, maximize):
    ours, theirs, kw0, kw1, *ctor = case
    ctor = ctor[0] if ctor else {}
    a = mlp(0)
    b = copy.deepcopy(a)
    x, y = mlp_data(0)
    sign = -1.0 if maximize else 1.0
    opt_a = ours(two_groups(a, kw0, kw1), maximize=maximize, foreach=False, fused=False, **ctor)  # the reference loop
    opt_b = theirs(two_groups(b, kw0, kw1), maximize=maximize, foreach=False, **ctor)
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
