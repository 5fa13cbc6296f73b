"""Properties over generated worlds: no false alarm on an undisturbed run whatever the outcomes, verdicts
independent of interleaving, tolerance of truncation, and planted losses and duplicates always caught."""

from __future__ import annotations

import dataclasses
import random
import warnings
from collections import Counter
from collections.abc import Mapping

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resilience.checks import inbound, outbound, run_all
from resilience.checks.result import Validity, merge
from resilience.checks.synthetic import FAVORITES, WorldBuilder
from resilience.history import FAIL, INFO, OK, CompletionType, HistoryError, Op, RecordedHistory, parse_history
from resilience.snapshot import Snapshot

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What happens to one step: its completion and whether RapidPro really took the message.
STEP_FATES: list[tuple[CompletionType, bool]] = [
    (OK, True),
    (OK, True),
    (OK, True),
    (FAIL, False),
    (INFO, True),
    (INFO, False),
]


@dataclasses.dataclass(frozen=True)
class Plan:
    contacts: list[list[tuple[CompletionType, bool]]]  # per contact, the fate of each step it sends
    order: list[int]  # which contact acts next (each appears once per step it sends)
    gaps: list[float]


@st.composite
def plans(draw: st.DrawFn, fates: list[tuple[CompletionType, bool]] = STEP_FATES) -> Plan:
    contacts = draw(
        st.lists(st.lists(st.sampled_from(fates), min_size=1, max_size=len(FAVORITES)), min_size=1, max_size=6)
    )
    turns = [number for number, steps in enumerate(contacts) for _ in steps]
    order = draw(st.permutations(turns))
    gaps = draw(st.lists(st.floats(0.0, 3.0), min_size=len(turns), max_size=len(turns)))
    return Plan(contacts, list(order), gaps)


def build(plan: Plan, order: list[int] | None = None, seed: int = 0) -> tuple[RecordedHistory, Snapshot]:
    world = WorldBuilder(seed=seed)
    next_step = Counter[int]()
    for contact, gap in zip(order or plan.order, plan.gaps, strict=True):
        step = next_step[contact]
        next_step[contact] += 1
        outcome, accepted = plan.contacts[contact][step]
        world.mo(
            f"tel:+25078{contact:07d}",
            f"{FAVORITES[step].answer} [{contact}.{step}]",
            conversation=str(contact),
            step=step,
            expect=FAVORITES[step].replies,
            final=step == len(FAVORITES) - 1,
            outcome=outcome,
            accepted=accepted,
        )
        world.advance(gap)
    return world.recorded(), world.snapshot()


def summary(
    history: RecordedHistory, snapshot: Snapshot, names: tuple[str, ...]
) -> list[tuple[str, Validity, Mapping[str, float]]]:
    return [(r.name, r.valid, r.counts) for r in run_all(history, snapshot, only=names)]


@SETTINGS
@given(plans())
def test_an_undisturbed_run_never_raises_a_false_alarm(plan: Plan) -> None:
    history, snapshot = build(plan)
    results = run_all(history, snapshot, only=["inbound", "outbound", "continuity", "availability", "latency"])
    assert merge(results) is not Validity.FALSE, [(r.name, r.counts) for r in results if r.valid is Validity.FALSE]


def reinterleave(history: RecordedHistory, rng: random.Random) -> RecordedHistory:
    """The same timed events written in another order: any order where each completion follows its
    invocation. Indexes are renumbered; times are kept."""
    completions = {op.invoke_index: op for op in history.ops if op.invoke_index is not None}
    ready = [op for op in history.ops if op.invoke_index is None]
    rng.shuffle(ready)
    order: list[Op] = []
    while ready:
        op = ready.pop(rng.randrange(len(ready)))
        order.append(op)
        if op.index in completions:
            ready.append(completions[op.index])
    renumbered: dict[int, int] = {}
    ops = []
    for position, op in enumerate(order):
        renumbered[op.index] = position
        invoke = renumbered[op.invoke_index] if op.invoke_index is not None else None
        ops.append(msgspec.structs.replace(op, index=position, invoke_index=invoke))
    return RecordedHistory(history.header, ops)


@SETTINGS
@given(plans(), st.randoms(use_true_random=False))
def test_the_order_records_were_written_in_does_not_matter(plan: Plan, rng: random.Random) -> None:
    history, snapshot = build(plan)
    names = ("inbound", "outbound", "continuity", "availability", "latency")
    assert summary(reinterleave(history, rng), snapshot, names) == summary(history, snapshot, names)


