"""Batched sweeps of network problems (issue 14): C runs of a stacked model equal the one-by-one runs."""

import pytest
import torch
from torch import nn

from precond.curvature.losses import loss_from_outputs
from precond.experiments.batched_modules import chunks
from precond.experiments.runner import run_one
from precond.experiments.spec import parse_spec
from precond.experiments.store import Store
from precond.experiments.sweep import describe_plan, plan, run_sweep
from precond.experiments.vectorized import group_key, nonfinite_rows, run_group
from precond.optim import available
from precond.problems import Batch, resolve
from precond.problems.mnist1d import MNIST1DCNN
from precond.problems.models import MLP, CNN1d
from precond.problems.regression import LinearModel
from precond.problems.sklearn_data import SklearnMLP
from precond.problems.stacked import RowLayout, StackedProblem, check_stateless, has_form, loss_rows, split_rows, stacked_forward


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as the sweep's workers (two threads on two busy cores wait on each other)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _float64(base: type) -> type:
    """``base`` with float64 data and model: the loop and the batched runs then agree to float64 rounding."""

    class Double(base):
        def _load(self):
            return {k: (X.double(), y if y.dtype == torch.long else y.double()) for k, (X, y) in super()._load().items()}

        def make_model(self):
            return super().make_model().double()

    return Double


Digits64 = _float64(SklearnMLP)
CNN64 = _float64(MNIST1DCNN)


class _Scaled(nn.Module):
    """A model with no batched form (stacked by vmap): ``2 * tanh(x W^T)``."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(d_out, d_in, dtype=torch.float64) / d_in**0.5)

    def forward(self, x):
        return 2 * torch.tanh(x.flatten(1) @ self.w.T)


class DigitsOwnModel(Digits64):
    def make_model(self):
        return _Scaled(self.n_features, self.d_out)


BATCHABLE = sorted(name for name, cls in available().items() if cls.batchable)


def _spec(problem: str, args: str, opts: str, *, seeds="[0, 1]", steps=12, eval_every=5, bound="1e10") -> str:
    return f"""
name = "b"
seeds = {seeds}
[problem]
name = "{problem}"
args = {args}
[budget]
steps = {steps}
eval_every = {eval_every}
divergence_bound = {bound}
{opts}"""


def _opts(names, lrs="[0.003, 0.03]") -> str:
    return "".join(f'[[optimizers]]\nname = "{n}"\n[optimizers.hyperparameters]\nlr = {lrs}\n' for n in names)


def _approx(x, rtol):
    return pytest.approx(x, rel=rtol, abs=1e-12, nan_ok=True)


def _assert_equal_records(runs, rtol=1e-8):
    """Every group of ``runs`` batched gives each run's one-by-one record (statuses, steps, every value)."""
    groups = {}
    for c in runs:
        groups.setdefault(group_key(c), []).append(c)
    statuses = []
    for g in groups.values():
        for c, v in zip(g, run_group(g)):
            loop = run_one(c)
            assert v["mode"] == f"stacked[{len(g)}]" and loop["mode"] == "loop"
            assert (v["status"], v["diverged_step"]) == (loop["status"], loop["diverged_step"]), (c.label, c.hyperparameters, c.seed)
            assert set(v["history"]) == set(loop["history"]) and set(v["final_metrics"]) == set(loop["final_metrics"])
            # one entry per evaluation (AGD's adaptive_fraction starts after the first step; diagnostics have their own steps)
            per_eval = [k for k in loop["history"] if not k.startswith("diag.") and k not in ("trajectory", "adaptive_fraction")]
            assert {k: len(loop["history"][k]) for k in per_eval} == dict.fromkeys(per_eval, len(loop["history"]["step"]))
            for k in loop["history"]:
                assert v["history"][k] == _approx(loop["history"][k], rtol), (c.label, c.hyperparameters, c.seed, k)
            for k in loop["final_metrics"]:
                assert v["final_metrics"][k] == _approx(loop["final_metrics"][k], rtol), (c.label, c.hyperparameters, c.seed, k)
            statuses.append(v["status"])
    return statuses


