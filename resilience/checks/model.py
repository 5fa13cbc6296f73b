"""The checkers' typed view of a history: workload exchanges (f "mo" and "start") and fault windows.

Malformed workload or nemesis values raise HistoryError naming the file line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import msgspec

from resilience.history import FAIL, INFO, INJECT, NEMESIS, OK, RECOVER, HistoryError, Operation, RecordedHistory

MO = "mo"
START = "start"
NS_PER_S = 1_000_000_000
# A gateway (HAProxy, nginx) answers these after it may already have passed the request on: the
# message may have been stored, so such a `fail` is judged as `info`.
GATEWAY_UNCERTAIN_STATUSES = frozenset({502, 504})


class _ExchangeValue(msgspec.Struct, gc=False, kw_only=True):
    conversation: str | int | None = None
    step: int = 0
    expect: tuple[str, ...] = ()
    final: bool = False


class MoValue(_ExchangeValue, gc=False, kw_only=True):
    """What an `mo` invocation records (docs/history.md)."""

    urn: str
    text: str
    flow: str | None = None

    @property
    def urns(self) -> tuple[str, ...]:
        return (self.urn,)


class StartValue(_ExchangeValue, gc=False, kw_only=True):
    """What a `start` invocation records (docs/history.md)."""

    flow: str
    urns: tuple[str, ...]


class Exchange(msgspec.Struct, gc=False):
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
    msg_uuid: str | None  # courier's acknowledgement of an ok MO
    invoke_time: int
    end_time: int | None

    @property
    def urn(self) -> str:
        return self.urns[0]


@dataclass(slots=True)
class FaultWindow:
    """One fault from its `inject` to its `recover` (nemesis operations paired by value.id)."""

    id: str
    kind: str
    targets: list[Any]
    inject_outcome: str
    start: int  # the inject's invocation: the earliest the fault can have taken effect
    end: int | None  # the recover's ok completion: the latest it may still act; None = never surely removed
    # When the inject took hold (its own report, else its completion; None: it never completed): a
    # failover's primary is gone from then on.
    injected: int | None = None
    # The inject's other parameters (a toxic's proxy and type, a failover's mode): what a fault is "on"
    # besides its target nodes, e.g. the `redis` of `toxic redis timeout`.
    params: dict[str, Any] = field(default_factory=dict)

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
    faults: list[FaultWindow]  # by injection time

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
    def applied_faults(self) -> list[FaultWindow]:
        return [f for f in self.faults if f.applied]

    @cached_property
    def uncertain_urns(self) -> frozenset[str]:
        """URNs whose flow may have left the script, so that the replies they are owed are not certain:
        an exchange of unknown outcome (the flow may have taken it), or a step sent again after an
        accepted attempt (the flow takes the second copy as the answer to its next question).
        """
        return frozenset(
            urn
            for urn, exchanges in self.by_urn.items()
            if any(e.outcome == INFO for e in exchanges) or extra_copies(exchanges)
        )

    @cached_property
    def by_urn(self) -> dict[str, list[Exchange]]:
        """Each URN's exchanges, by invocation time (an API start naming several URNs is in each)."""
        grouped: dict[str, list[Exchange]] = {}
        for exchange in self.exchanges:
            for urn in exchange.urns:
                found = grouped.get(urn)
                if found is None:
                    grouped[urn] = [exchange]
                else:
                    found.append(exchange)
        return grouped


def extra_copies(exchanges: list[Exchange]) -> list[Exchange]:
    """The accepted exchanges that repeat a step already accepted (a contact resending on silence), in
    order: the flow may take such a copy as the answer to its next question."""
    seen: set[tuple[str | None, int]] = set()
    copies = []
    for exchange in exchanges:
        if exchange.outcome != OK:
            continue
        step = (exchange.conversation, exchange.step)
        if step in seen:
            copies.append(exchange)
        seen.add(step)
    return copies


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
    invoke, completion = operation.invoke, operation.completion
    schema: type[MoValue] | type[StartValue] = MoValue if invoke.f == MO else StartValue
    try:
        value = msgspec.convert(invoke.value, schema)
    except msgspec.ValidationError as exc:
        raise _bad(history, operation, f"value is not as docs/history.md describes: {exc}") from None
    outcome = completion.type if completion is not None else INFO
    msg_uuid = None
    if completion is not None and type(completion.value) is dict:
        if outcome == OK:
            msg_uuid = completion.value.get("msg_uuid")
        elif outcome == FAIL and completion.value.get("status") in GATEWAY_UNCERTAIN_STATUSES:
            outcome = INFO
    conversation = value.conversation
    return Exchange(
        invoke.index,
        invoke.f,
        invoke.process,
        outcome,
        value.urns,
        value.text if isinstance(value, MoValue) else None,
        conversation if conversation is None or type(conversation) is str else str(conversation),
        value.step,
        value.expect,
        value.flow,
        value.final,
        msg_uuid if type(msg_uuid) is str else None,
        invoke.time,
        completion.time if completion is not None else None,
    )


def _took_hold(inject: Operation) -> int | None:
    """When a completed inject took hold: the moment it reports (`took_hold_after_s` from its invocation, e.g.
    when a failover killed its primary), else its completion; None when it did not complete."""
    if inject.type != OK:
        return None
    after = inject.result.get("took_hold_after_s")
    if isinstance(after, int | float) and not isinstance(after, bool) and after >= 0:
        return inject.invoke.time + int(after * 1e9)
    return inject.end_time


def _faults(nemesis: list[Operation], history: RecordedHistory) -> list[FaultWindow]:
    faults: dict[str, FaultWindow] = {}
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
            faults[fault_id] = FaultWindow(
                id=fault_id,
                kind=kind,
                targets=targets if isinstance(targets, list) else [targets],
                inject_outcome=operation.type,
                start=operation.invoke.time,
                end=None,
                injected=_took_hold(operation),
                params={k: v for k, v in value.items() if k not in ("id", "fault", "targets")},
            )
        else:
            fault = faults.get(fault_id)
            if fault is None:
                raise _bad(history, operation, f"recovers fault id {fault_id!r}, which was never injected")
            if operation.type == OK and operation.end_time is not None:
                fault.end = operation.end_time
            # fail/info: the fault may still be in place; the window stays open.
    return list(faults.values())
