"""One definition each (issue 12): the losses are the curvature layer's, one dtype map, one data finder."""

import re

import pytest
import torch

import precond.problems as P
from precond.curvature import losses
from precond.problems import cifar10, ptb, shakespeare
from precond.problems._data import find_data_dir


def test_losses_are_the_curvature_layer_s():
    assert P.LOSS_TYPES is losses.LOSS_TYPES
    g = torch.Generator().manual_seed(0)
    o = torch.randn(6, 3, generator=g, dtype=torch.float64)
    targets = {"mse": torch.randn(6, 3, generator=g, dtype=torch.float64), "logistic": (o > 0).double(),
               "cross_entropy": torch.tensor([0, 2, 1, 1, 0, 2])}  # fmt: skip
    p = P.Problem()
    for kind, y in targets.items():
        p.loss_type = kind
        assert p.loss_from_outputs(o, y).item() == losses.loss_from_outputs(kind, o, y).item()
    p.loss_type = "mse"
    with pytest.raises(ValueError, match=r"differ in shape \(they would broadcast\)"):
        p.loss_from_outputs(o[:, :1], targets["mse"][:, 0])
    p.loss_type = None
    with pytest.raises(NotImplementedError, match="must implement loss_from_outputs or loss"):
        p.loss_from_outputs(o, None)


def test_one_dtype_map():
    assert P.DTYPES == {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
    assert P.as_dtype("float64", "x") is torch.float64 and P.as_dtype(torch.float32, "x") is torch.float32
    for bad in ("bfloat16", "float16", torch.bfloat16, None, [1]):
        with pytest.raises(ValueError, match=r"^quadratic: dtype must be 'float32' or 'float64', got "):
            P.get("quadratic", dtype=bad)


HOW = "fetch them from example.org"


def _dir(path, *files):
    path.mkdir(parents=True, exist_ok=True)
    for f in files:
        (path / f).write_text("x")
    return path


def test_data_finder_lookup_order(tmp_path, monkeypatch):
    arg, env, d1, d2, fb = (_dir(tmp_path / n, "a.txt") for n in ("arg", "env", "d1", "d2", "fb"))
    (d1 / "a.txt").unlink()
    defaults = [(d1, "first default"), (d2, "second default")]
    find = lambda data_dir=None: find_data_dir("toy", data_dir, "TOY_DIR", ["a.txt"], HOW, defaults=defaults, fallback=(fb, "fallback"))  # noqa: E731
    monkeypatch.setenv("TOY_DIR", str(env))
    assert (find(arg).path, find(arg).how) == (arg, "data_dir argument")
    assert (find().path, find().how) == (env, "$TOY_DIR")
    monkeypatch.setenv("TOY_DIR", "")  # empty counts as unset
    assert (find().path, find().how) == (d2, "second default")  # d1 lacks the file
    defaults.pop()
    assert (find().path, find().how) == (fb, "fallback")
    monkeypatch.delenv("TOY_DIR")
    with pytest.raises(FileNotFoundError) as info:
        find_data_dir("toy", None, "TOY_DIR", ["a.txt"], HOW)
    assert str(info.value) == f"toy: no data directory given (argument data_dir or env var TOY_DIR); {HOW}"


def test_data_finder_errors_and_subfolder(tmp_path, monkeypatch):
    d = _dir(tmp_path / "d", "a.txt")
    with pytest.raises(FileNotFoundError) as info:  # a given directory is never skipped for a default
        find_data_dir("toy", d, "TOY_DIR", ["a.txt", "b.txt", "c.txt"], HOW, fallback=(tmp_path, "fallback"))
    assert str(info.value) == f"toy: {d} (from the data_dir argument) lacks b.txt, c.txt; {HOW}"
    monkeypatch.setenv("TOY_DIR", str(d))
    with pytest.raises(FileNotFoundError, match=r"^toy: .*/d \(from the \$TOY_DIR\) lacks sub/\{b.txt\}; fetch"):
        find_data_dir("toy", None, "TOY_DIR", ["b.txt"], HOW, inside="sub")
    _dir(d / "sub", "b.txt")
    assert find_data_dir("toy", None, "TOY_DIR", ["b.txt"], HOW, inside="sub").path == d / "sub"
    assert find_data_dir("toy", None, "TOY_DIR", ["a.txt"], HOW, inside="sub").path == d  # or the folder itself


def test_every_dataset_uses_the_one_format(tmp_path, monkeypatch):
    for mod in (cifar10, ptb, shakespeare):
        monkeypatch.delenv(mod.ENV, raising=False)
    empty = _dir(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=rf"^cifar10: {re.escape(str(empty))} \(from the data_dir argument\) lacks cifar-10-batches-py/\{{data_batch_1, "):
        cifar10.find_cifar10(empty)
    with pytest.raises(FileNotFoundError, match=rf"^ptb: {re.escape(str(empty))} \(from the data_dir argument\) lacks ptb.train.txt, ptb.valid.txt, ptb.test.txt; "):
        ptb.find_ptb(empty)
    monkeypatch.setenv(shakespeare.ENV, str(empty))
    with pytest.raises(FileNotFoundError, match=rf"^shakespeare: {re.escape(str(empty))} \(from the \$PRECOND_SHAKESPEARE_DIR\) lacks SHA256SUMS; point it at"):
        shakespeare.find_corpus()
    for find, env in ((cifar10.find_cifar10, "PRECOND_CIFAR10_DIR"), (ptb.find_ptb, "PRECOND_PTB_DIR")):
        with pytest.raises(FileNotFoundError, match=rf"no data directory given \(argument data_dir or env var {env}\); download"):
            find(None)


def test_describe_entries_declared_per_class(tmp_path):
    base = ["name", "kind", "size", "source"]
    assert list(P.get("quadratic").describe()) == base + ["optimum", "condition_number", "basis"]
    assert P.get("quadratic", condition_number=10.0).describe()["condition_number"] == pytest.approx(10.0, rel=1e-12)
    assert P.get("rosenbrock").describe() == {"name": "rosenbrock", "kind": "analytic", "size": 2, "optimum": 0.0,
                                             "source": "classic (Rosenbrock 1960); seed 003's ravine in its hardest form"}
    assert P.get("linear_regression", basis="random").describe()["covariance"] == "spectrum/random"
    assert P.get("sklearn_logreg", dataset="wine").describe()["dataset"] == "wine"
    assert P.get("shakespeare_lstm").describe()["data"].startswith(P.get("shakespeare_lstm").data_source)
    assert list(P.get("wilson").describe()) == base


def test_cifar10_takes_no_device_argument():
    with pytest.raises(P.ProblemArgumentError, match=r"'device' is not an argument; allowed: data_dir, batch_size, n_val, augment$"):
        P.resolve("cifar10_resnet20", {"device": "cuda"})
