"""`precond bench step`: the table's rows, ratios and memory figures are what they claim to be.

No timing is asserted (speed is the benchmark's business, not a unit test's): these tests check
the bookkeeping (which rows, ratios derived consistently from the same-process medians, the
JSON), and that the peak-memory probe sees an optimizer's state.
"""

import argparse
import json

import pytest
import torch

from precond.experiments import bench_step


def _args(tmp_path, **kw):
    parser = argparse.ArgumentParser()
    bench_step.add_arguments(parser)
    argv = ["--preset", "small", "--steps", "2", "--no-memory", "--device", "cpu", "--json", str(tmp_path / "b.json")]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", v]
    return parser.parse_args(argv)


def test_rows_and_ratios(tmp_path, capsys):
    args = _args(tmp_path, optimizers="agd,amsgrad,sgd,sophia,gauss_newton,adagrad_norm", paths="loop,fused")
    assert bench_step.main(args) == 0
    out = json.loads((tmp_path / "b.json").read_text())
    rows = {(r["optimizer"], r["path"]): r for r in out["results"]}
    assert not [r for r in out["results"] if "error" in r], out["results"]
    # torch's fused twins of the chosen optimizers are timed; its foreach/loop Adam too
    for name in ("torch.Adam fused", "torch.Adam amsgrad fused", "torch.SGD fused", "torch.Adam foreach", "torch.Adam loop"):
        assert (name, "") in rows
    assert ("torch.AdamW fused", "") not in rows  # adamw was not asked for
    for name in ("agd", "amsgrad", "sgd", "sophia", "gauss_newton", "adagrad_norm"):
        assert {(name, "loop"), (name, "fused")} <= set(rows)
    assert ("agd+check", "fused") in rows and rows[("agd+check", "fused")]["nan_policy"] == "raise"
    # the baseline's own ratio is 1 up to drift between its two interleaved timings
    assert rows[("torch.Adam fused", "")]["ratio_to_torch_fused_adam"] == pytest.approx(1.0, rel=0.5)
    # same-rule ratio = ratio to fused Adam / the twin's ratio to fused Adam
    twin = rows[("torch.Adam amsgrad fused", "")]["ratio_to_torch_fused_adam"]
    for path in ("loop", "fused"):
        r = rows[("amsgrad", path)]
        assert r["torch_same_rule"] == "torch.Adam amsgrad fused"
        assert r["ratio_to_torch_same_rule"] == pytest.approx(r["ratio_to_torch_fused_adam"] / twin, rel=1e-12)
    assert "ratio_to_torch_same_rule" not in rows[("sophia", "fused")]  # torch has no Sophia
    # GB/s = floats per parameter x bytes x parameters / median time
    n = sum(torch.Size(s).numel() for s in bench_step.PRESETS["small"])
    r = rows[("agd", "fused")]
    assert r["gb_per_s"] == pytest.approx(7 * 4 * n / (r["median_ms"] / 1e3) / 1e9, rel=1e-9)
    table = capsys.readouterr().out
    assert "| x torch same rule |" in table and "(Adam amsgrad)" in table


def test_unknown_optimizer_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown optimizer"):
        bench_step.main(_args(tmp_path, optimizers="agd,lion"))


def test_peak_memory_sees_the_state():
    """The probe measures the optimizer's state (plus temporaries): in floats per parameter,
    2 for Adam, AGD and Sophia (m and v/b/h), 1 for SGD with momentum and GaussNewtonDiag
    (its curvature), about 0 for AdaGradNorm (one scalar), and the fed curvature estimate of a
    curvature optimizer is not counted."""
    shapes = [(1000, 1000)] * 4  # 4M float32 params: 16 MB per float of state
    one = 4 * 4_000_000
    cases = {("torch.Adam fused", None): 2, ("agd", "fused"): 2, ("sgd", "fused"): 1, ("sophia", "fused"): 2,
             ("gauss_newton", "fused"): 1, ("adagrad_norm", "fused"): 0}  # fmt: skip
    # (this process has run OpenMP work by now: the probe must not deadlock, see peak_step_memory)
    for (name, path), floats in cases.items():
        mem = bench_step.peak_step_memory(shapes, torch.float32, "cpu", name, path, timeout=120)
        assert isinstance(mem, int), mem
        assert abs(mem / one - floats) < 0.1, (name, path, mem / one)