@pytest.mark.parametrize("problem,args", [
    ("test_exp_batched:Digits64", "{hidden = [8]}"),
    ("test_exp_batched:CNN64", "{channels = [4, 4], batch_size = 16}"),
    ("linear_regression", "{batch_size = 8, noise_std = 0.1}"),
    ("wilson", "{}"),
    ("logistic_regression", "{batch_size = 16, l2 = 0.01}"),  # a loss of its own: the problem's loss under vmap
    ("test_exp_batched:DigitsOwnModel", "{}"),  # a model with no batched form: functional_call under vmap
])  # fmt: skip
def test_stacked_equals_loop_for_every_batchable_optimizer(problem, args):
    exp = parse_spec(_spec(problem, args, _opts(BATCHABLE)))
    assert exp.problem.stackable and not exp.problem.vectorizable
    statuses = _assert_equal_records(exp.runs())
    assert len(statuses) == 4 * len(BATCHABLE) and set(statuses) == {"done"}


@pytest.mark.parametrize("problem,args,fast", [
    ("test_exp_batched:Digits64", {"hidden": [8]}, True),  # batched products and loss rows
    ("staircase", {"hidden": [8]}, True),  # its forward squeezes the model's output: a reshape
    ("test_exp_batched:DigitsOwnModel", {}, True),  # the model under vmap, the loss rows batched
    ("logistic_regression", {"batch_size": 16, "l2": 0.01}, False),  # a loss of its own: under vmap
])  # fmt: skip
def test_stacked_paths(problem, args, fast):
    p = resolve(problem, args).build()
    assert StackedProblem(p, p.model(0), next(p.batches(0))).fast == fast


def test_diverged_rows_are_masked():
    # lr = 1e4 blows the MLP's loss past the bound at some step; the other rows of its batch are untouched
    exp = parse_spec(_spec("test_exp_batched:Digits64", "{hidden = [8]}", _opts(["SGD", "Adam"], "[0.01, 1e4]"),
                           steps=20, bound="1e3"))  # fmt: skip
    statuses = _assert_equal_records(exp.runs())
    assert statuses.count("diverged") >= 2 and statuses.count("done") >= 4


def test_nonfinite_rows_over_stacked_tensors():
    """A row is non-finite when an entry of any of its tensors is; a row whose sum overflows but whose
    entries are all finite is not."""
    a, b = torch.zeros(4, 3), torch.zeros(4, 5)
    a[1, 2], b[3, 0] = float("nan"), float("-inf")
    b[2] = 3e38  # row 2 sums to inf in float32
    assert nonfinite_rows([a, b]).tolist() == [False, True, False, True]


@pytest.mark.parametrize("loss_type,out_shape,tgt", [
    ("mse", (7,), "float"), ("mse", (7, 3), "float"), ("logistic", (7,), "binary"),
    ("cross_entropy", (7, 4), "class"), ("cross_entropy", (2, 7, 4), "class"),
])  # fmt: skip
def test_loss_rows_is_loss_from_outputs_of_each_row(loss_type, out_shape, tgt):
    g = torch.Generator().manual_seed(0)
    C = 3
    out = torch.randn(C, *out_shape, generator=g, dtype=torch.float64)
    if tgt == "float":
        y = torch.randn(C, *out_shape, generator=g, dtype=torch.float64)
    elif tgt == "binary":
        y = torch.randint(0, 2, (C, *out_shape), generator=g).double()
    else:
        y = torch.randint(0, out_shape[-1], (C, *out_shape[:-1]), generator=g)
    rows = loss_rows(loss_type, out, y)
    want = torch.stack([loss_from_outputs(loss_type, out[i], y[i]) for i in range(C)])
    assert rows.shape == (C,) and torch.allclose(rows, want, rtol=1e-14, atol=0)


