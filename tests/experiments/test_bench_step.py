"""`precond bench step`: the table's rows, ratios and memory figures are what they claim to be.

No timing is asserted (speed is the benchmark's business, not a unit test's): these tests check
the bookkeeping (which rows, ratios derived consistently from the same-process medians, the
JSON), and that the peak-memory probe sees an optimizer's state.
"""

import argparse
import json
import math
import statistics

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
    # 2 steps in 2 rounds; each ratio is the median of its round ratios, whose spread it reports
    for r in out["results"]:
        assert len(r["round_ratios"]) == 2 and r["ratio_to_torch_fused_adam"] == pytest.approx(statistics.median(r["round_ratios"]))
        assert r["noisy"] == (r["noise"] != "") and r["baseline_ms"] > 0
    assert out["header"]["rounds"] == 2
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


def _rounds_of(ms_per_round, k=3):
    """Per-round step times (seconds): ``k`` identical steps of each round's ms."""
    return [[ms / 1e3] * k for ms in ms_per_round]


def test_round_stats_of_a_quiet_machine():
    base = [10.0, 10.2, 9.9, 10.1, 10.0]
    st = bench_step.round_stats(_rounds_of([2 * b for b in base]), _rounds_of(base))
    assert st.ratio == pytest.approx(2.0) and st.ratio_spread == pytest.approx(0.0, abs=1e-12)
    assert st.baseline_s == pytest.approx(0.010) and st.median_s == pytest.approx(0.020)
    assert not st.noisy and st.reason == ""


def test_round_stats_drift_cancels_and_one_bad_round_is_outvoted():
    # the machine slows down by 40% over the row: both slow down together, the ratio stays 3
    base = [10.0, 11.0, 12.0, 13.0, 14.0]
    st = bench_step.round_stats(_rounds_of([3 * b for b in base]), _rounds_of(base))
    assert st.ratio == pytest.approx(3.0) and st.ratio_spread == pytest.approx(0.0, abs=1e-12)
    assert st.baseline_spread == pytest.approx((13 - 11) / 12) and not st.noisy
    # one round disturbed (the candidate took 10x): the median of the ratios ignores it
    st = bench_step.round_stats(_rounds_of([20.0, 20.0, 200.0, 20.0, 20.0]), _rounds_of([10.0] * 5))
    assert st.ratio == pytest.approx(2.0) and not st.noisy


def test_round_stats_flags_noise():
    # round ratios 0.13 .. 30: the spread of the ratios is far above 10%
    st = bench_step.round_stats(_rounds_of([1.3, 10.0, 20.0, 80.0, 300.0]), _rounds_of([10.0] * 5))
    assert st.noisy and "round ratios spread" in st.reason
    q1, q3 = 1.0, 8.0  # quartiles of the ratios 0.13, 1, 2, 8, 30 (linear interpolation)
    assert st.ratio == pytest.approx(2.0) and st.ratio_spread == pytest.approx((q3 - q1) / 2.0)
    # just above and below the threshold
    ok = bench_step.round_stats(_rounds_of([10.0, 10.0, 10.4, 10.8, 10.8]), _rounds_of([10.0] * 5), threshold=0.10)
    bad = bench_step.round_stats(_rounds_of([10.0, 10.0, 10.6, 11.2, 11.2]), _rounds_of([10.0] * 5), threshold=0.10)
    assert ok.ratio_spread == pytest.approx(0.08 / 1.04) and not ok.noisy
    assert bad.ratio_spread == pytest.approx(0.12 / 1.06) and bad.noisy
    # the baseline itself jumps between rounds by far more than 25%: noisy even if the ratio looks stable
    base = [5.0, 10.0, 20.0, 40.0, 80.0]
    st = bench_step.round_stats(_rounds_of([2 * b for b in base]), _rounds_of(base))
    assert st.ratio_spread == pytest.approx(0.0, abs=1e-12) and st.noisy and "baseline rounds spread" in st.reason
    # one round: no spread to judge
    st = bench_step.round_stats(_rounds_of([20.0]), _rounds_of([10.0]))
    assert st.ratio == pytest.approx(2.0) and math.isnan(st.ratio_spread) and not st.noisy
    with pytest.raises(ValueError, match="same number"):
        bench_step.round_stats(_rounds_of([1.0, 2.0]), _rounds_of([1.0]))


def test_steps_split_into_rounds():
    assert bench_step._rounds(15, 5) == [3, 3, 3, 3, 3]
    assert bench_step._rounds(7, 3) == [3, 2, 2]
    assert bench_step._rounds(2, 5) == [1, 1]


def test_table_shows_the_baseline_and_warns_about_noise():
    header = {"params": 1e6, "tensors": 2, "preset": "small", "dtype": "float32", "device": "cpu", "threads": 2,
              "torch": "x", "steps": 15, "rounds": 5, "noise_threshold": 0.1, "baseline_noise_threshold": 0.25}  # fmt: skip
    row = {"path": "", "nan_policy": "-", "median_ms": 5.0, "baseline_ms": 38.5, "gb_per_s": 1.0, "first_step_ms": 1.0,
           "ratio_spread": 0.8, "noisy": True, "noise": "round ratios spread 80% > 10%"}  # fmt: skip
    rows = [dict(row, optimizer="torch.Adam foreach", ratio_to_torch_fused_adam=0.13),
            dict(row, optimizer="torch.Adam fused", ratio_to_torch_fused_adam=1.0, ratio_spread=0.02, noisy=False, noise="")]
    text = bench_step.format_table(header, rows, 0.1, True)
    assert "| baseline ms |" in text and "| 38.5 |" in text and "15 steps in 5 rounds" in text
    assert "| 0.13 noisy | 80% |" in text and "| 1.00 | 2% |" in text
    assert "warning: 1 of 2 rows are noisy" in text and "against itself" not in text
    assert "warning" not in bench_step.format_table(header, rows[1:], 0.1, True)
    # the control row (the baseline against itself) off 1 by more than the threshold: the whole run is suspect
    control = dict(rows[1], ratio_to_torch_fused_adam=1.12)
    (warning,) = bench_step.noise_warnings(header, [control])
    assert "against itself (torch.Adam fused) measured x1.12" in warning
    assert bench_step.noise_warnings(header, [dict(control, ratio_to_torch_fused_adam=0.92)]) == []
