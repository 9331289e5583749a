"""Run the demo: AGD against Adam and friends on 2-D test functions, then tuned sweeps and a report.

First a quick table on 2-D test functions, then tuned sweeps (shipped specs: a quadratic and
Rosenbrock, 5 seeds each, with 95% confidence intervals) written to a results store and an
offline HTML report."""

from __future__ import annotations

import argparse
import math

import torch

import precond.optim as po
import precond.problems as P

#: the table's registered problems and their starting points (Rosenbrock's and the ravine's
#: are the demo's own, not the registry's classic starts)
STARTS = {"rosenbrock": (-1.5, 2.0), "beale": (1.0, 1.5), "ravine": (1.0, 1.0)}
OPTIMIZERS = {
    "AGD": lambda p: po.AGD(p, lr=1e-2),
    "Adam": lambda p: po.Adam(p, lr=1e-2),
    "AdaBound": lambda p: po.AdaBound(p, lr=1e-2, final_lr=0.01),
    "SGD+momentum": lambda p: po.SGD(p, lr=1e-4, momentum=0.9),
}


DEMO_SPECS = ("quadratic", "rosenbrock")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps per run of the table (default 2000)")
    parser.add_argument("--out", default="results", help="folder for the store and the report (default results/)")
    parser.add_argument("--table-only", action="store_true", help="print the table and stop (no sweeps, no report)")


def run_one(name: str, opt_name: str, steps: int) -> tuple[float, int | None]:
    """``(f(x_T) - f*, first step whose loss was within 1e-3 of f*)`` of ``opt_name`` on problem ``name``."""
    problem = P.get(name, dtype="float64")
    fmin = problem.optimum
    xy = torch.tensor(STARTS[name], dtype=torch.float64, requires_grad=True)
    opt = OPTIMIZERS[opt_name]([xy])
    reached = None
    for t in range(1, steps + 1):
        opt.zero_grad()
        loss = problem.value(xy)
        loss.backward()
        opt.step()
        if reached is None and loss.item() - fmin < 1e-3:
            reached = t
    return float(problem.value(xy).detach()) - fmin, reached


def main(args: argparse.Namespace) -> int:
    names = list(OPTIMIZERS)
    print(f"final gap f(x) - f* after {args.steps} steps (step at which the gap fell under 1e-3)\n")
    print(f"{'function':<12}" + "".join(f"{n:>22}" for n in names))
    for fname in STARTS:
        cells = []
        for oname in names:
            gap, reached = run_one(fname, oname, args.steps)
            cells.append(f"{gap:.2e} ({reached if reached else '-'})" if math.isfinite(gap) else "diverged")
        print(f"{fname:<12}" + "".join(f"{c:>22}" for c in cells))
    if args.table_only:
        return 0
    from pathlib import Path

    from . import cli_report, cli_run

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = str(out / "demo.sqlite")
    for spec in DEMO_SPECS:  # resumable: a second demo reuses every finished run
        # --replace: the demo's store is its own, so a shipped spec edited since the last demo replaces its runs
        print(f"\n$ precond run {spec} --store {store} --replace", flush=True)
        rc = _command("run", cli_run, [spec, "--store", store, "--replace"])
        if rc:
            return rc
    print(f"\n$ precond report {store} -o {out / 'report'}", flush=True)
    return _command("report", cli_report, [store, "-o", str(out / "report")])


def _command(name: str, module, argv: list[str]) -> int:
    """``precond <name> <argv>`` by its module (``add_arguments`` + ``main``), without going up to ``precond.cli``."""
    parser = argparse.ArgumentParser(prog=f"precond {name}")
    module.add_arguments(parser)
    return int(module.main(parser.parse_args(argv)) or 0)
