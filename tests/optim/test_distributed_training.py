"""precond's optimizers under DDP and FSDP2 (2 gloo processes on CPU) against one process on the
whole batch, and torch.distributed.checkpoint across world sizes (issue 17).

One module fixture runs everything once (dist_testlib.all_results, about 20 s): every case of
dist_testlib.CASES for 20 float64 steps on one process, under DDP and under FSDP2 (and of
FOREACH_CASES, every other optimizer and the foreach paths, under FSDP2; of HSDP_CASES on a 2-D
mesh, replicated over the 2 ranks: AdaGradNorm's norm must not be summed over that dimension)
(fully_shard per layer and at the root; uneven shards: the last layer has 3 rows on 2 ranks),
checkpoints at step 10 resumed on the other world size, and a NaN put in one rank's shard.
"""

from __future__ import annotations

import pytest
import torch

import dist_testlib as L
from precond.optim import GaussNewtonDiag
from precond.optim.distributed import agree_any, fraction_summary, local, shard_sum, shard_sums

pytestmark = [
    pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable"),
    pytest.mark.filterwarnings("ignore:torch.distributed is disabled"),  # DCP on one process says it assumes one
    pytest.mark.filterwarnings("ignore:AGD.step skipped:RuntimeWarning"),  # the NaN-skip run, on purpose
]

RTOL, ATOL = 1e-12, 1e-13


@pytest.fixture(scope="module")
def results():
    return L.all_results()


def assert_params_equal(got, want, what):
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape, f"{what}: parameter {i}"
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL, msg=lambda m: f"{what}, parameter {i}: {m}")


@pytest.mark.parametrize(("case", "mode"), [(c, m) for c in L.CASES for m in ("ddp", "fsdp")] + [(c, "fsdp") for c in L.FOREACH_CASES]
                         + [(c, "hsdp") for c in L.HSDP_CASES])  # fmt: skip
def test_two_processes_equal_one_process_on_the_whole_batch(results, case, mode):
    ref = results["single"][case]
    for rank, res in enumerate(results["ranks"]):
        got = res[f"{case}/{mode}"]
        assert_params_equal(got["params"], ref["params"], f"{case} {mode} rank {rank}")
        assert got["losses"] == pytest.approx(ref["losses"], rel=1e-12)
    # the runs really train (a test of nothing would pass too)
    assert ref["losses"][-1] < ref["losses"][0]
    moved = max(float((a - b).abs().max()) for a, b in zip(ref["params"], [p.detach() for p in L.make_model().parameters()]))
    assert moved > 1e-2


@pytest.mark.parametrize("case", ["agd_loop", "agd_fused", "sophia"])
def test_diagnostics_are_global_under_fsdp(results, case):
    """adaptive_fraction / win_rate: the fractions of whole parameters, not of a rank's shard
    (also on the 2-D mesh)."""
    ref = results["single"][case]["diagnostics"]
    for res in results["ranks"]:
        for mode in ("fsdp", "hsdp") if case in L.HSDP_CASES else ("fsdp",):
            got = res[f"{case}/{mode}"]["diagnostics"]
            assert got["overall"] == pytest.approx(ref["overall"], abs=1e-15), mode
            assert got["params"] == ref["params"], mode
    assert 0.0 < ref["overall"] < 1.0  # strictly between: a rank's own counts would differ


def test_nan_skip_is_decided_alike_on_every_rank(results):
    """A NaN in rank 1's shard only: both ranks skip that step, as one process does."""
    ref = results["single"]["skip"]
    assert ref["skipped"] == 1
    for rank, res in enumerate(results["ranks"]):
        got = res["skip/fsdp"]
        assert got["skipped"] == 1, f"rank {rank}"
        assert_params_equal(got["params"], ref["params"], f"skip rank {rank}")


@pytest.mark.parametrize("case", L.CHECKPOINTED)
def test_checkpoint_of_two_processes_resumes_on_one(results, case):
    """Saved by 2 FSDP2 ranks at step 10 (sharded state), loaded by 1 process: the same run."""
    assert_params_equal(results["resumed"][case]["params"], results["single"][case]["params"], f"{case} 2 -> 1")
    assert results["resumed"][case]["losses"] == pytest.approx(results["single"][case]["losses"][L.CUT:], rel=1e-12)


@pytest.mark.parametrize("case", L.CHECKPOINTED)
def test_checkpoint_of_one_process_resumes_on_two(results, case):
    """Saved by 1 process at step 10, loaded by 2 FSDP2 ranks (each takes its shards)."""
    for rank, res in enumerate(results["ranks"]):
        assert_params_equal(res[f"{case}/resumed"]["params"], results["single"][case]["params"], f"{case} 1 -> 2 rank {rank}")


def test_helpers_leave_plain_tensors_alone():
    """One process, plain tensors: no communication, values as given."""
    t = torch.arange(6.0).reshape(2, 3)
    assert local(t) is t
    vals = [torch.tensor(2.0, dtype=torch.float64), torch.tensor([1.0, 3.0], dtype=torch.float64)]
    assert shard_sums([t, t], vals) == vals
    assert float(shard_sum([t, t], [vals[0], torch.tensor(5.0)])) == 7.0
    assert agree_any(True, [t]) is True and agree_any(False, [t]) is False
    summary = fraction_summary([[(t, 2, 6), None], [(t, 1, 4)]])
    assert summary == {"overall": 0.3, "groups": [2 / 6, 0.25], "params": [[2 / 6, None], [0.25]]}


def test_gauss_newton_lr_zero_step_before_curvature_creates_state():
    """What torch.distributed.checkpoint does to a fresh optimizer: zero gradients, lr = 0."""
    p = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
    before = p.detach().clone()
    opt = GaussNewtonDiag([p], lr=0.0, momentum=0.9)
    p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.equal(p.detach(), before)
    assert set(opt.state[p]) == {"step", "exp_avg", "curvature", "curvature_step"}
    opt = GaussNewtonDiag([p], lr=0.5)
    with pytest.raises(RuntimeError, match="before any curvature"):
        opt.step()
