"""The text form of a schedule: `at 10 kill courier-1; recover at 25` (the grammar is in the package's docstring).

`parse_schedule` reports every problem at once, each with its line and statement.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from resilience.faults.base import FAULT_KINDS, BaseFault, FaultSpecError
from resilience.faults.schedule.model import Schedule, ScheduleError, Step, format_seconds

if TYPE_CHECKING:
    from resilience.topology import Topology

_TIME = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m)?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def parse_time(text: str) -> float:
    match = _TIME.fullmatch(text)
    if match is None:
        raise FaultSpecError(f"expected a time like 10, 2.5s, 500ms or 1m, got {text!r}")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


def _statements(text: str) -> Iterable[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        for statement in line.split("#", 1)[0].split(";"):
            if statement.strip():
                yield number, statement.strip()


def parse_schedule(text: str, topology: Topology | None = None, source: str = "<schedule>") -> Schedule:
    """Read the text form. Every problem is reported at once, each with its line and statement."""
    problems: list[str] = []
    steps: list[Step] = []
    faults: dict[str, tuple[BaseFault, float]] = {}  # name -> (fault, injected at)
    recovered: set[str] = set()

    for line, statement in _statements(text):

        def fail(message: str, line: int = line, statement: str = statement) -> None:
            problems.append(f"{source}:{line}: `{statement}`: {message}")

        words = statement.split()
        try:
            if words[0] == "recover":
                # recover [NAME] at T
                if len(words) not in (3, 4) or words[-2] != "at":
                    raise FaultSpecError("expected `recover [NAME] at TIME`")
                name, at = (words[1] if len(words) == 4 else None), parse_time(words[-1])
            elif words[0] == "at" and len(words) >= 3 and words[2] == "recover":
                # at T recover [NAME]
                if len(words) > 4:
                    raise FaultSpecError("expected `at TIME recover [NAME]`")
                name, at = (words[3] if len(words) == 4 else None), parse_time(words[1])
            elif words[0] == "at" and len(words) >= 3:
                fault, at, recover_after = _parse_inject(words, topology, len(faults) + 1)
                if fault.id in faults:
                    raise FaultSpecError(f"the name {fault.id} is already used by an earlier fault")
                faults[fault.id] = (fault, at)
                steps.append(Step(at, "inject", fault, line))
                if recover_after is not None:
                    steps.append(Step(at + recover_after, "recover", fault, line))
                    recovered.add(fault.id)
                continue
            else:
                raise FaultSpecError(
                    "expected `at TIME KIND [ARGS...] [as NAME] [for DURATION]`, `recover [NAME] at TIME` "
                    "or `at TIME recover [NAME]`"
                )
        except FaultSpecError as exc:
            fail(str(exc))
            continue
        # A recover statement.
        if name is None:
            pending = [n for n in faults if n not in recovered]
            if not pending:
                fail("there is no fault left to recover (each one before is recovered already)")
                continue
            name = pending[-1]
        if name not in faults:
            hint = difflib.get_close_matches(name, list(faults), n=1)
            known = f"did you mean {hint[0]}?" if hint else f"faults so far: {', '.join(faults) or 'none'}"
            fail(f"no fault is named {name!r} ({known})")
            continue
        if name in recovered:
            fail(f"{name} is already recovered")
            continue
        fault, injected_at = faults[name]
        if at < injected_at:
            fail(f"recovers {name} at {format_seconds(at)} s, before it is injected at {format_seconds(injected_at)} s")
            continue
        recovered.add(name)
        steps.append(Step(at, "recover", fault, line))

    if not problems and not steps:
        problems.append(f"{source}: the schedule is empty; expected statements like `at 10 kill courier-1`")
    schedule = Schedule(steps, source=source)
    if topology is not None and not problems:
        try:
            schedule.check(topology)
        except ScheduleError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ScheduleError(problems)
    return schedule


def _parse_inject(words: list[str], topology: Topology | None, number: int) -> tuple[BaseFault, float, float | None]:
    at = parse_time(words[1])
    kind, rest = words[2], words[3:]
    if kind not in FAULT_KINDS:
        hint = difflib.get_close_matches(kind, list(FAULT_KINDS), n=1)
        more = f" (did you mean {hint[0]}?)" if hint else ""
        raise FaultSpecError(f"unknown fault kind {kind!r}{more}; expected one of: {', '.join(sorted(FAULT_KINDS))}")
    name: str | None = None
    recover_after: float | None = None
    # Trailing `as NAME` and `for DURATION`, in either order.
    while len(rest) >= 2 and rest[-2] in ("as", "for"):
        keyword, value = rest[-2], rest[-1]
        if keyword == "as":
            if name is not None or not _NAME.fullmatch(value):
                raise FaultSpecError(f"`as` takes one name of letters, digits, '-', '_' or '.', got {value!r}")
            name = value
        else:
            if recover_after is not None:
                raise FaultSpecError("`for` is given twice")
            recover_after = parse_time(value)
        rest = rest[:-2]
    args: list[str] = []
    options: dict[str, str] = {}
    for word in rest:
        key, sep, value = word.partition("=")
        if sep:
            if not key or not value:
                raise FaultSpecError(f"expected NAME=VALUE, got {word!r}")
            if key in options:
                raise FaultSpecError(f"{key} is given twice")
            options[key] = value
        elif options and word != "|":
            raise FaultSpecError(f"positional argument {word!r} after NAME=VALUE options")
        else:
            args.append(word)
    fault = FAULT_KINDS[kind].from_args(args, options, topology)
    fault.id = name or f"{kind}-{number}"
    return fault, at, recover_after
