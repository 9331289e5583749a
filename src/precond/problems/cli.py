"""List the problems: objectives, models and datasets of the seed experiments (all offline).

``precond problems list [--json]`` prints every registered problem's name, kind, size
(number of trainable parameters) and source.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="problems_command", metavar="SUBCOMMAND")
    p = sub.add_parser("list", help="List the registered problems (name, kind, size, source).")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")


def _rows() -> list[dict]:
    from . import registry

    rows = []
    for name in registry.names():
        try:
            d = registry.get(name).describe()
        except Exception as exc:  # noqa: BLE001 - a problem whose data is absent still gets listed
            cls = registry.lookup(name)
            d = {"name": name, "kind": getattr(cls, "kind", ""), "size": None, "source": getattr(cls, "source", ""),
                 "error": f"{type(exc).__name__}: {exc}"}
        rows.append(d)
    return rows


def main(args: argparse.Namespace) -> int:
    if getattr(args, "problems_command", None) != "list":
        print("usage: precond problems list [--json]", file=sys.stderr)
        return 2
    rows = _rows()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    w = max(len(r["name"]) for r in rows)
    print(f"{'name':<{w}}  {'kind':<14}  {'size':>9}  source")
    for r in rows:
        size = "-" if r.get("size") is None else str(r["size"])
        print(f"{r['name']:<{w}}  {r['kind']:<14}  {size:>9}  {r['source']}")
    return 0
