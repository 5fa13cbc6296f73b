"""`resilience report DIR`: regenerate a run's report.html from its files and print the verdict table.

Exposes `register(subparsers)` like the other command modules (resilience/cli.py lists them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from resilience.exitcodes import ExitCode
from resilience.report.build import generate_report, update_latest
from resilience.report.run import ReportError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "report", help="regenerate report.html of a run directory", description=__doc__.splitlines()[0]
    )
    parser.add_argument("run_dir", type=Path, metavar="DIR", help="a run directory, e.g. reports/latest")
    parser.add_argument(
        "--latest", action="store_true", help="also point DIR's parent/latest at the newest run directory"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=False, highlight=False)
    try:
        generate_report(args.run_dir, console=console)
        if args.latest:
            update_latest(args.run_dir.resolve().parent, args.run_dir.resolve())
    except ReportError as exc:
        print(f"resilience report: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resilience.report")
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["report", *(sys.argv[1:] if argv is None else argv)]))
