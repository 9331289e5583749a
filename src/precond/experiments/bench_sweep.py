"""Benchmark: a batched sweep against the plain one-run-at-a-time loop, in one process.

Runs ``C`` configurations (learning rates x seeds) of one optimizer on a problem whose runs can
be batched (vectorized points, or a stacked network: :func:`.vectorized.can_batch`) for
``--steps`` steps as one batch, times a sample of the same configurations run one by one
(:func:`.runner.run_one`), and prints for each ``C`` of ``--configs``: the batched time, the
loop's (extrapolated from the sample's time per run, timed just before and just after that
batched run: the two bracket it, so a load that drifts during the benchmark moves both), their
ratio in wall-clock and in CPU time (the process's own: the fairer one on a machine shared with
other jobs; with ``--rounds R``, the median of R such pairs, each round's wall-clock ratio
listed after the row), and the peak
tensor memory of the batched run against one run's times ``C`` (:func:`tensor_peak_mb`, on
short runs). It checks that both give the same final training loss on the sample.

    precond bench sweep                                     # 1000 Adam runs on rosenbrock
    precond bench sweep --problem digits_mlp                # 35 runs (7 lrs x 5 seeds), 1000 steps
    precond bench sweep --problem mnist1d_cnn --configs 5,10,35,70 --sample 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import time
from dataclasses import replace
from typing import Any

import torch

#: steps of the runs whose memory is measured (the profiler records every op: full runs would be slow;
#: a run holds the same tensors at every step)
MEMORY_STEPS = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problem", default="rosenbrock", help="a problem whose runs can be batched (default rosenbrock)")
    parser.add_argument("--args", default="{}", metavar="JSON", help='the problem\'s arguments, e.g. \'{"hidden": [32]}\'')
    parser.add_argument("--optimizer", default="Adam", help="an elementwise optimizer (default Adam)")
    parser.add_argument("--configs", default=None, metavar="C[,C...]",
                        help="configurations = lrs x seeds, or a list of counts (one table row each); default 1000, 35 for networks")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per lr (default 5)")
    parser.add_argument("--steps", type=int, default=1000, help="steps per run (default 1000)")
    parser.add_argument("--sample", type=int, default=None, help="configurations timed one by one (default 20, 5 for networks)")
    parser.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (default: only at the start and the end)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both the batched and the one-by-one runs (default 1: as each worker of precond run has)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="batched runs per row, each paired with a loop pass after it; the row gives the median ratio (default 1)")


def _configs(args: argparse.Namespace, n: int, problem_args: dict[str, Any]):
    from .run_config import RunConfig

    n_lr = max(1, math.ceil(n / args.seeds))
    lrs = [float(f"{10 ** (-4 + 3 * i / max(n_lr - 1, 1)):.12g}") for i in range(n_lr)]
    return [
        RunConfig(experiment="bench", problem=args.problem, problem_args=problem_args, optimizer=args.optimizer,
                  label=args.optimizer, hyperparameters={"lr": lr}, seed=s, steps=args.steps, eval_every=args.eval_every or args.steps,
                  divergence_bound=1e10, trajectory=False)  # fmt: skip
        for lr in lrs for s in range(args.seeds)
    ][:n]


def _timed(fn):
    """``(result, wall s, CPU s)`` of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


