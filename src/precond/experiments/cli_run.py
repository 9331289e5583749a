"""Run an experiment spec: every (optimizer, hyperparameters, seed), resumable, into a results store.

Examples:
  precond run rosenbrock.toml                       # results.sqlite in the current directory
  precond run quadratic.toml --store out.sqlite --workers 2
  precond run --list                                # the example specs shipped with precond
  precond run rosenbrock.toml --export runs.csv     # also write one CSV row per run
  precond run rosenbrock.toml --backend ray --address 10.0.0.5:6379   # the runs as tasks on a Ray cluster

A sweep stopped at any moment (Ctrl-C, kill, power cut) continues where it stopped when
started again with the same store: finished runs are never redone. Two sweeps of one spec
on one store split the runs between them. A spec edited under the same name is refused
while the store holds the old spec's runs: give it a new name, or use --replace.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .store import DEFAULT_STORE

SPECS_DIR = Path(__file__).with_name("specs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", help="experiment spec (TOML), or the name of a shipped example (see --list)")
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"results store (SQLite file; default {DEFAULT_STORE})")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: number of CPUs); with --backend ray: tasks in flight (default: the cluster's CPUs)")
    parser.add_argument("--backend", choices=("process", "ray"), default="process",
                        help="where the runs run: local worker processes (default) or Ray tasks (needs ray: pip install 'precond[ray]')")
    parser.add_argument("--address", metavar="ADDR",
                        help="with --backend ray: the Ray cluster (host:port as `ray start --head` printed, ray://host:10001, "
                             "or auto; default $RAY_ADDRESS, else a new local Ray instance)")
    parser.add_argument("--vectorize", choices=("auto", "never", "always"), default=None,
                        help="override the spec's batching of runs (vectorized points, stacked networks)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--export", metavar="FILE", help="also export this experiment's runs to FILE (.csv or .parquet)")
    parser.add_argument("--tensorboard", metavar="DIR", help="also log every run's history to TensorBoard under DIR")
    parser.add_argument("--list", action="store_true", help="list the example specs shipped with precond")
    parser.add_argument("--check", action="store_true",
                        help="validate the spec and that its problem's data are there, print the number of runs, run nothing")
    parser.add_argument("--replace", action="store_true",
                        help="the store holds runs of an earlier version of this spec (same name): archive them and run this one")


def resolve_spec_path(spec: str) -> Path:
    p = Path(spec)
    if p.is_file():
        return p
    shipped = SPECS_DIR / (spec if spec.endswith(".toml") else spec + ".toml")
    if shipped.is_file():
        return shipped
    return p


def main(args: argparse.Namespace) -> int:
    from .spec import SpecError, load_spec

    if args.list:
        for f in sorted(SPECS_DIR.glob("*.toml")):
            first = next((ln for ln in f.read_text().splitlines() if ln.startswith("description")), "")
            print(f"{f.stem:<20} {first.partition('=')[2].strip().strip(chr(34))}")
        return 0
    if not args.spec:
        print("precond run: give a spec file (or --list to see the shipped examples)", file=sys.stderr)
        return 2
    try:
        exp = load_spec(resolve_spec_path(args.spec))
    except SpecError as exc:
        print(f"precond run: {exc}", file=sys.stderr)
        return 2
    if args.vectorize:
        exp.spec.vectorize = args.vectorize
    runs = exp.runs()
    missing = exp.problem.data_error()
    if missing:
        print(f"precond run: {args.spec}: problem {exp.spec.problem.name!r} cannot load its data: {missing}", file=sys.stderr)
        return 2
    if args.address and args.backend != "ray":
        print("precond run: --address is the Ray cluster's: give --backend ray with it", file=sys.stderr)
        return 2
    workers = args.workers or os.cpu_count() or 1
    if args.check:
        from .sweep import describe_plan, plan

        print(f"{exp.name}: valid; {len(runs)} runs ({len(exp.labels())} optimizers x settings x {len(exp.spec.seeds)} seeds), {exp.steps} steps each")
        print(f"  {describe_plan(plan(runs, exp.spec.vectorize, exp.problem, workers=workers))}")
        return 0
    tb = None
    if args.tensorboard:
        try:
            from .tensorboard import TensorBoardLogger

            tb = TensorBoardLogger(args.tensorboard)
        except ImportError as exc:
            print(f"precond run: {exc}", file=sys.stderr)
            return 2
    from .store import SpecConflict, Store, StoreError
    from .sweep import Terminated, run_sweep
    from .tuning import render_text, table, tune_store

    executor, resume = None, ""
    if args.backend == "ray":
        from .ray_backend import RayBackendError, connect

        try:
            executor = connect(args.address, workers=args.workers)
        except (RayBackendError, KeyboardInterrupt) as exc:
            print(f"precond run: {exc or 'interrupted while connecting to Ray'}", file=sys.stderr)
            if tb is not None:
                tb.close()
            return 130 if isinstance(exc, KeyboardInterrupt) else 2
        resume = " --backend ray" + (f" --address {args.address}" if args.address else "")
    try:
        res = run_sweep(exp, args.store, workers=workers, progress=not args.no_progress,
                        on_record=tb.log_run if tb else None, replace=args.replace, executor=executor)  # fmt: skip
    except (StoreError, SpecConflict) as exc:
        print(f"precond run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        with Store(args.store) as store:
            kept = len(store.done_keys(exp.name) & {c.key for c in runs})
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"\nprecond run: {how}: {kept} of {len(runs)} runs of {exp.name!r} are in {args.store}; "
              f"resume with: precond run {args.spec} --store {args.store}{resume}", file=sys.stderr)  # fmt: skip
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if tb is not None:
            tb.close()
        if executor is not None:
            executor.shutdown()
    if res.archived:
        print(f"{exp.name}: archived {res.archived} runs of its previous spec (table archived_runs)")
    print(f"{exp.name}: {res.total} runs: {res.ran} ran now ({res.diverged} diverged), {res.skipped} already in the store, "
          f"{res.taken} taken by another process, {res.failed} failed; {res.wall_time:.1f} s")  # fmt: skip
    if res.plan:
        print(f"  {res.plan}")
    print(f"results: {Path(args.store).resolve()}")
    for f in res.failures[:10]:
        print(f"  failed: {f}", file=sys.stderr)
    with Store(args.store) as store:
        results = tune_store(store, exp.name)
        meta = next(e["meta"] for e in store.experiments() if e["name"] == exp.name)
        if results:
            print(f"\ntuned on {meta['val_metric']} (mean over seeds), reported on {meta['test_metric']}:\n")
            print(render_text(table(results, meta["test_metric"])))
        if args.export:
            try:
                n = store.export_parquet(args.export, exp.name) if args.export.endswith(".parquet") else store.export_csv(args.export, exp.name)
            except RuntimeError as exc:
                print(f"precond run: {exc}", file=sys.stderr)
                return 2
            print(f"\nexported {n} runs to {args.export}")
    print(f"\nreport: precond report {args.store} -o report/")
    return 1 if res.failed else 0
