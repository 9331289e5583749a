"""Test the literature's claims about these optimizers: run each claim's pre-registered experiments, print the verdicts, write a report.

Examples:
  precond claims                      # the quick set (minutes on 2 cores): table + results/claims/index.html
  precond claims --full               # the full set (see docs/claims.md for its running time)
  precond claims --only C1 C5 --json  # two claims, one JSON object per claim on stdout
  precond claims --list               # the claims: id, title, source

Every claim states its rule (metric, threshold, seeds, grid, test) in its definition, before
anything runs; the verdict (reproduced, not reproduced, inconclusive) comes from the runs of
exactly the specs it names (their hashes are in the report). Runs go to a results store
(default DIR/claims.sqlite): kill the command at any moment and start it again, nothing
finished is redone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from pathlib import Path

DEFAULT_DIR = Path("results") / "claims"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick", help="the quick set (default)")
    size.add_argument("--full", dest="size", action="store_const", const="full", help="the full set (more seeds, larger grids and budgets)")
    size.add_argument("--size", dest="size", choices=("tiny", "quick", "full"), help=argparse.SUPPRESS)  # tiny: the test suite's
    parser.set_defaults(size="quick")
    parser.add_argument("--only", nargs="+", metavar="ID", help="only these claims (e.g. C1 C5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per claim (a JSON list) instead of the table")
    parser.add_argument("-o", "--out", default=str(DEFAULT_DIR), metavar="DIR", help=f"report folder (default {DEFAULT_DIR})")
    parser.add_argument("--store", metavar="S", help="results store (default DIR/claims.sqlite)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: min(2, CPUs))")
    parser.add_argument("--no-sensitivity", action="store_true", help="skip the sweeps over each claim's open settings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--list", action="store_true", help="list the claims and exit")


def _table(rows: list[list[str]], widths: tuple[int, ...]) -> str:
    """A text table whose cells wrap at ``widths``."""
    lines = []
    for i, row in enumerate(rows):
        cells = [textwrap.wrap(c, w) or [""] for c, w in zip(row, widths)]
        for k in range(max(len(c) for c in cells)):
            lines.append("  ".join((c[k] if k < len(c) else "").ljust(w) for c, w in zip(cells, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _header(size: str, wall: float) -> str:
    from precond.experiments.sweep import environment

    env = environment()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"size {size}; {wall:.0f} s on {os.cpu_count()} CPUs (load average "
            f"{load:.1f} at the end); precond {env['precond']}, torch {env['torch']}, commit "
            f"{env.get('git_commit', '?')[:12]}{' (dirty)' if env.get('git_dirty') else ''}; "
            f"{time.strftime('%Y-%m-%d %H:%M')}.")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    from precond.experiments.store import StoreError
    from precond.experiments.sweep import Terminated

    from . import engine, registry, report

    try:
        claims = registry.get(args.only)
    except KeyError as exc:
        print(f"precond claims: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.list:
        for c in claims:
            print(f"{c.id:<4} {c.title:<32} {c.source}")
        return 0
    out = Path(args.out)
    store = args.store or str(out / "claims.sqlite")
    Path(store).parent.mkdir(parents=True, exist_ok=True)
    workers = args.workers or min(2, os.cpu_count() or 1)
    t0 = time.perf_counter()
    p = engine.plan(claims, args.size, sensitivity=not args.no_sensitivity)
    try:
        with engine.worker_pool(workers) as pool:
            outcome = engine.execute(p, store, workers=workers, progress=not args.no_progress, pool=pool)
            print(f"{outcome.runs} runs: {outcome.stored_before} already in the store, "
                  f"{outcome.stored_after - outcome.stored_before} ran now; {len(p.computations)} computations", file=sys.stderr)
            results = engine.evaluate(p, outcome, store, out / "fig", pool=pool)
    except StoreError as exc:
        print(f"precond claims: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        again = " ".join(["precond claims", f"--{args.size}" if args.size != "quick" else "",
                          f"--only {' '.join(args.only)}" if args.only else "", f"--store {store}"]).replace("  ", " ")  # fmt: skip
        print(f"\nprecond claims: {how}; every finished run is in {store}; resume with: {again}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    index = report.write(results, p, out, _header(args.size, time.perf_counter() - t0), store)
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=1, default=str))
    else:
        print(_table(report.summary_rows(results), (4, 22, 30, 60, 14)))
        print(f"\nreport: {index} (and report.md); store: {store}; {time.perf_counter() - t0:.0f} s")
    for name, err in outcome.errors.items():
        print(f"precond claims: {name}: {err.strip().splitlines()[0]}", file=sys.stderr)
    return 1 if outcome.errors else 0
