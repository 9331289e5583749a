"""Problems resolved once (issue 12): ``resolve(name, args, dtype) -> ProblemHandle``."""

import pickle
from pathlib import Path

import pytest
import torch

import precond.problems as P
from precond.problems import ProblemArgumentError, ProblemHandle, ProblemNameError, resolve
from precond.problems.analytic import Beale


def test_registered_name_args_as_given_and_build():
    h = resolve("rosenbrock", {"dim": 3}, dtype="float64")
    assert isinstance(h, ProblemHandle) and h.name == "rosenbrock" and h.factory is P.lookup("rosenbrock")
    assert dict(h.args) == {"dim": 3}  # the factory's defaults are not filled in (run keys hash what was given)
    with pytest.raises(TypeError):
        h.args["dim"] = 4  # read-only
    with pytest.raises(AttributeError):
        h.name = "beale"  # frozen
    assert h.build_args == {"dim": 3, "dtype": "float64"}
    p, q = h.build(), h.build()
    assert p is not q and p.dim == q.dim == 3 and p.dtype == q.dtype == torch.float64
    assert torch.equal(p.initial_point(1), P.get("rosenbrock", dim=3, dtype="float64").initial_point(1))


def test_dtype_goes_only_where_it_is_taken_and_not_given():
    assert resolve("quadratic", {"dtype": "float32"}, dtype="float64").build().dtype == torch.float32
    assert "dtype" not in resolve("sklearn_logreg", {"dataset": "iris"}, dtype="float64").build_args
    assert resolve("quadratic").build().dtype == torch.float32  # dtype None: the problem's own default


def test_module_class_names():
    h = resolve("precond.problems.analytic:Beale")
    assert h.factory is Beale and isinstance(h.build(), Beale) and h.kind == "analytic"
    assert P.lookup("precond.problems.analytic:Beale") is Beale


@pytest.mark.parametrize("name,message", [
    ("rosenbrok", "'rosenbrok' is not a registered problem (did you mean 'rosenbrock'?); known: basin, beale"),
    ("no_such_module_xyz:Quad", "No module named 'no_such_module_xyz'"),
    ("precond.problems.analytic:Nope", "'precond.problems.analytic:Nope': module 'precond.problems.analytic' has no attribute 'Nope'"),
    (":Quad", "Empty module name"),
])  # fmt: skip
def test_unknown_names(name, message):
    with pytest.raises(ProblemNameError) as info:
        resolve(name)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert isinstance(info.value, KeyError)


def test_bad_arguments_one_error_each():
    with pytest.raises(ProblemArgumentError) as info:
        resolve("rosenbrock", {"init_scal": 0.1, "dim": "2"})
    assert info.value.errors == [
        ("init_scal", "'init_scal' is not an argument (did you mean 'init_scale'?); allowed: dim, a, b, dtype, init_scale"),
        ("dim", "'2' (a string) is not a number"),
    ]
    assert str(info.value).startswith("problem 'rosenbrock': 'init_scal' is not an argument")
    with pytest.raises(ValueError, match="rosenbrock: dim must be >= 2, got 1"):  # the factory's own check
        resolve("rosenbrock", {"dim": 1})


@pytest.mark.parametrize("name,args,meta", [
    ("rosenbrock", {}, dict(kind="analytic", loss_type=None, flat=True, vectorizable=True, needs_data=None)),
    ("reddi", {}, dict(kind="online", flat=True, vectorizable=False)),  # after_step projects onto [-1, 1]
    ("linear_regression", {}, dict(kind="regression", loss_type="mse", flat=True, vectorizable=True)),
    ("linear_regression", {"batch_size": 8}, dict(flat=False, vectorizable=False)),  # set by the instance
    ("sklearn_logreg", {"dataset": "breast_cancer"}, dict(loss_type="logistic", test_metric="test_acc")),
    ("sklearn_logreg", {"dataset": "iris"}, dict(loss_type="cross_entropy", needs_data="scikit-learn's bundled datasets")),
    ("cifar10_resnet20", {}, dict(kind="classification", val_metric="val_acc", higher_is_better=True, flat=False)),
    ("wilson", {}, dict(val_metric="val_error", test_metric="test_error", source="seed 003; Wilson et al. 2017, sec. 3.3",
                        steps_per_epoch=1)),  # full batch: one step an epoch
])  # fmt: skip
def test_metadata(name, args, meta):
    h = resolve(name, args)
    assert {k: getattr(h, k) for k in meta} == meta
    assert h.steps_per_epoch == meta.get("steps_per_epoch")  # None: budget.epochs is refused for it


def test_metadata_of_every_registered_problem_is_its_instance_s():
    for name in P.names():
        h, p = resolve(name), P.get(name)
        projects = type(p).after_step is not P.Problem.after_step
        assert (h.kind, h.loss_type, h.source, h.flat, h.vectorizable, h.higher_is_better) == (
            p.kind, p.loss_type, p.source, p.vectorizable, p.vectorizable and not projects, p.higher_is_better), name


def test_needs_data_and_data_error(tmp_path, monkeypatch):
    monkeypatch.delenv("PRECOND_CIFAR10_DIR", raising=False)
    h = resolve("cifar10_resnet20", {"data_dir": str(tmp_path)})
    assert "PRECOND_CIFAR10_DIR" in h.needs_data
    err = h.data_error()
    assert err.startswith(f"FileNotFoundError: cifar10: {tmp_path} ") and "cifar-10-batches-py" in err and "\n" not in err
    assert resolve("rosenbrock").data_error() is None and resolve("rosenbrock").needs_data is None


@pytest.mark.parametrize("name,args", [("digits_logreg", {"batch_size": 16}), ("quadratic", {"dim": 4})])
def test_pickles_by_name(name, args):
    h = resolve(name, args, dtype="float64")
    g = pickle.loads(pickle.dumps(h))
    assert (g.name, dict(g.args), g.dtype, g.factory) == (h.name, dict(h.args), h.dtype, h.factory)
    assert all(getattr(g, k) == getattr(h, k) for k in ("kind", "loss_type", "flat", "vectorizable", "val_metric"))
    assert type(g.build()) is type(h.build())


def test_nothing_but_the_registry_reaches_into_its_table():
    src = Path(P.__file__).resolve().parents[1]
    users = sorted(str(f.relative_to(src)) for f in src.rglob("*.py") if "_REGISTRY" in f.read_text())
    assert users == ["problems/registry.py"]
