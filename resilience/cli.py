"""The `resilience` command. Each command group lives in its own module exposing `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

from resilience.interrupts import Terminated, terminate_gracefully

# Modules that add subcommands; each has `register(subparsers: argparse._SubParsersAction) -> None`
# and sets `func=` on its parsers. A missing module is skipped so the CLI works while it grows.
COMMAND_MODULES = (
    "resilience.cli_topology",
    "resilience.cli_cluster",
    "resilience.cli_images",
    "resilience.cli_workload",
    "resilience.cli_experiments",
    "resilience.report.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resilience", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    terminate_gracefully()
    try:
        return int(args.func(args) or 0)
    except Terminated:
        print("terminated (faults reverted)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted (faults reverted)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
