"""The ``precond`` command.

Each subcommand lives in the layer it belongs to, as a module with
``add_arguments(parser)`` and ``main(args) -> int``; this file only wires them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command -> module; ``bench`` has subcommands of its own
COMMANDS: dict[str, str] = {
    "demo": "precond.experiments.demo",
    "problems": "precond.problems.cli",
    "run": "precond.experiments.cli_run",
    "train": "precond.experiments.train",
    "report": "precond.experiments.cli_report",
    "claims": "precond.claims.cli",
}
BENCH: dict[str, str] = {
    "step": "precond.experiments.bench_step",
    "sweep": "precond.experiments.bench_sweep",
}


def summary(doc: str | None) -> str | None:
    """A command's one-line help: the first sentence of its module docstring's first paragraph,
    whole (a docstring's first line may stop mid-sentence)."""
    para = " ".join((doc or "").strip().split("\n\n", 1)[0].split())
    if not para:
        return None
    end = para.find(". ")
    return para if end < 0 else para[: end + 1]


def _add(sub: argparse._SubParsersAction, name: str, module: str) -> None:
    mod = importlib.import_module(module)
    p = sub.add_parser(name, help=summary(mod.__doc__), description=(mod.__doc__ or "").strip() or None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    mod.add_arguments(p)
    p.set_defaults(_main=mod.main)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="precond", description="Diagonal preconditioned optimizers: train, benchmark, and test the literature's claims.")
    parser.add_argument("--version", action="version", version=f"precond {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        _add(sub, name, module)
    bench = sub.add_parser("bench", help="Benchmarks: optimizer step speed and memory, sweep vectorization.")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCH")
    for name, module in BENCH.items():
        _add(bench_sub, name, module)
    bench.set_defaults(_main=lambda args: (bench.print_help(), 2)[1])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_main"):
        parser.print_help()
        return 2
    try:
        return int(args._main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
