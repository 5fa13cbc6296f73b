"""Playing a schedule against a run: monotonic timing, every step recorded, everything still active recovered
at the end or as soon as the player is stopped."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from resilience.faults.base import BaseFault
from resilience.faults.schedule.model import Action, Schedule

if TYPE_CHECKING:
    from resilience.faults.nemesis import Nemesis


@dataclasses.dataclass
class StepResult:
    at: float  # planned, seconds from the start
    started: float  # actual, seconds from the start
    action: Action
    fault_id: str
    kind: str
    ok: bool
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str = ""


@dataclasses.dataclass
class ScheduleOutcome:
    seed: int | None
    results: list[StepResult] = dataclasses.field(default_factory=list)
    cancelled: bool = False
    cleanup_errors: list[str] = dataclasses.field(default_factory=list)
    error: str = ""  # what stopped the player itself, if anything did

    @property
    def ok(self) -> bool:
        return not self.error and not self.cleanup_errors and all(r.ok for r in self.results)


def run_schedule(
    nemesis: Nemesis,
    schedule: Schedule,
    stop_event: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ScheduleOutcome:
    """Play `schedule` (blocking; run it in a thread, or use ScheduleRunner). A step that fails is recorded
    and the rest carry on. At the end, or once `stop_event` is set, every fault this run injected and
    that is still active is recovered, newest first."""
    stop_event = stop_event or threading.Event()
    # Faults learn state while injected (e.g. the primary): play a copy, so the schedule can be replayed.
    steps = copy.deepcopy(schedule.steps)
    outcome = ScheduleOutcome(seed=schedule.seed)
    injected: list[BaseFault] = []
    started = clock()
    try:
        for step in steps:
            delay = started + step.at - clock()
            if (delay > 0 and stop_event.wait(delay)) or stop_event.is_set():
                outcome.cancelled = True
                break
            result = StepResult(step.at, clock() - started, step.action, step.fault.id, step.fault.kind, True)
            active = {f.id for f in nemesis.active()}
            try:
                if step.action == "inject":
                    injected.append(step.fault)
                    result.facts = nemesis.inject(step.fault)
                elif step.fault.id in active:
                    result.facts = nemesis.recover(step.fault)
                else:
                    result.facts = {"note": "not active (its inject did not take place)"}
            except Exception as exc:  # recorded in the history by the nemesis; the schedule goes on
                result.ok, result.error = False, str(exc) or type(exc).__name__
            outcome.results.append(result)
    except BaseException as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        active = {f.id for f in nemesis.active()}
        for fault in reversed(injected):
            if fault.id in active:
                try:
                    nemesis.recover(fault)
                except Exception as exc:  # keep going: the others must still be recovered
                    outcome.cleanup_errors.append(f"{fault.kind} {fault.id}: {exc}")
    return outcome


class ScheduleRunner:
    """Plays a schedule in a background thread: `with ScheduleRunner(nemesis, schedule) as runner: ...`.

    Leaving the block (normally, by an exception or ^C) stops the schedule and waits for its recoveries.
    """

    def __init__(self, nemesis: Nemesis, schedule: Schedule) -> None:
        self.nemesis = nemesis
        self.schedule = schedule
        self.stop_event = threading.Event()
        self.outcome: ScheduleOutcome | None = None
        self._thread = threading.Thread(target=self._play, name="nemesis-schedule", daemon=True)

    def _play(self) -> None:
        try:
            self.outcome = run_schedule(self.nemesis, self.schedule, self.stop_event)
        except BaseException as exc:  # run_schedule has recovered what it could; keep the reason
            self.outcome = ScheduleOutcome(seed=self.schedule.seed, error=f"{type(exc).__name__}: {exc}")

    def start(self) -> ScheduleRunner:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the schedule to finish by itself; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> ScheduleOutcome:
        self.stop_event.set()
        self._thread.join()
        assert self.outcome is not None
        return self.outcome

    def __enter__(self) -> ScheduleRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
