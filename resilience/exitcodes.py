"""What the `resilience` commands' exit codes mean: one meaning per code (docs/usage.md, "Exit codes").

`check`, `run`, `workload` and `demo` exit with the experiment's decision; every command exits with
BAD_INPUT when its input or its environment is unusable (a malformed file, no Docker engine, a port
already taken), after one line that says what is missing and how to fix it.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    VALID = 0
    """The verdict holds: every finding inside a documented allowance, every bound met."""
    INVALID = 1
    """The verdict is false: a finding no allowance covers, over its maximum, or a bound exceeded."""
    UNKNOWN = 2
    """The history could not decide (e.g. the system never drained) and the experiment did not declare it."""
    BAD_INPUT = 3
    """Unusable input or environment: nothing was judged."""
    INTERRUPTED = 130
    """^C: faults reverted."""
    TERMINATED = 143
    """SIGTERM: faults reverted."""


EPILOG = """exit codes:
  0  valid: every finding inside a documented allowance, every bound met
  1  invalid: a finding outside its allowance, over its maximum, or a bound exceeded
  2  unknown: the history could not decide, and the experiment did not declare that unknown
  3  bad input or environment (malformed file, no Docker engine, port taken): nothing was judged
  130/143  interrupted by SIGINT/SIGTERM (faults reverted)"""
