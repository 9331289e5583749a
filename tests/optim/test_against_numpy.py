"""AGD, AdaBound, AdaGradNorm, EMA-momentum SGD and eps-inside Adam against plain float64 NumPy
re-statements of their papers (tests/optim/reference_numpy.py), 200 steps on a non-convex function."""

import io

import numpy as np
import pytest
import torch

import precond.optim as po
from optim_testlib import nonconvex_grad, run_precond
from precond.optim.cases import cases
from reference_numpy import AdaBoundRef, AdaGradNormRef, AdamNotesRef, AGDRef, EMAMomentumRef

STEPS = 200
RTOL, ATOL = 1e-10, 1e-12


def run_ref(refs, x0_groups, n_steps):
    xs = [x.copy() for x in x0_groups]
    sizes = [x.size for x in x0_groups]
    history = []
    for _ in range(n_steps):
        g = nonconvex_grad(np.concatenate(xs))
        gs = np.split(g, np.cumsum(sizes)[:-1])
        xs = [ref.step(x, gi) for ref, x, gi in zip(refs, xs, gs)]
        history.append(np.concatenate(xs))
    return np.array(history)


@pytest.mark.parametrize("case", cases(cls=po.AGD, exclude={"maximize"}), ids=lambda c: c.name)
def test_agd_matches_paper_algorithm(case, rng):
    kw = case.kwargs
    x0 = [rng.normal(size=5), rng.normal(size=4)]
    kw1 = dict(kw, lr=kw["lr"] * 2)  # a second group with other hyperparameters
    hist, opt = run_precond(lambda ps: po.AGD([dict(params=[ps[0]], **kw), dict(params=[ps[1]], **kw1)]), x0, STEPS)
    ref = run_ref([AGDRef(**kw), AGDRef(**kw1)], x0, STEPS)
    np.testing.assert_allclose(hist, ref, rtol=RTOL, atol=ATOL)
    assert np.abs(hist[-1] - np.concatenate(x0)).max() > 1e-3  # the run really moved


@pytest.mark.parametrize("case", cases(cls=po.AdaBound, exclude={"maximize"}), ids=lambda c: c.name)
def test_adabound_matches_paper_algorithm(case, rng):
    kw = case.kwargs
    x0 = [rng.normal(size=6)]
    hist, _ = run_precond(lambda ps: po.AdaBound(ps, **kw), x0, STEPS)
    np.testing.assert_allclose(hist, run_ref([AdaBoundRef(**kw)], x0, STEPS), rtol=RTOL, atol=ATOL)


@pytest.mark.filterwarnings("ignore:This overload of add is deprecated:UserWarning")
def test_adabound_matches_authors_package(rng):
    adabound = pytest.importorskip("adabound")
    x0 = rng.normal(size=7)
    for kw in (dict(lr=1e-2, weight_decay=1e-3), dict(lr=1e-2, amsbound=True, final_lr=0.05)):
        p1 = torch.tensor(x0, requires_grad=True)
        p2 = torch.tensor(x0, requires_grad=True)
        ours = po.AdaBound([p1], **kw)
        theirs = (adabound.AdaBound if not kw.get("amsbound") else adabound.AdaBound)([p2], **kw)
        sched_a = torch.optim.lr_scheduler.StepLR(ours, 50, 0.5)
        sched_b = torch.optim.lr_scheduler.StepLR(theirs, 50, 0.5)
        for _ in range(STEPS):
            for p, opt, s in ((p1, ours, sched_a), (p2, theirs, sched_b)):
                p.grad = torch.tensor(nonconvex_grad(p.detach().numpy()))
                opt.step()
                s.step()
        torch.testing.assert_close(p1, p2, rtol=RTOL, atol=ATOL)


