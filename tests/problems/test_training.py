"""Every network problem trains 20 steps with torch.optim.Adam and its loss really falls."""

import pytest
import torch

import precond.problems as P

# name -> (constructor kwargs, Adam lr); defaults unless the data must be built in a tmp dir
CASES = {
    "digits_logreg": ({}, 1e-2),
    "digits_mlp": ({}, 3e-3),
    "breast_cancer_logreg": ({}, 1e-2),
    "breast_cancer_mlp": ({}, 3e-3),
    "sklearn_mlp": ({"dataset": "wine"}, 1e-2),
    "logistic_regression": ({}, 3e-2),
    "linear_regression": ({"batch_size": 8}, 3e-2),
    "wilson": ({}, 1e-2),
    "sparse_parity": ({}, 3e-2),
    "staircase": ({}, 3e-3),
    "mnist1d_mlp": ({}, 3e-3),
    "mnist1d_cnn": ({}, 1e-2),
    "shakespeare_lstm": ({"eval_tokens": 2048}, 1e-2),
    "shakespeare_gpt": ({"eval_tokens": 2048}, 3e-3),
}


def _fixed_loss(p, m, batch):
    with torch.no_grad():
        return float(p.loss(m, batch))


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_falls_in_20_adam_steps(name):
    kw, lr = CASES[name]
    p = P.get(name, **kw)
    m = p.model(0)
    opt = torch.optim.Adam(m.parameters(), lr=lr)
    it = p.batches(0)
    probe = next(it)
    before = p.evaluate(m)
    l0 = _fixed_loss(p, m, probe)
    for _ in range(20):
        b = next(it)
        opt.zero_grad()
        loss = p.loss(m, b)
        assert torch.isfinite(loss)
        loss.backward()
        opt.step()
        p.after_step(m, b.t)
    l1 = _fixed_loss(p, m, probe)
    after = p.evaluate(m)
    assert l1 < 0.9 * l0, (l0, l1)
    key = "train_loss" if "train_loss" in after else "val_loss"
    assert after[key] < 0.95 * before[key], (before[key], after[key])
    assert p.val_metric in after and p.test_metric in after


def test_seeded_models_and_batches_are_reproducible():
    p = P.get("mnist1d_mlp")
    a, b = p.model(1), p.model(1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(p.model(2).net[0].weight, a.net[0].weight)
    s = torch.random.get_rng_state()
    p.model(5)
    assert torch.equal(s, torch.random.get_rng_state())  # the global RNG is left alone
    b1, b2 = next(p.batches(3)), next(p.batches(3))
    assert torch.equal(b1.inputs, b2.inputs) and torch.equal(b1.targets, b2.targets)


@pytest.mark.parametrize("name", ["ptb_lstm", pytest.param("cifar10_resnet20", marks=pytest.mark.slow)])
def test_cifar_and_ptb_train_on_tiny_files(tmp_path, name):
    from ._data_files import _cifar, _ptb

    if name == "cifar10_resnet20":
        kw, lr = {"data_dir": str(_cifar(tmp_path, n=8)), "batch_size": 8, "augment": False, "n_val": 8}, 3e-3
    else:
        kw, lr = {"data_dir": str(_ptb(tmp_path)), "embed": 32, "hidden": 32, "seq_len": 8, "batch_size": 8}, 1e-2
    p = P.get(name, **kw)
    m = p.model(0)
    opt = torch.optim.Adam(m.parameters(), lr=lr)
    it = p.batches(0)
    probe = next(it)
    m.eval()
    l0 = _fixed_loss(p, m, probe)
    m.train()
    for _ in range(20):
        b = next(it)
        opt.zero_grad()
        p.loss(m, b).backward()
        opt.step()
    m.eval()
    assert _fixed_loss(p, m, probe) < 0.9 * l0, name
