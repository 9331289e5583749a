"""Every dataset loads offline with the documented shapes; loaders validate what they read."""

import hashlib
import pickle
import socket

import numpy as np
import pytest
import torch

import precond.problems as P
from precond.problems import cifar10, mnist1d, ptb, shakespeare

from ._data_files import _cifar, _ptb


@pytest.mark.parametrize("name,shape", [("digits", (1797, 64, 10)), ("breast_cancer", (569, 30, 2)), ("iris", (150, 4, 3)), ("wine", (178, 13, 3))])
def test_sklearn_shapes(name, shape):
    p = P.get("sklearn_logreg", dataset=name)
    n, d, c = shape
    sizes = [len(p.data[s][0]) for s in ("train", "val", "test")]
    assert sum(sizes) == n and all(p.data[s][0].shape[1] == d for s in p.data)
    Xtr = p.data["train"][0]
    torch.testing.assert_close(Xtr.mean(0), torch.zeros(d), atol=1e-5, rtol=0)
    assert p.size == (d + 1) * (1 if c == 2 else c)
    assert p.loss_type == ("logistic" if c == 2 else "cross_entropy")


def test_sklearn_logreg_hessian():
    p = P.get("breast_cancer_logreg")
    m = p.model(0)
    H = p.hessian(m)
    assert H.shape == (31, 31)
    X = p.data["train"][0].double()
    Xb = torch.cat([X, torch.ones(len(X), 1, dtype=torch.float64)], 1)
    s = torch.sigmoid(Xb @ torch.cat([m.weight.detach().double().flatten(), m.bias.detach().double()]))
    torch.testing.assert_close(H, (Xb.T * (s * (1 - s))) @ Xb / len(X))


def test_mnist1d_generates_offline(monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(mnist1d, "_CACHE", {})
    state = np.random.get_state()[1].copy()
    d = mnist1d.load_mnist1d()
    assert np.array_equal(np.random.get_state()[1], state)  # global RNG untouched
    assert d["x"].shape == (4000, 40) and d["x_test"].shape == (1000, 40)
    assert set(np.unique(d["y"])) == set(range(10))
    p = P.get("mnist1d_cnn")
    assert [tuple(p.data[s][0].shape) for s in ("train", "val", "test")] == [(3500, 40), (500, 40), (1000, 40)]
    assert p.data["train"][1].dtype == torch.long


# ---- Shakespeare ------------------------------------------------------------------------------

def _corpus(tmp_path, text=b"To be, or not to be, that is the question.\n" * 40):
    (tmp_path / "hamlet_gut.txt").write_bytes(text)
    (tmp_path / "SHA256SUMS").write_text(f"{hashlib.sha256(text).hexdigest()}  hamlet_gut.txt\n")
    return tmp_path


def test_shakespeare_lookup_order(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    d = _corpus(tmp_path / "a")
    p = P.get("shakespeare_lstm", data_dir=str(d), seq_len=16)
    assert "data_dir argument" in p.data_source
    toks = p.tokens
    assert sum(len(t) for t in toks.values()) == 43 * 40 and toks["train"].dtype == torch.long
    monkeypatch.setenv(shakespeare.ENV, str(d))
    assert "PRECOND_SHAKESPEARE_DIR" in P.get("shakespeare_gpt").data_source
    monkeypatch.setenv(shakespeare.ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="SHA256SUMS"):
        P.get("shakespeare_lstm")
    monkeypatch.delenv(shakespeare.ENV)
    # the shared corpus beside the repository, else the bundled excerpt
    monkeypatch.setattr(shakespeare, "repo_root", lambda: tmp_path / "nowhere" / "repo")
    p = P.get("shakespeare_lstm")
    assert "bundled" in p.data_source
    text, how = shakespeare.load_text(None)
    assert 150_000 < len(text) < 300_000 and "bundled" in how


def test_shakespeare_shared_corpus_if_present():
    d, how, sums = shakespeare.find_corpus(None)
    if "shared" not in how:
        pytest.skip("no shared/data/shakespeare beside this checkout")
    p = P.get("shakespeare_lstm", plays=["macbeth", "tempest"])
    assert len(shakespeare.read_sums(sums)) == 42
    n = sum(len(t) for t in p.tokens.values())
    assert n == 103427 + 98439 + 1  # two files joined by a newline


def test_shakespeare_checksum_failure(tmp_path):
    d = _corpus(tmp_path)
    (d / "hamlet_gut.txt").write_bytes(b"tampered text " * 100)
    with pytest.raises(shakespeare.ChecksumError, match="checksum mismatch for .*hamlet_gut.txt"):
        P.get("shakespeare_lstm", data_dir=str(d)).tokens
    (d / "SHA256SUMS").write_text("garbage\n")
    with pytest.raises(ValueError, match="sha256"):
        shakespeare.load_text(d)


# ---- CIFAR-10 and PTB on tiny files in the standard formats -----------------------------------

def test_cifar10_tiny_files(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar10, "_CACHE", {})
    d = _cifar(tmp_path)
    p = P.get("cifar10_resnet20", data_dir=str(d), batch_size=4, n_val=6)
    assert p.data["train"][0].shape == (24, 3, 32, 32) and p.data["val"][0].shape == (6, 3, 32, 32)
    assert p.data["test"][0].shape == (6, 3, 32, 32) and p.data["test"][1].dtype == torch.long
    b = next(p.batches(0))
    assert b.inputs.shape == (4, 3, 32, 32)
    m = p.model(0)
    loss = p.loss(m, b)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(p.evaluate(m)) == {"val_loss", "val_acc", "test_loss", "test_acc"}
    assert p.size == sum(q.numel() for q in m.parameters()) == 269722
    assert P.get("cifar10_resnet32").size == 464154


def test_cifar10_missing_and_bad(tmp_path, monkeypatch):
    monkeypatch.delenv(cifar10.ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"cifar-10-python\.tar\.gz.*PRECOND_CIFAR10_DIR"):
        P.get("cifar10_resnet20").data
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        P.get("cifar10_resnet20", data_dir=str(tmp_path)).data
    d = _cifar(tmp_path / "bad", bad="data_batch_3")
    with pytest.raises(ValueError, match="data_batch_3: data must be uint8"):
        cifar10.load_cifar10(d)


def test_ptb_tiny_files(tmp_path, monkeypatch):
    d = _ptb(tmp_path)
    monkeypatch.setenv(ptb.ENV, str(d))
    p = P.get("ptb_lstm", seq_len=8, batch_size=4, embed=16, hidden=16)
    toks, vocab = ptb.load_ptb(d)
    assert vocab == sorted(["<eos>", "<unk>", "a", "cat", "dog", "mat", "on", "sat", "the"])
    assert len(toks["train"]) == 20 * (6 + 5 + 3 + 3) and p.vocab_size == 9
    assert p.size == sum(q.numel() for q in p.model(0).parameters())
    ev = p.evaluate(p.model(0))
    assert ev["val_ppl"] == pytest.approx(np.exp(ev["val_loss"]))


def test_ptb_missing_and_bad(tmp_path, monkeypatch):
    monkeypatch.delenv(ptb.ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"simple-examples\.tgz.*PRECOND_PTB_DIR"):
        P.get("ptb_lstm").tokens
    with pytest.raises(FileNotFoundError, match="ptb.train.txt"):
        P.get("ptb_lstm", data_dir=str(tmp_path)).tokens
    d = _ptb(tmp_path, extra="\nzebra unseen")
    with pytest.raises(ValueError, match="not in the training vocabulary"):
        ptb.load_ptb(d)