@pytest.mark.filterwarnings("ignore:This overload of add is deprecated:UserWarning")
@pytest.mark.parametrize("amsbound", [False, True])
def test_adabound_loads_a_checkpoint_of_the_authors_package(amsbound, rng):
    """A state dict written by the authors' ``adabound.AdaBound`` (no ``base_lr`` in its groups,
    an integer step) loads into precond's AdaBound, which then continues like theirs: their
    ``base_lr`` is the lr the loading optimizer was built with, and so is precond's."""
    adabound = pytest.importorskip("adabound")
    kw = dict(lr=1e-2, final_lr=0.05, gamma=1e-2, amsbound=amsbound, weight_decay=1e-3)
    x0 = rng.normal(size=7)
    p = torch.tensor(x0, requires_grad=True)
    theirs = adabound.AdaBound([p], **kw)
    for _ in range(30):
        p.grad = torch.tensor(nonconvex_grad(p.detach().numpy()))
        theirs.step()
    buf = io.BytesIO()
    torch.save(theirs.state_dict(), buf)
    buf.seek(0)
    q = p.detach().clone().requires_grad_()
    ours = po.AdaBound([q], **kw)
    ours.load_state_dict(torch.load(buf, weights_only=True))
    assert ours.param_groups[0]["base_lr"] == kw["lr"] and float(ours.state[q]["step"]) == 30.0
    for _ in range(STEPS):
        for x, opt in ((p, theirs), (q, ours)):
            x.grad = torch.tensor(nonconvex_grad(x.detach().numpy()))
            opt.step()
    assert (p - torch.tensor(x0)).abs().max() > 1e-2  # the run really moved
    torch.testing.assert_close(q, p, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("scope", ["group", "global"])
def test_adagrad_norm_matches_ward_wu_bottou(scope, rng):
    x0 = [rng.normal(size=5), rng.normal(size=3)]
    hist, opt = run_precond(lambda ps: po.AdaGradNorm([dict(params=[ps[0]]), dict(params=[ps[1]], lr=0.05)], lr=0.1, initial_accumulator_value=0.5, scope=scope), x0, STEPS)
    # reference: one accumulator for both groups (global) or one per group
    xs = [x.copy() for x in x0]
    if scope == "global":
        ref = AdaGradNormRef(lr=1.0, b0_sq=0.5)
    else:
        refs = [AdaGradNormRef(lr=0.1, b0_sq=0.5), AdaGradNormRef(lr=0.05, b0_sq=0.5)]
    out = []
    for _ in range(STEPS):
        g = np.split(nonconvex_grad(np.concatenate(xs)), [5])
        if scope == "global":
            ref.b_sq += sum(float(np.sum(gi * gi)) for gi in g)
            b = np.sqrt(ref.b_sq) + 1e-10
            xs = [xs[0] - 0.1 * g[0] / b, xs[1] - 0.05 * g[1] / b]
        else:
            xs = [r.step([x], [gi])[0] for r, x, gi in zip(refs, xs, g)]
        out.append(np.concatenate(xs))
    np.testing.assert_allclose(hist, np.array(out), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("nesterov", [False, True])
def test_ema_momentum_sgd_matches_notes(nesterov, rng):
    x0 = [rng.normal(size=6)]
    hist, _ = run_precond(lambda ps: po.SGD(ps, lr=5e-3, momentum=0.9, nesterov=nesterov, momentum_style="ema"), x0, STEPS)
    np.testing.assert_allclose(hist, run_ref([EMAMomentumRef(5e-3, 0.9, nesterov)], x0, STEPS), rtol=RTOL, atol=ATOL)


def test_adam_eps_inside_sqrt_matches_notes(rng):
    x0 = [rng.normal(size=6)]
    kw = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-3)  # a large eps makes the placement matter
    hist, _ = run_precond(lambda ps: po.Adam(ps, eps_inside_sqrt=True, **kw), x0, STEPS)
    np.testing.assert_allclose(hist, run_ref([AdamNotesRef(**kw)], x0, STEPS), rtol=RTOL, atol=ATOL)
    outside, _ = run_precond(lambda ps: po.Adam(ps, **kw), x0, STEPS)
    assert np.abs(outside - hist).max() > 1e-6  # the option changes the algorithm


def test_agd_gradient_difference_identity_on_quadratic(rng):
    """b1 = 0: s_t = g_t - g_{t-1} = H (w_t - w_{t-1}) on a quadratic (references.md)."""
    d = 6
    a = rng.normal(size=(d, d))
    h = a @ a.T + np.eye(d)
    w = torch.tensor(rng.normal(size=d), requires_grad=True)
    opt = po.AGD([w], lr=1e-2, betas=(0.0, 0.999))
    prev_w = prev_b = None
    for t in range(1, 30):
        w.grad = torch.tensor(h @ w.detach().numpy())
        b_before = opt.state[w]["exp_avg_sq"].clone() if opt.state[w] else torch.zeros(d, dtype=torch.float64)
        cur_w = w.detach().numpy().copy()
        opt.step()
        if t >= 2:
            s_sq = (opt.state[w]["exp_avg_sq"] - 0.999 * b_before) / (1 - 0.999)
            expected = h @ (cur_w - prev_w)
            np.testing.assert_allclose(s_sq.numpy(), expected**2, rtol=1e-8, atol=1e-14)
        prev_w = cur_w