@SETTINGS
@given(plans(), st.randoms(use_true_random=False))
def test_how_contacts_interleave_does_not_change_the_delivery_verdicts(plan: Plan, rng: random.Random) -> None:
    other_order = list(plan.order)
    rng.shuffle(other_order)
    names = ("inbound", "outbound", "continuity")
    assert summary(*build(plan, other_order), names) == summary(*build(plan), names)


@SETTINGS
@given(plans(), st.integers(min_value=0))
def test_any_truncation_reads_back_and_checks_without_error(plan: Plan, cut_seed: int) -> None:
    history, snapshot = build(plan)
    text = "\n".join(
        [_json(history.header.to_record()), *(_json(op.to_record()) for op in history.ops)]
    ) + "\n"  # fmt: skip
    header_end = text.index("\n") + 1
    cut = cut_seed % (len(text) + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cut < header_end - 1:
            with pytest.raises(HistoryError):
                parse_history(text[:cut])
            return
        truncated = parse_history(text[:cut])
    kept = len(truncated.ops)
    assert [op.to_record() for op in truncated.ops] == [op.to_record() for op in history.ops[:kept]]
    assert text[:cut].count("\n") - 1 <= kept <= text[:cut].count("\n")
    results = run_all(truncated, snapshot)
    assert next(r for r in results if r.name == "inbound").valid is not Validity.FALSE


def _json(record: dict) -> str:
    import json

    return json.dumps(record, separators=(",", ":"))


@SETTINGS
@given(plans(), st.data())
def test_info_operations_never_make_inbound_false(plan: Plan, data: st.DataObject) -> None:
    history, snapshot = build(plan)
    # Turn some acknowledged MOs into unknowns and drop some of their rows: still never "lost".
    oks = [op for op in history.ops if op.type == OK]
    turned = data.draw(st.lists(st.sampled_from(oks), unique_by=lambda op: op.index) if oks else st.just([]))
    for op in turned:
        history.ops[op.index] = msgspec.structs.replace(op, type=INFO, value={"error": "ReadTimeout"})
        uuid = op.value["msg_uuid"]
        if data.draw(st.booleans()):
            snapshot.msgs = [m for m in snapshot.msgs if m.uuid != uuid]
    assert inbound.check(history, snapshot).valid is not Validity.FALSE


@SETTINGS
@given(plans(), st.data())
def test_injected_inbound_duplicates_are_always_caught(plan: Plan, data: st.DataObject) -> None:
    history, snapshot = build(plan)
    rows = [m for m in snapshot.msgs if m.direction == "I"]
    if not rows:
        return
    copies = data.draw(st.lists(st.sampled_from(rows), min_size=1, max_size=5))
    for number, row in enumerate(copies):
        keep_uuid = data.draw(st.booleans())
        snapshot.msgs.append(
            msgspec.structs.replace(row, id=10_000 + number, uuid=row.uuid if keep_uuid else f"replayed-{number}")
        )
    result = inbound.check(history, snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["duplicate_rows"] == len(copies)


@SETTINGS
@given(plans(), st.data())
def test_injected_redeliveries_are_always_caught(plan: Plan, data: st.DataObject) -> None:
    history, snapshot = build(plan)
    if not snapshot.aggregator:
        return
    again = data.draw(st.lists(st.sampled_from(snapshot.aggregator), min_size=1, max_size=5))
    last = len(snapshot.aggregator)
    for number, delivery in enumerate(again):
        snapshot.aggregator.append(msgspec.structs.replace(delivery, seq=last + number))
    result = outbound.check(history, snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["duplicate_deliveries"] == len(again)


@SETTINGS
@given(plans(fates=[(OK, True)]), st.data())
def test_planted_losses_are_always_caught(plan: Plan, data: st.DataObject) -> None:
    history, snapshot = build(plan)
    rows = [m for m in snapshot.msgs if m.direction == "I"]
    lost = data.draw(st.lists(st.sampled_from(rows), min_size=1, unique_by=lambda m: m.id))
    snapshot.msgs = [m for m in snapshot.msgs if m not in lost]
    result = inbound.check(history, snapshot)
    assert result.valid is Validity.FALSE and result.counts["lost"] == len(lost)
    replies = data.draw(st.lists(st.sampled_from(snapshot.aggregator), min_size=1, unique_by=lambda d: d.seq))
    snapshot.aggregator = [d for d in snapshot.aggregator if d not in replies]
    result = outbound.check(history, snapshot)
    assert result.valid is Validity.FALSE and result.counts["lost"] == len(replies)