@contextlib.contextmanager
def _quiet_stderr():
    """The profiler's own start/stop lines go to file descriptor 2: hide them."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tensor_peak_mb(fn) -> float:
    """The peak of the tensor memory that ``fn()`` holds at once (MiB): the running sum of the
    allocations and frees the profiler records (``profile_memory``), at its highest."""
    with _quiet_stderr(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    cur = peak = 0
    for e in sorted((e for e in prof.events() if e.cpu_parent is None), key=lambda e: e.time_range.start):
        cur += e.cpu_memory_usage
        peak = max(peak, cur)
    return peak / 2**20


def main(args: argparse.Namespace) -> int:
    from precond.optim import available
    from precond.problems import ProblemArgumentError, ProblemNameError, resolve

    from .runner import run_one
    from .vectorized import batchable, can_batch, run_group

    if args.threads < 1:
        print(f"precond bench sweep: --threads must be >= 1, got {args.threads}")
        return 2
    torch.set_num_threads(args.threads)
    try:
        problem_args = json.loads(args.args)
        problem = resolve(args.problem, problem_args, "float64")  # one problem for all the configurations (RunConfig's dtype)
    except (ValueError, ProblemNameError, ProblemArgumentError) as exc:
        print(f"precond bench sweep: cannot make problem {args.problem!r} with args {args.args}: {exc}")
        return 2
    if not can_batch(problem) or not batchable(args.optimizer):
        names = sorted(name for name, cls in available().items() if cls.batchable)
        print(f"precond bench sweep: runs of {args.problem} with {args.optimizer} cannot be batched "
              f"(a vectorizable or stackable problem and one of {names} needed)")  # fmt: skip
        return 2
    net = not problem.vectorizable
    try:
        counts = [int(c) for c in (args.configs or ("35" if net else "1000")).split(",")]
        assert min(counts) >= 1
    except (ValueError, AssertionError):
        print(f"precond bench sweep: --configs must be a count or counts separated by commas (each >= 1), got {args.configs!r}")
        return 2
    sample_n = args.sample or (5 if net else 20)
    cfgs = _configs(args, max(counts), problem_args)
    short = [replace(c, steps=min(args.steps, MEMORY_STEPS), eval_every=min(args.steps, MEMORY_STEPS)) for c in cfgs]
    problem.data_error()  # load the data before any timing
    run_group(short[:1], problem)  # warm up both (first calls, lazy imports, caches)
    run_one(short[0], problem)
    f32 = _is_f32(problem)

    step = max(1, len(cfgs) // sample_n)
    sample = list(range(0, len(cfgs), step))[:sample_n]

    def loop_pass() -> tuple[dict[int, Any], float, float]:
        """The sample run one by one: its records, and the mean wall-clock and CPU s of a run."""
        recs, tw, tc = {}, 0.0, 0.0
        for i in sample:
            recs[i], w, c = _timed(lambda: run_one(cfgs[i], problem))
            tw, tc = tw + w, tc + c
        return recs, tw / len(sample), tc / len(sample)

    loop, per_w, per_c = loop_pass()
    one_mb = tensor_peak_mb(lambda: run_one(short[0], problem))

    how = "stacked models" if net else "vectorized points"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    evals = f", evaluated every {args.eval_every}" if args.eval_every else ""
    threads = f"{args.threads} thread" + ("s" if args.threads > 1 else "")
    print(f"{args.optimizer} on {args.problem} {problem_args or ''}({how}), {args.steps} steps each{evals}, {threads}; "
          f"load average {load:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
    if net:
        from .batched_modules import stack_rows, step_flops

        print(f"one step of one run: {step_flops(problem) / 1e6:.3g} MFLOP; precond run stacks at most {stack_rows(problem)} runs a task")
    print(f"loop: {per_w:.3f} s a run wall-clock, {per_c:.3f} s CPU (mean of {len(sample)} runs; timed again after each row)")
    print(f"peak tensor memory of one run: {one_mb:.3g} MiB (of {short[0].steps}-step runs, as the batched ones below)")
    print(f"{'C':>6} {'batched s':>10} {'loop s':>9} {'speed-up':>9} {'CPU speed-up':>13} {'peak MiB':>9} {'one run x C':>12}")
    worst = 0.0
    for n in counts:
        rounds = []  # (batched wall, batched CPU, loop wall a run, loop CPU a run): the loop before and after each batched run
        for _ in range(max(1, args.rounds)):
            vec, w, c = _timed(lambda: run_group(cfgs[:n], problem))
            _, after_w, after_c = loop_pass()
            rounds.append((w, c, (per_w + after_w) / 2, (per_c + after_c) / 2))
            per_w, per_c = after_w, after_c
        w, c, lw, lc = (statistics.median(r[k] for r in rounds) for k in range(4))
        up_w, up_c = (statistics.median(r[k + 2] * n / r[k] for r in rounds) for k in range(2))
        mb = tensor_peak_mb(lambda: run_group(short[:n], problem))
        print(f"{n:>6} {w:>10.2f} {lw * n:>9.2f} {up_w:>8.1f}x {up_c:>12.1f}x {mb:>9.3g} {one_mb * n:>12.3g}"
              + (f"   ({', '.join(f'{r[2] * n / r[0]:.1f}' for r in rounds)})" if len(rounds) > 1 else ""))
        for i, rec in loop.items():
            if i >= n:
                continue
            a, b = rec["final_metrics"].get("train_loss", math.nan), vec[i]["final_metrics"].get("train_loss", math.nan)
            if rec["status"] != vec[i]["status"]:
                worst = math.inf
            elif math.isfinite(a) and math.isfinite(b):  # losses run down to rounding noise: a floor sqrt(eps) x the first loss
                floor = math.sqrt(torch.finfo(torch.float32 if f32 else torch.float64).eps) * abs(rec["history"]["train_loss"][0])
                worst = max(worst, abs(a - b) / max(abs(a), abs(b), floor, 1e-300))
    print(f"max relative difference of the final training loss on the sample (floor: sqrt(eps) x the first loss): {worst:.2e}"
          + (" (float32 models: the two differ by float32 rounding, which grows over the steps)" if f32 else ""))
    return 0 if worst < (math.inf if f32 else 1e-6) else 1  # float32: only a different status (diverged or not) fails


def _is_f32(problem: Any) -> bool:
    """Whether the problem's model is float32 (batched and loop runs then differ by float32 rounding)."""
    p = problem.build()
    return any(q.dtype == torch.float32 for q in p.model(0).parameters())
