"""Schedules: when to inject which fault and when to recover it; written by hand or generated from a seed.

The text form, one statement per line or separated by ';' ('#' starts a comment):

    at 10 kill courier-1; recover at 25
    at 30 partition courier-1 | postgres one_way=true as cut   # a service name stands for its nodes
    at 32 toxic redis latency latency=500 jitter=50 for 8      # `for D`: recover D seconds later
    recover cut at 45
    at 50 pg-failover method=partition

`at T KIND ARGS... [as NAME] [for D]` injects (ARGS: the kind's positional arguments, then NAME=VALUE
options); `recover [NAME] at T` or `at T recover [NAME]` recovers NAME, or the latest fault not yet
recovered. Times are seconds from the start (`10`, `2.5s`, `500ms`, `1m`). A fault never recovered
explicitly is recovered when the schedule ends.

`generate_schedule(topology, seed, ...)` draws a schedule for a mixed run: random faults of the allowed
kinds, never more than `max_down_per_service` (1) nodes of a service out at once, and never a whole
service unless it is in `allow_outage`. The same seed gives the same schedule; it is kept in the result.

`run_schedule(nemesis, schedule, stop_event)` plays it with monotonic timing and recovers everything
still active at the end, or as soon as `stop_event` is set.

One module each: `model` (Schedule, Step), `text` (the text form), `generator` (the seeded generator) and
`player` (run_schedule, ScheduleRunner).
"""

from resilience.faults.schedule.generator import (
    DEFAULT_KINDS,
    HTTP_POOLS,
    INTERCHANGEABLE_ROLES,
    TOXIC_CHOICES,
    GeneratorSettings,
    down_at,
    generate_schedule,
)
from resilience.faults.schedule.model import Action, Schedule, ScheduleError, Step
from resilience.faults.schedule.player import ScheduleOutcome, ScheduleRunner, StepResult, run_schedule
from resilience.faults.schedule.text import parse_schedule, parse_time

__all__ = [
    "DEFAULT_KINDS",
    "HTTP_POOLS",
    "INTERCHANGEABLE_ROLES",
    "TOXIC_CHOICES",
    "Action",
    "GeneratorSettings",
    "Schedule",
    "ScheduleError",
    "ScheduleOutcome",
    "ScheduleRunner",
    "Step",
    "StepResult",
    "down_at",
    "generate_schedule",
    "parse_schedule",
    "parse_time",
    "run_schedule",
]