@pytest.mark.parametrize("make,x_shape", [
    (lambda: MLP(6, (5, 4), 3, "tanh"), (9, 6)),
    (lambda: CNN1d(12, 3, (4, 5), 3), (9, 12)),
    # string paddings ("same" with an even total: one more on the right), dilation, no bias
    (lambda: nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.Tanh(), nn.Conv1d(4, 3, 4, padding="same", dilation=2),
                           nn.Conv1d(3, 2, 3, stride=2, padding="valid", bias=False)), (9, 2, 12)),
    (lambda: nn.Sequential(nn.Conv1d(2, 4, 3, groups=2), nn.ReLU()), (9, 2, 12)),  # groups of its own: inputs copied per run
    (lambda: LinearModel(torch.randn(6)), (9, 6)),
    (lambda: _Scaled(6, 3), (9, 6)),
])  # fmt: skip
def test_stacked_forward_is_each_model_on_its_inputs(make, x_shape):
    torch.manual_seed(0)
    models = [make().double() for _ in range(4)]
    X = torch.stack([nn.utils.parameters_to_vector(m.parameters()) for m in models]).detach()
    x = torch.randn(4, *x_shape, dtype=torch.float64)
    out = stacked_forward(models[0])(split_rows(models[0], X), x)
    with torch.no_grad():
        want = torch.stack([m(x[i]) for i, m in enumerate(models)])
    assert out.shape == want.shape and torch.allclose(out, want, rtol=1e-12, atol=1e-14)
    assert has_form(models[0]) == (not isinstance(models[0], _Scaled))  # _Scaled: functional_call under vmap
    # one (C, n_k) tensor per parameter, and inputs shared by groups of runs: (S, ...) for S = 2 and 1
    layout = RowLayout(models[0])
    for S in (2, 1):
        xs = x[:S].clone()
        out = stacked_forward(models[0])(layout(layout.stack(models)), xs)
        with torch.no_grad():
            want = torch.stack([m(xs[i // (4 // S)]) for i, m in enumerate(models)])
        assert out.shape == want.shape and torch.allclose(out, want, rtol=1e-12, atol=1e-14), S
    with pytest.raises(ValueError, match="3 groups cannot be shared by 4 runs"):
        stacked_forward(models[0])(layout(layout.stack(models)), torch.randn(3, *x_shape, dtype=torch.float64))


@pytest.mark.parametrize("make,x_shape", [
    (lambda: MLP(64, (64,), 10), (32, 64)),
    (lambda: CNN1d(40, 10, (8, 6), 5), (16, 40)),
])  # fmt: skip
@pytest.mark.parametrize("S", [6, 2, 1])
def test_float32_stacked_models_and_their_gradients_are_the_models(make, x_shape, S):
    # float32: the products go to oneDNN where it is available (optim/kernels/matmul.py), the
    # convolutions to grouped channels-last ones; each row and each row's gradient against its model
    torch.manual_seed(1)
    models = [make() for _ in range(6)]
    layout = RowLayout(models[0])
    P = [p.requires_grad_(True) for p in layout.stack(models)]
    x = torch.randn(S, *x_shape)
    out = stacked_forward(models[0])(layout(P), x)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    for i, m in enumerate(models):
        y = m(x[i // (6 // S)])
        assert torch.allclose(out[i], y, rtol=1e-5, atol=1e-5 * float(y.detach().abs().max())), i
        (y * w[i]).sum().backward()
        for k, p in enumerate(q for q in m.parameters() if q.requires_grad):
            g = P[k].grad[i].reshape(p.shape)
            assert torch.allclose(g, p.grad, rtol=1e-4, atol=1e-5 * float(p.grad.abs().max())), (i, k)


@pytest.mark.parametrize("model,what", [
    (nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), "buffers"),
    (nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.1)), "Dropout"),
    (nn.LSTM(3, 3), "LSTM"),
])  # fmt: skip
def test_stateful_models_are_refused(model, what):
    with pytest.raises(ValueError, match=f"{what}.*only stateless models can be stacked"):
        check_stateless(model, "toy")


def test_which_problems_stack():
    stack = {n: resolve(n).stackable for n in ("digits_mlp", "breast_cancer_mlp", "sparse_parity", "staircase",
                                                "logistic_regression", "linear_regression", "wilson", "rosenbrock")}  # fmt: skip
    assert stack == {**{n: True for n in stack}, "rosenbrock": False}  # rosenbrock: flat, batched as (C, d) points
    assert not resolve("reddi").stackable  # projected after every step


def test_plan_batches_network_runs():
    opts = _opts(["Adam", "AdaGradNorm"]) + _opts(["SGD"], "[0.01]")
    exp = parse_spec(_spec("digits_mlp", "{hidden = [8]}", opts, seeds="[0, 1, 2]"))
    tasks = plan(exp.runs(), "auto", exp.problem)
    batched = [t for t in tasks if t.vectorized]
    assert sorted(len(t.configs) for t in batched) == [3, 6]  # Adam: 2 lrs x 3 seeds; SGD: 1 x 3
    assert sum(not t.vectorized for t in tasks) == 6  # AdaGradNorm's norm is not elementwise: one by one
    assert describe_plan(tasks) == "15 runs: 9 batched (stacked models) in 2 tasks, 6 one by one"
    assert not any(t.vectorized for t in plan(exp.runs(), "never", exp.problem))
    # one group, two workers: two tasks, so that both run at once
    assert [len(t.configs) for t in plan(exp.runs()[:6], "auto", exp.problem, workers=2)] == [3, 3]
    with_diag = parse_spec(_spec("digits_mlp", "{hidden = [8]}", _opts(["Adam"])).replace('name = "b"', 'name = "b"\ndiagnostics = ["gradient_noise"]'))
    assert not any(t.vectorized for t in plan(with_diag.runs(), "auto", with_diag.problem))


def test_plan_stacks_fewer_rows_of_costly_steps(monkeypatch):
    import precond.experiments.batched_modules as bm

    exp = parse_spec(_spec("digits_mlp", "{hidden = [8]}", _opts(["Adam"], "[0.001, 0.002, 0.003, 0.004, 0.005]"), seeds="[0, 1, 2, 3]"))
    flops = bm.step_flops(exp.problem)  # 2 x 3 x 64 samples x (64 x 8 + 8 x 10) multiply-adds, less the input's gradient
    assert flops == 2 * 64 * (64 * 8 + 8 * 10) * 2 + 2 * 64 * 8 * 10
    assert [len(t.configs) for t in plan(exp.runs(), "auto", exp.problem)] == [20]
    monkeypatch.setattr(bm, "STACK_FLOPS", 6 * flops)  # 6 rows a task at most: 20 runs in 4 tasks of 5
    assert [len(t.configs) for t in plan(exp.runs(), "auto", exp.problem)] == [5, 5, 5, 5]
    monkeypatch.setattr(bm, "STACK_FLOPS", flops)  # one row a task: not worth stacking, unless asked
    assert not any(t.vectorized for t in plan(exp.runs(), "auto", exp.problem))
    assert all(t.vectorized for t in plan(exp.runs(), "always", exp.problem))


@pytest.mark.parametrize("n,groups,workers,rows", [(35, 1, 1, 35), (35, 1, 2, 18), (100, 1, 1, 50), (35, 4, 2, 35), (200, 1, 1, 50)])
def test_chunks(n, groups, workers, rows):
    assert chunks(n, groups, workers) == rows


def test_sweep_batches_and_says_so(tmp_path, capsys):
    from precond.cli import main as cli

    path = tmp_path / "s.toml"
    path.write_text(_spec("test_exp_batched:Digits64", "{hidden = [8]}", _opts(["Adam", "SGD"])))
    assert cli(["run", str(path), "--check", "--workers", "1"]) == 0
    assert "8 runs: 8 batched (stacked models) in 2 tasks, 0 one by one" in capsys.readouterr().out
    assert cli(["run", str(path), "--store", str(tmp_path / "a.sqlite"), "--workers", "1", "--no-progress"]) == 0
    assert "8 runs: 8 batched (stacked models) in 2 tasks" in capsys.readouterr().out
    exp = parse_spec(path.read_text())
    exp.spec.vectorize = "never"
    res = run_sweep(exp, tmp_path / "b.sqlite", progress=False)
    assert res.batched == 0 and res.ran == 8
    with Store(tmp_path / "a.sqlite") as a, Store(tmp_path / "b.sqlite") as b:
        ra, rb = {r["key"]: r for r in a.runs()}, {r["key"]: r for r in b.runs()}
    assert set(ra) == set(rb) and {r["mode"] for r in ra.values()} == {"stacked[4]"}
    for k in ra:
        assert ra[k]["final_metrics"] == _approx(rb[k]["final_metrics"], 1e-8)


def test_bench_sweep_measures_networks(capsys):
    from precond.cli import main as cli

    code = cli(["bench", "sweep", "--problem", "test_exp_batched:Digits64", "--args", '{"hidden": [8]}', "--steps", "20",
                "--configs", "2,4", "--seeds", "2", "--sample", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "(stacked models), 20 steps each" in out and "load average" in out
    rows = [ln.split() for ln in out.splitlines() if ln.split() and ln.split()[0] in ("2", "4")]
    assert [r[0] for r in rows] == ["2", "4"] and all(r[3].endswith("x") and float(r[3][:-1]) > 0 for r in rows)
    diff = float(out.rsplit("first loss): ", 1)[1].split()[0])
    assert diff < 1e-10  # float64: the same runs
    assert "20 steps each, 1 thread;" in out


def test_bench_sweep_threads(capsys):
    import torch

    from precond.cli import main as cli

    before = torch.get_num_threads()
    args = ["bench", "sweep", "--problem", "test_exp_batched:Digits64", "--args", '{"hidden": [8]}', "--steps", "5",
            "--configs", "2", "--seeds", "2", "--sample", "1"]  # fmt: skip
    assert cli(args + ["--threads", "0"]) == 2 and "--threads must be >= 1, got 0" in capsys.readouterr().out
    try:
        assert cli(args + ["--threads", "2"]) == 0
        assert "5 steps each, 2 threads;" in capsys.readouterr().out and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_an_evaluated_train_loss_is_kept_apart_from_the_batch_loss():
    """A classification problem's evaluate() returns its own train_loss (the whole training split):
    it is kept as train_set_loss, and train_loss stays the step's batch loss, one entry per step
    (both were appended to one list, two entries per step)."""
    (c,) = parse_spec(_spec("test_exp_batched:Digits64", "{hidden = [8]}", _opts(["SGD"], "[0.01]"), seeds="[0]")).runs()
    rec = run_one(c)
    h = rec["history"]
    assert h["step"] == [0, 5, 10, 12] and len(h["train_loss"]) == 4 and len(h["train_set_loss"]) == 4
    p = c.resolve_problem().build()
    model = p.model(0)
    assert h["train_set_loss"][0] == pytest.approx(p.evaluate(model)["train_loss"], rel=1e-12)
    with torch.no_grad():
        assert h["train_loss"][0] == pytest.approx(float(p.loss(model, next(p.batches(0)))), rel=1e-12)
    assert h["train_loss"][0] != pytest.approx(h["train_set_loss"][0], rel=1e-6)  # a batch is not the split
    assert rec["final_metrics"]["train_set_loss"] == h["train_set_loss"][-1]
