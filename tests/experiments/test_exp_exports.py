"""Parquet export and TensorBoard logging hold exactly what the results store holds.

Both need optional packages (pyarrow, tensorboard), installed by ``make test`` (the ``test``
extra); without them the commands fail with an "install X" message, tested here too.
"""

import builtins
import csv
import math
import subprocess
import sys

import pytest

from precond.experiments.spec import parse_spec
from precond.experiments.store import Store
from precond.experiments.sweep import run_sweep

SPEC = """
name = "ex"
seeds = [0, 1]
[problem]
name = "exp_toys:Rosen"
[budget]
steps = 40
eval_every = 10
[[optimizers]]
name = "AGD"
[optimizers.hyperparameters]
lr = [0.003, 0.03]
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("exports")
    path = d / "s.sqlite"
    run_sweep(parse_spec(SPEC), path, workers=1, progress=False)
    return path


def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12)
    return str(a) == str(b)


def test_parquet_equals_csv(store, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    with Store(store) as st:
        assert st.export_parquet(tmp_path / "runs.parquet", "ex") == 4
        assert st.export_csv(tmp_path / "runs.csv", "ex") == 4
    table = pq.read_table(tmp_path / "runs.parquet").to_pylist()
    with open(tmp_path / "runs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["key"] for r in table] == [r["key"] for r in rows]
    for t, c in zip(table, rows):
        assert set(t) == set(c)
        for k in c:
            assert _same(t[k], c[k]) if t[k] is not None else c[k] == "", (k, t[k], c[k])
    assert {r["hp.lr"] for r in table} == {0.003, 0.03}
    assert all(isinstance(r["final.train_loss"], float) for r in table)


def test_tensorboard_holds_each_history(store, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from precond.experiments.tensorboard import TensorBoardLogger

    logger = TensorBoardLogger(str(tmp_path / "tb"))
    with Store(store) as st:
        runs = list(st.runs("ex"))
        configs = {c.key: c for c in parse_spec(SPEC).runs()}
        for r in runs:
            logger.log_run(configs[r["key"]], r)
    logger.close()
    for r in runs:
        cfg = configs[r["key"]]
        acc = EventAccumulator(str(tmp_path / "tb" / "ex" / cfg.label / f"lr={cfg.hyperparameters['lr']},seed={cfg.seed}"))
        acc.Reload()
        events = acc.Scalars("train_loss")
        assert [e.step for e in events] == r["history"]["step"]
        assert [e.value for e in events] == pytest.approx(r["history"]["train_loss"], rel=1e-6)  # stored as float32


def test_cli_run_writes_both(tmp_path):
    pytest.importorskip("pyarrow")
    pytest.importorskip("tensorboard")
    spec = tmp_path / "ex.toml"
    spec.write_text(SPEC.replace('"exp_toys:Rosen"', '"rosenbrock"'))
    out = subprocess.run(
        [sys.executable, "-m", "precond", "run", str(spec), "--store", str(tmp_path / "s.sqlite"), "--workers", "1",
         "--no-progress", "--export", str(tmp_path / "runs.parquet"), "--tensorboard", str(tmp_path / "tb")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "runs.parquet").stat().st_size > 0
    assert len(list((tmp_path / "tb" / "ex").rglob("events.out.tfevents.*"))) == 4


def test_missing_packages_name_the_fix(store, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_optional(name, *a, **kw):
        if name.split(".")[0] in ("pyarrow", "tensorboard") or name == "torch.utils.tensorboard":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_optional)
    with Store(store) as st, pytest.raises(RuntimeError, match="pip install pyarrow"):
        st.export_parquet(tmp_path / "x.parquet")
    from precond.experiments.tensorboard import TensorBoardLogger

    with pytest.raises(ImportError, match="pip install"):
        TensorBoardLogger(str(tmp_path / "tb"))
