"""Benchmark: a batched (vectorized) sweep against the plain one-run-at-a-time loop.

Runs ``--configs`` configurations (learning rates x seeds) of one optimizer on a
vectorizable problem for ``--steps`` steps as one batch, times a sample of the same
configurations run one by one, checks that both give the same final values, and prints
the speed-up (the loop time for all configurations is extrapolated from the sample).
"""

from __future__ import annotations

import argparse
import math
import time

import torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problem", default="rosenbrock", help="a vectorizable problem (default rosenbrock)")
    parser.add_argument("--optimizer", default="Adam", help="an elementwise optimizer (default Adam)")
    parser.add_argument("--configs", type=int, default=1000, help="configurations = lrs x seeds (default 1000)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per lr (default 5)")
    parser.add_argument("--steps", type=int, default=1000, help="steps per run (default 1000)")
    parser.add_argument("--sample", type=int, default=20, help="configurations timed one by one (default 20)")


def _configs(args: argparse.Namespace):
    from .run_config import RunConfig

    n_lr = max(1, args.configs // args.seeds)
    lrs = [float(f"{10 ** (-4 + 3 * i / max(n_lr - 1, 1)):.12g}") for i in range(n_lr)]
    return [
        RunConfig(experiment="bench", problem=args.problem, problem_args={}, optimizer=args.optimizer, label=args.optimizer,
                  hyperparameters={"lr": lr}, seed=s, steps=args.steps, eval_every=args.steps,
                  divergence_bound=1e10, trajectory=False)  # fmt: skip
        for lr in lrs for s in range(args.seeds)
    ]


def main(args: argparse.Namespace) -> int:
    from precond.optim import available
    from precond.problems import ProblemNameError

    from .runner import run_one
    from .vectorized import batchable, run_group

    torch.set_num_threads(1)
    cfgs = _configs(args)
    try:
        problem = cfgs[0].resolve_problem()  # one problem for all the configurations
    except ProblemNameError as exc:
        print(f"precond bench sweep: cannot make problem {args.problem!r}: {exc}")
        return 2
    if not problem.vectorizable or not batchable(args.optimizer):
        names = sorted(name for name, cls in available().items() if cls.batchable)
        print(f"precond bench sweep: {args.problem} with {args.optimizer} cannot be vectorized "
              f"(vectorizable problem and one of {names} needed)")  # fmt: skip
        return 2
    t0 = time.perf_counter()
    vec = run_group(cfgs, problem)
    t_vec = time.perf_counter() - t0
    step = max(1, len(cfgs) // args.sample)
    sample = list(range(0, len(cfgs), step))[: args.sample]
    t0 = time.perf_counter()
    loop = {i: run_one(cfgs[i], problem) for i in sample}
    t_loop_sample = time.perf_counter() - t0
    t_loop = t_loop_sample * len(cfgs) / len(sample)
    worst = 0.0
    for i, rec in loop.items():
        a, b = rec["final_metrics"].get("train_loss", math.nan), vec[i]["final_metrics"].get("train_loss", math.nan)
        if rec["status"] != vec[i]["status"]:
            worst = math.inf
        elif math.isfinite(a) and math.isfinite(b):
            worst = max(worst, abs(a - b) / max(abs(a), abs(b), 1e-300))
    print(f"{len(cfgs)} configurations of {args.optimizer} on {args.problem}, {args.steps} steps each (1 thread)")
    print(f"  vectorized: {t_vec:8.2f} s  (all {len(cfgs)}, one batch)")
    print(f"  loop:       {t_loop:8.2f} s  (extrapolated from {len(sample)} runs: {t_loop_sample:.2f} s)")
    print(f"  speed-up:   {t_loop / t_vec:8.1f} x")
    print(f"  max relative difference of the final loss on the sample: {worst:.2e}")
    return 0 if worst < 1e-6 else 1
