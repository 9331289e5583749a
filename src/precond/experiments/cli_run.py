"""Run an experiment spec: every (optimizer, hyperparameters, seed), resumable, into a results store.

Examples:
  precond run rosenbrock.toml                       # results.sqlite in the current directory
  precond run quadratic.toml --store out.sqlite --workers 2
  precond run --list                                # the example specs shipped with precond
  precond run rosenbrock.toml --export runs.csv     # also write one CSV row per run

A sweep stopped at any moment (Ctrl-C, kill, power cut) continues where it stopped when
started again with the same store: finished runs are never redone.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SPECS_DIR = Path(__file__).with_name("specs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", help="experiment spec (TOML), or the name of a shipped example (see --list)")
    parser.add_argument("--store", default="results.sqlite", help="results store (SQLite file; default results.sqlite)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: number of CPUs)")
    parser.add_argument("--vectorize", choices=("auto", "never", "always"), default=None,
                        help="override the spec's batching of vectorizable problems")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--export", metavar="FILE", help="also export this experiment's runs to FILE (.csv or .parquet)")
    parser.add_argument("--tensorboard", metavar="DIR", help="also log every run's history to TensorBoard under DIR")
    parser.add_argument("--list", action="store_true", help="list the example specs shipped with precond")
    parser.add_argument("--check", action="store_true", help="validate the spec, print the number of runs, run nothing")


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
    if args.check:
        print(f"{exp.name}: valid; {len(runs)} runs ({len(exp.labels())} optimizers x settings x {len(exp.spec.seeds)} seeds), {exp.steps} steps each")
        return 0
    tb = None
    if args.tensorboard:
        try:
            from .tensorboard import TensorBoardLogger

            tb = TensorBoardLogger(args.tensorboard)
        except ImportError as exc:
            print(f"precond run: {exc}", file=sys.stderr)
            return 2
    from .store import Store
    from .sweep import run_sweep
    from .tuning import render_text, table, tune_store

    workers = args.workers or os.cpu_count() or 1
    res = run_sweep(exp, args.store, workers=workers, progress=not args.no_progress,
                    on_record=tb.log_run if tb else None)  # fmt: skip
    if tb is not None:
        tb.close()
    print(f"{exp.name}: {res.total} runs: {res.ran} ran now ({res.diverged} diverged), {res.skipped} already in the store, "
          f"{res.failed} failed; {res.wall_time:.1f} s")  # fmt: skip
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
