"""A schedule: timed inject and recover steps, however it was made (the text form or the seeded generator)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from resilience.faults.base import BaseFault

if TYPE_CHECKING:
    from resilience.topology import Topology

Action = Literal["inject", "recover"]


class ScheduleError(ValueError):
    """A schedule is malformed or does not fit the topology; lists every problem with its line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclasses.dataclass(frozen=True)
class Step:
    at: float  # seconds from the start of the schedule
    action: Action
    fault: BaseFault
    line: int = 0  # where the text form wrote it (0: generated)


@dataclasses.dataclass
class Schedule:
    steps: list[Step]
    seed: int | None = None  # set for a generated schedule: the same seed gives the same schedule
    source: str = "<schedule>"
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)  # the generator's settings

    def __post_init__(self) -> None:
        # Stable: at equal times the text's order (and an inject before its own recover) is kept.
        self.steps = sorted(self.steps, key=lambda s: s.at)

    def faults(self) -> list[BaseFault]:
        return [s.fault for s in self.steps if s.action == "inject"]

    @property
    def duration(self) -> float:
        return self.steps[-1].at if self.steps else 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "source": self.source,
            "parameters": self.parameters,
            "steps": [{"at": s.at, "action": s.action, "fault": s.fault.describe()} for s in self.steps],
        }

    def to_text(self) -> str:
        """The text form (parse_schedule reads it back to an equal schedule)."""
        lines = [f"# seed {self.seed}"] if self.seed is not None else []
        for step in self.steps:
            if step.action == "inject":
                args = " ".join([step.fault.kind, *step.fault.to_args()])
                lines.append(f"at {format_seconds(step.at)} {args} as {step.fault.id}")
            else:
                lines.append(f"recover {step.fault.id} at {format_seconds(step.at)}")
        return "\n".join(lines) + "\n"

    def check(self, topology: Topology) -> None:
        """Raise ScheduleError if a fault names what the topology does not have."""
        problems = [
            f"{self.source}:{step.line}: {problem}" if step.line else f"{self.source}: {step.fault.id}: {problem}"
            for step in self.steps
            if step.action == "inject"
            for problem in step.fault.check_topology(topology)
        ]
        if problems:
            raise ScheduleError(problems)


def format_seconds(value: float) -> str:
    return f"{value:g}"
