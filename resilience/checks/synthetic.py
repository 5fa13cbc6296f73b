"""Synthetic worlds: a history and the snapshot an ideal RapidPro would leave for it.

Used by the checkers' tests (which then plant one problem in the snapshot or the history and expect the
verdict to turn) and by benchmarks/checkers.py. Time is virtual: the recorder's clock is the builder's.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resilience.checks.model import NS_PER_S
from resilience.history import FAIL, INFO, INJECT, NEMESIS, OK, RECOVER, CompletionType, History, RecordedHistory
from resilience.snapshot import Delivery, Direction, Msg, MsgStatus, Run, Session, Snapshot

FLOW_UUID = "aef60b1e-14ab-4095-81ee-fce02b3e320d"
FLOW_NAME = "Favorites"


@dataclass(frozen=True)
class ScriptStep:
    answer: str  # what the contact sends (made unique per operation by the builder)
    replies: tuple[str, ...]  # what the flow answers, in order


FAVORITES: tuple[ScriptStep, ...] = (
    ScriptStep("favorites", ("What is your favorite color?",)),
    ScriptStep("red", ("Good choice, I like Red too! What is your favorite beer?",)),
    ScriptStep("primus", ("Mmmmm... delicious Primus. If only they made red Primus! Lastly, what is your name?",)),
    ScriptStep("Ben", ("Thanks Ben, we are all done!",)),
)


class WorldBuilder:
    """Records operations and, for each message RapidPro accepts, the rows and deliveries it would make."""

    def __init__(
        self,
        *,
        seed: int = 0,
        path: Path | str | None = None,
        keep_in_memory: bool = True,
        script: tuple[ScriptStep, ...] = FAVORITES,
        reply_delay_s: float = 0.4,
        request_s: float = 0.02,
    ) -> None:
        self.now = 1_000 * NS_PER_S
        self.random = random.Random(seed)
        self.history = History(
            path, run_id=f"synthetic-{seed}", seed=seed, clock=lambda: self.now, keep_in_memory=keep_in_memory
        )
        self.script = script
        self.reply_delay_ns = int(reply_delay_s * NS_PER_S)
        self.request_ns = int(request_s * NS_PER_S)
        self.msgs: list[Msg] = []
        self.runs: dict[tuple[str, str], Run] = {}
        self.sessions: dict[tuple[str, str], Session] = {}
        self.deliveries: list[Delivery] = []
        self._next_msg_id = 1

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * NS_PER_S)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def mo(
        self,
        urn: str,
        text: str,
        *,
        conversation: str,
        step: int,
        expect: tuple[str, ...],
        final: bool = False,
        outcome: CompletionType = OK,
        accepted: bool | None = None,
        process: str | None = None,
        flow: str | None = FLOW_UUID,
        fail_status: int = 400,
        meanwhile: Callable[[], None] | None = None,
    ) -> Msg | None:
        """Send one MO. `accepted` says whether RapidPro really took it (default: outcome is ok);
        `fail_status` is the HTTP status a failed MO records; `meanwhile` runs while the request is in
        flight, after its invocation and before its completion (e.g. a failover's inject taking hold)."""
        accepted = outcome == OK if accepted is None else accepted
        value = {"urn": urn, "text": text, "conversation": conversation, "step": step, "expect": list(expect)}
        if flow is not None:
            value["flow"] = flow
        if final:
            value["final"] = True
        op = self.history.invoke(process or f"contact-{urn[-6:]}", "mo", value)
        if meanwhile is not None:
            meanwhile()
        self.now += self.request_ns
        row = self._accept(urn, text, expect, conversation, step, final, flow) if accepted else None
        if outcome == OK:
            assert row is not None, "an ok MO must be accepted"
            self.history.complete(op, OK, {"msg_uuid": row.uuid, "status": 200})
        elif outcome == FAIL:
            self.history.complete(op, FAIL, {"status": fail_status, "error": "rejected"})
        else:
            self.history.complete(op, INFO, {"error": "timeout"})
        return row

    def _accept(
        self, urn: str, text: str, replies: tuple[str, ...], conversation: str, step: int, final: bool, flow: str | None
    ) -> Msg:
        row = self._row(urn, "I", "H", text)
        arrival = self.now + self.reply_delay_ns
        for reply in replies:
            out = self._row(urn, "O", "W", reply)
            self.deliveries.append(Delivery(0, str(out.id), urn, reply, self.history.header.mono_to_wall_ns(arrival)))
            arrival += self.request_ns
        key = (urn, conversation)
        if step == 0 or key not in self.runs:
            self.runs[key] = Run(self._uuid(), flow or FLOW_UUID, "W", urn, FLOW_NAME)
            self.sessions[key] = Session(self._uuid(), "W", urn)
        if final:
            self.runs[key].status = "C"
            self.sessions[key].status = "C"
        return row

    def _row(self, urn: str, direction: Direction, status: MsgStatus, text: str) -> Msg:
        row = Msg(self._next_msg_id, self._uuid(), direction, status, text, urn)
        self._next_msg_id += 1
        self.msgs.append(row)
        return row

    def conversation(
        self,
        urn: str,
        conversation: str,
        *,
        steps: int | None = None,
        gap_s: float = 1.0,
        outcomes: dict[int, CompletionType] | None = None,
    ) -> None:
        """Walk the script (or its first `steps` steps: an abandoned conversation), one step per gap."""
        script = self.script[: steps if steps is not None else len(self.script)]
        for number, step in enumerate(script):
            self.mo(
                urn,
                f"{step.answer} [{conversation}.{number}]",
                conversation=conversation,
                step=number,
                expect=step.replies,
                final=number == len(self.script) - 1,
                outcome=(outcomes or {}).get(number, OK),
            )
            self.advance(gap_s)

    def inject(self, kind: str, fault_id: str, targets: list[str], outcome: CompletionType = OK) -> None:
        op = self.history.invoke(NEMESIS, INJECT, {"fault": kind, "id": fault_id, "targets": targets})
        self.now += self.request_ns
        self.history.complete(op, outcome, {"fault": kind, "id": fault_id})

    def inject_begins(self, kind: str, fault_id: str, targets: list[str]) -> Any:
        """An inject that takes a while (a failover): conversations may run before `inject_ends(op, ...)`."""
        return self.history.invoke(NEMESIS, INJECT, {"fault": kind, "id": fault_id, "targets": targets})

    def inject_ends(self, op: Any, kind: str, fault_id: str, result: dict[str, Any] | None = None) -> None:
        self.history.complete(op, OK, {"fault": kind, "id": fault_id, **(result or {})})

    def recover(self, fault_id: str, kind: str = "", outcome: CompletionType = OK) -> None:
        op = self.history.invoke(NEMESIS, RECOVER, {"fault": kind, "id": fault_id})
        self.now += self.request_ns
        self.history.complete(op, outcome, {"id": fault_id})

    def snapshot(self, *, quiescent: bool = True, logs: dict[str, list[str]] | None = None) -> Snapshot:
        """The final state: deliveries numbered in arrival order."""
        arrived = sorted(self.deliveries, key=lambda d: d.received_wall_ns)
        aggregator = [Delivery(seq, d.msg_id, d.to, d.text, d.received_wall_ns) for seq, d in enumerate(arrived)]
        return Snapshot(
            msgs=list(self.msgs),
            runs=list(self.runs.values()),
            sessions=list(self.sessions.values()),
            aggregator=aggregator,
            quiescent=quiescent,
            logs=logs,
        )

    def recorded(self) -> RecordedHistory:
        return self.history.recorded()


def clean_world(contacts: int, *, seed: int = 0, conversations_each: int = 1) -> tuple[RecordedHistory, Snapshot]:
    """Contacts that each walk the whole script, step by step in lockstep, with nothing going wrong."""
    builder = WorldBuilder(seed=seed)
    last = len(builder.script) - 1
    for round_number in range(conversations_each):
        for number, step in enumerate(builder.script):
            for contact in range(contacts):
                conversation = f"c{contact}-{round_number}"
                builder.mo(
                    f"tel:+25078{contact:07d}",
                    f"{step.answer} [{conversation}.{number}]",
                    conversation=conversation,
                    step=number,
                    expect=step.replies,
                    final=number == last,
                )
            builder.advance(1.0)
    return builder.recorded(), builder.snapshot()
