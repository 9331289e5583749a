"""`precond train` (issue 17): batches shared over ranks, checkpoints and --resume, one process and
torchrun with 2 gloo processes (DDP, FSDP2)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from precond.cli import main as cli_main
from precond.experiments.train import latest_checkpoint, parse_hyperparameters, shard_rows, train
from precond.problems.base import Batch

#: breast_cancer_logreg with 63-row batches: 2 ranks take 32 and 31 rows (unequal shares, weighted)
PROBLEM, ARGS = "breast_cancer_logreg", {"batch_size": 63}
GN = {"lr": 0.2, "damping": 1e-2, "update_every": 3}


def test_hyperparameters_are_literals_or_strings():
    assert parse_hyperparameters(["lr=1e-3", "betas=0.9,0.99", "fused=True", "estimator=ggn"]) == {
        "lr": 1e-3, "betas": (0.9, 0.99), "fused": True, "estimator": "ggn"}
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        parse_hyperparameters(["lr"])


def test_rows_split_over_ranks_with_weights_that_restore_the_batch_mean():
    x, y = torch.randn(7, 3), torch.arange(7)
    parts = [shard_rows(Batch(x, y, 4), r, 3) for r in range(3)]
    assert [b.inputs.shape[0] for b, _ in parts] == [3, 2, 2]
    assert torch.equal(torch.cat([b.targets for b, _ in parts]), y)
    assert all(b.t == 4 for b, _ in parts)
    # mean over ranks of w_r * mean_r(v) == mean(v)
    v = torch.randn(7, dtype=torch.float64)
    means = [w * float(v[b.targets].mean()) for b, w in parts]
    assert sum(means) / 3 == pytest.approx(float(v.mean()), rel=1e-14)
    assert shard_rows(Batch(t=2), 1, 2)[1] == 1.0  # no rows: every rank takes the whole, weight 1
    with pytest.raises(ValueError, match="batch_size >= 4"):
        shard_rows(Batch(x[:3], y[:3]), 0, 4)


def test_resumed_run_equals_the_uninterrupted_one(tmp_path):
    """GaussNewtonDiag (a feeder; DCP's zero step on the fresh optimizer) stopped at step 6 and
    resumed to 12: the same losses, bit for bit, and the same checkpoint steps."""
    whole = train(PROBLEM, "gaussnewtondiag", GN, steps=12, problem_args=ARGS, checkpoint_dir=tmp_path / "a", progress=False)
    first = train(PROBLEM, "gaussnewtondiag", GN, steps=6, problem_args=ARGS, checkpoint_dir=tmp_path / "b",
                  checkpoint_every=4, progress=False)  # fmt: skip
    assert [p.name for p in sorted((tmp_path / "b").glob("step-*"))] == ["step-00000004", "step-00000006"]
    rest = train(PROBLEM, "gaussnewtondiag", GN, steps=12, problem_args=ARGS, checkpoint_dir=tmp_path / "b", resume=True, progress=False)
    assert rest["resumed_from"] == 6 and len(rest["losses"]) == 6
    assert first["losses"] + rest["losses"] == whole["losses"]
    assert whole["losses"][-1] < whole["losses"][0]
    assert latest_checkpoint(tmp_path / "b")[0] == 12
    assert rest["metrics"] == whole["metrics"]


def test_resume_refuses_other_settings(tmp_path):
    train(PROBLEM, "agd", {"lr": 1e-3}, steps=2, problem_args=ARGS, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="other settings \\(hyperparameters\\)"):
        train(PROBLEM, "agd", {"lr": 2e-3}, steps=4, problem_args=ARGS, checkpoint_dir=tmp_path, resume=True, progress=False)


def test_command_line(tmp_path, capsys):
    rc = cli_main(["train", PROBLEM, "--optimizer", "adam", "lr=1e-2", "--steps", "3", "--args", '{"batch_size": 63}',
                   "--checkpoint-dir", str(tmp_path), "--no-progress"])  # fmt: skip
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "step 3 on 1 process (single)" in out.out and "test_acc" in out.out
    assert cli_main(["train", PROBLEM, "--optimizer", "adam", "lr=-1", "--no-checkpoint", "--no-progress"]) == 2
    assert "lr" in capsys.readouterr().err


def _torchrun(*args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "precond", "train", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.mark.slow
def test_torchrun_ddp_then_fsdp_resume_equals_one_process(tmp_path):
    """2 processes under DDP to step 6 (a checkpoint), resumed by 2 FSDP2 processes to 12: the
    final loss of the uninterrupted one-process run (float32: to rounding)."""
    ref = train(PROBLEM, "gaussnewtondiag", GN, steps=12, problem_args=ARGS, checkpoint_dir=None, progress=False)
    common = ["--optimizer", "gaussnewtondiag", *(f"{k}={v}" for k, v in GN.items()), "--args", '{"batch_size": 63}',
              "--checkpoint-dir", str(tmp_path), "--no-progress"]  # fmt: skip
    out = _torchrun(PROBLEM, *common, "--steps", "6")
    assert "step 6 on 2 processes (ddp)" in out
    out = _torchrun(PROBLEM, *common, "--steps", "12", "--fsdp", "--resume")
    assert "step 12 on 2 processes (fsdp), resumed from step 6" in out
    loss = float(out.split("train loss ")[1].split(";")[0])
    assert loss == pytest.approx(ref["loss"], rel=2e-5)
    assert loss != ref["losses"][5]  # it trained on after the resume
