"""The checkers' typed view of a history: workload exchanges (f "mo" and "start") and fault windows.

Malformed workload or nemesis values raise HistoryError naming the file line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from resilience.history import FAIL, INFO, NEMESIS, OK, HistoryError, Operation, RecordedHistory

MO = "mo"
START = "start"
INJECT = "inject"
RECOVER = "recover"
NS_PER_S = 1_000_000_000


@dataclass(slots=True)
class Exchange:
    """One workload operation that may owe replies: an inbound SMS (mo) or an API flow start (start)."""

    index: int  # the invocation's index
    kind: str  # MO or START
    process: str
    outcome: str  # ok / fail / info (no completion counts as info)
    urns: tuple[str, ...]  # one for an MO
    text: str | None  # the MO's text; None for a start
    conversation: str | None
    step: int
    expect: tuple[str, ...]
    flow: str | None
    final: bool
    msg_uuid: str | None
    invoke_time: int
    end_time: int | None

    @property
    def urn(self) -> str:
        return self.urns[0]


@dataclass(slots=True)
class Fault:
    """One fault from its `inject` to its `recover` (nemesis operations paired by value.id)."""

    id: str
    kind: str
    targets: list[Any]
    inject_outcome: str
    start: int  # the inject's invocation: the earliest the fault can have taken effect
    end: int | None  # the recover's ok completion: the latest it may still act; None = never surely removed
    value: dict[str, Any]

    @property
    def applied(self) -> bool:
        return self.inject_outcome != FAIL

    def until(self, history_end: int) -> int:
        """The end of the fault's window [start, until): an open fault lasts past the last event."""
        return self.end if self.end is not None else history_end + 1


@dataclass(eq=False)
class HistoryView:
    history: RecordedHistory
    exchanges: list[Exchange]  # MO and start operations, by invocation time
    faults: list[Fault]  # by injection time

    @cached_property
    def mos(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.kind == MO]

    @property
    def origin(self) -> int:
        """Monotonic ns that seconds in reports count from: the history's anchor."""
        return self.history.header.mono_anchor_ns

    def seconds(self, mono_ns: int) -> float:
        return (mono_ns - self.origin) / NS_PER_S

    @property
    def applied_faults(self) -> list[Fault]:
        return [f for f in self.faults if f.applied]

    @cached_property
    def uncertain_urns(self) -> frozenset[str]:
        """URNs whose flow may have left the script, so that the replies they are owed are not certain:
        an exchange of unknown outcome (the flow may have taken it), or a step sent again after an
        attempt that was not rejected (the flow takes the second copy as the answer to its next question).
        """
        uncertain: set[str] = set()
        attempts: Counter[tuple[str, str | None, int]] = Counter()
        for exchange in self.exchanges:
            if exchange.outcome == INFO:
                uncertain.update(exchange.urns)
            if exchange.outcome != FAIL:
                for urn in exchange.urns:
                    key = (urn, exchange.conversation, exchange.step)
                    attempts[key] += 1
                    if attempts[key] > 1:
                        uncertain.add(urn)
        return frozenset(uncertain)


def view_of(history: RecordedHistory) -> HistoryView:
    exchanges: list[Exchange] = []
    nemesis: list[Operation] = []
    for operation in history.operations:
        if operation.process == NEMESIS:
            nemesis.append(operation)
        elif operation.f in (MO, START):
            exchanges.append(_exchange(operation, history))
    # By time, not by position in the file: a history is judged by when things happened, so any
    # interleaving of the same timed events gives the same verdict.
    exchanges.sort(key=lambda e: e.invoke_time)
    return HistoryView(history, exchanges, sorted(_faults(nemesis, history), key=lambda f: f.start))


def _bad(history: RecordedHistory, operation: Operation, problem: str) -> HistoryError:
    return HistoryError(f"{history.location(operation.invoke.index)}: {operation.f} invocation {problem}")


def _exchange(operation: Operation, history: RecordedHistory) -> Exchange:
    value = operation.invoke.value
    if not isinstance(value, dict):
        raise _bad(history, operation, f"value must be an object, got {value!r}")
    if operation.f == MO:
        urn, text = value.get("urn"), value.get("text")
        if not isinstance(urn, str) or not urn:
            raise _bad(history, operation, "needs 'urn' (a string like 'tel:+250788000001')")
        if not isinstance(text, str):
            raise _bad(history, operation, "needs 'text' (a string, unique within the run)")
        urns: tuple[str, ...] = (urn,)
    else:
        text = None
        raw_urns = value.get("urns")
        if not isinstance(raw_urns, list) or not raw_urns or not all(isinstance(u, str) for u in raw_urns):
            raise _bad(history, operation, "needs 'urns' (a non-empty list of strings)")
        urns = tuple(raw_urns)
    expect = value.get("expect", [])
    if not isinstance(expect, list) or not all(isinstance(t, str) for t in expect):
        raise _bad(history, operation, "'expect' must be a list of reply texts")
    step = value.get("step", 0)
    if not isinstance(step, int) or isinstance(step, bool):
        raise _bad(history, operation, f"'step' must be an integer, got {step!r}")
    conversation = value.get("conversation")
    flow = value.get("flow")
    if flow is not None and not isinstance(flow, str):
        raise _bad(history, operation, f"'flow' must be a flow uuid or name, got {flow!r}")
    if operation.f == START and flow is None:
        raise _bad(history, operation, "needs 'flow' (the flow uuid it starts)")
    result = operation.result
    msg_uuid = result.get("msg_uuid") if operation.type == OK else None
    return Exchange(
        index=operation.invoke.index,
        kind=operation.f,
        process=operation.process,
        outcome=operation.type,
        urns=urns,
        text=text,
        conversation=None if conversation is None else str(conversation),
        step=step,
        expect=tuple(expect),
        flow=flow,
        final=value.get("final") is True,
        msg_uuid=msg_uuid if isinstance(msg_uuid, str) else None,
        invoke_time=operation.invoke.time,
        end_time=operation.end_time,
    )


def _faults(nemesis: list[Operation], history: RecordedHistory) -> list[Fault]:
    faults: dict[str, Fault] = {}
    for operation in nemesis:
        value = operation.invoke.value
        if operation.f not in (INJECT, RECOVER):
            continue  # other nemesis bookkeeping (e.g. "cleanup") carries no window
        if not isinstance(value, dict) or not isinstance(value.get("id"), str | int):
            raise _bad(history, operation, "value needs 'id' (the fault id shared by inject and recover)")
        fault_id = str(value["id"])
        if operation.f == INJECT:
            if fault_id in faults:
                raise _bad(history, operation, f"reuses fault id {fault_id!r}")
            kind = value.get("fault")
            if not isinstance(kind, str):
                raise _bad(history, operation, "value needs 'fault' (the fault kind)")
            targets = value.get("targets", [])
            faults[fault_id] = Fault(
                id=fault_id,
                kind=kind,
                targets=targets if isinstance(targets, list) else [targets],
                inject_outcome=operation.type,
                start=operation.invoke.time,
                end=None,
                value=value,
            )
        else:
            fault = faults.get(fault_id)
            if fault is None:
                raise _bad(history, operation, f"recovers fault id {fault_id!r}, which was never injected")
            if operation.type == OK and operation.end_time is not None:
                fault.end = operation.end_time
            # fail/info: the fault may still be in place; the window stays open.
    return list(faults.values())
