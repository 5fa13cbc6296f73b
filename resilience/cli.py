"""The `resilience` command: the entry point that parses the command line and turns failures into one line.

Each command group lives in its own module exposing `register(subparsers)`; this module adds the help
text, installs the SIGTERM handler and maps what can go wrong around a command to its exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from typing import NoReturn, TextIO

from resilience.exitcodes import EPILOG, ExitCode
from resilience.interrupts import Terminated, terminate_gracefully

DESCRIPTION = """\
Prove that a highly available RapidPro keeps every message and every conversation through failures.

resilience brings RapidPro's HA topology up in Docker (load-balanced web, Courier, Mailroom, a
Postgres primary and standby, Redis with Sentinel), drives real conversations through it, injects
faults (kills, pauses, partitions, packet loss, failovers, rolling restarts) and judges from the
recorded history whether every acknowledged message arrived exactly once and every conversation
carried on. Each run writes a report (reports/latest/report.html).

start with:  resilience demo                  everything, from nothing, with a sample experiment
             resilience list                  the experiments; then: resilience run NAME
             resilience up TOPOLOGY           keep a cluster up; then: status, smoke, workload, down"""

# Modules that add subcommands, in the order `--help` lists them; each has
# `register(subparsers: argparse._SubParsersAction) -> None` and sets `func=` on its parsers.
# A missing module is skipped so the CLI works while it grows.
COMMAND_MODULES = (
    "resilience.cli_experiments",
    "resilience.cli_cluster",
    "resilience.cli_workload",
    "resilience.report.cli",
    "resilience.cli_topology",
    "resilience.cli_images",
    "resilience.cli_target",
    "resilience.cli_hosts",
    "resilience.cli_explore",
    "resilience.cli_certify",
)

PIPE_CLOSED = 141
"""Exit code when the reader of our output went away (`resilience list | head`): 128 + SIGPIPE, what a
shell reports for any program stopped that way. Never 0: the command did not finish."""


class Parser(argparse.ArgumentParser):
    """argparse with one meaning per exit code: a usage error is bad input (3), not argparse's 2, which
    `check`, `run` and `workload` use for an unknown verdict."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="resilience",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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


_python_show_warning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Our own warnings (e.g. a history whose last line was torn) as one plain line, without Python's
    file:line and source line; everyone else's as Python prints them."""
    if category.__module__.split(".")[0] == "resilience":
        print(f"resilience: warning: {message}", file=file or sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


def _quiet_stdout() -> None:
    """After a broken pipe: send whatever is still buffered for stdout nowhere, so that the interpreter's
    final flush does not print a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _environment_problem(exc: BaseException) -> str | None:
    from resilience.backends.engine import explain

    return explain(exc)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return ExitCode.BAD_INPUT  # a usage error: bad input
    terminate_gracefully()
    warnings.showwarning = _show_warning
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except Terminated:
        print("terminated (faults reverted)", file=sys.stderr)
        return ExitCode.TERMINATED
    except KeyboardInterrupt:
        print("interrupted (faults reverted)", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return PIPE_CLOSED
    except Exception as exc:
        line = _environment_problem(exc)
        if line is None:
            raise
        print(f"resilience {args.command}: {line}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    finally:
        warnings.showwarning = _python_show_warning


if __name__ == "__main__":
    sys.exit(main())
