"""Write a static report (HTML + Markdown, with figures) of every experiment in a results store.

Examples:
  precond report                                # results.sqlite (precond run's default store) -> report/
  precond report results.sqlite -o report/      # then open report/index.html (works offline)
  precond report results.sqlite --csv runs.csv  # one row per run, no report
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .store import DEFAULT_STORE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", nargs="?", default=DEFAULT_STORE,
                        help=f"results store (SQLite file written by `precond run`; default {DEFAULT_STORE}, as for run)")
    parser.add_argument("-o", "--output", default="report", help="output directory (default report/)")
    parser.add_argument("--csv", metavar="FILE", help="export every run to FILE as CSV instead of a report")
    parser.add_argument("--parquet", metavar="FILE", help="export every run to FILE as Parquet (needs pyarrow)")


def main(args: argparse.Namespace) -> int:
    if not Path(args.store).is_file():
        print(f"precond report: {args.store}: no such store; run `precond run SPEC --store {args.store}` first", file=sys.stderr)
        return 2
    from .store import Store, StoreError

    try:
        Store(args.store).close()  # a file that is no store is refused before anything is written
    except StoreError as exc:
        print(f"precond report: {exc}", file=sys.stderr)
        return 2
    if args.csv or args.parquet:
        with Store(args.store) as store:
            try:
                if args.csv:
                    print(f"exported {store.export_csv(args.csv)} runs to {args.csv}")
                if args.parquet:
                    print(f"exported {store.export_parquet(args.parquet)} runs to {args.parquet}")
            except RuntimeError as exc:
                print(f"precond report: {exc}", file=sys.stderr)
                return 2
        return 0
    from .report import build_report

    path = build_report(args.store, args.output)
    print(f"report: {path.resolve()}")
    print(f"markdown: {(path.parent / 'report.md').resolve()}")
    return 0
