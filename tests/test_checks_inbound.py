"""Inbound delivery: each finding both ways, on synthetic worlds with one planted problem."""

from __future__ import annotations

import msgspec
import pytest

from resilience.checks import inbound
from resilience.checks.options import OptionsError
from resilience.checks.result import Validity
from resilience.checks.synthetic import WorldBuilder, clean_world
from resilience.history import FAIL, INFO, HistoryError
from resilience.snapshot import Msg, Snapshot


def inbound_rows(snapshot: Snapshot) -> list[Msg]:
    return [m for m in snapshot.msgs if m.direction == "I"]


def copy_of(row: Msg, **changes: object) -> Msg:
    return msgspec.structs.replace(row, id=row.id + 100_000, **changes)


def test_clean_world_is_valid() -> None:
    history, snapshot = clean_world(4)
    result = inbound.check(history, snapshot)
    assert result.valid is Validity.TRUE
    assert result.counts["mos"] == 16 and result.counts["ok_present"] == 16
    assert result.counts["lost"] == result.counts["duplicate_rows"] == result.counts["unhandled"] == 0
    assert result.examples == []


def test_a_lost_acknowledged_mo_is_false() -> None:
    history, snapshot = clean_world(3)
    victim = inbound_rows(snapshot)[4]
    snapshot.msgs.remove(victim)
    result = inbound.check(history, snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["lost"] == 1
    (example,) = result.examples
    assert example["kind"] == "lost" and example["text"] == victim.text and example["msg_uuid"] == victim.uuid
    assert result.details["lost_ops"] == [example["op"]]


def test_a_missing_row_before_quiescence_is_unknown() -> None:
    history, snapshot = clean_world(3)
    snapshot.msgs.remove(inbound_rows(snapshot)[0])
    snapshot.quiescent = False  # it may still sit in courier's spool
    assert inbound.check(history, snapshot).valid is Validity.UNKNOWN


@pytest.mark.parametrize("same_uuid", [True, False], ids=["spool-replay-same-uuid", "same-text-new-uuid"])
def test_a_duplicated_row_is_false_even_before_quiescence(same_uuid: bool) -> None:
    history, snapshot = clean_world(3)
    original = inbound_rows(snapshot)[2]
    snapshot.msgs.append(copy_of(original) if same_uuid else copy_of(original, uuid="another-uuid"))
    snapshot.quiescent = False
    result = inbound.check(history, snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["duplicated"] == 1 and result.counts["duplicate_rows"] == 1
    assert len(result.examples[0]["rows"]) == 2


def test_allowed_duplicates_tolerates_exactly_that_many() -> None:
    history, snapshot = clean_world(3)
    rows = inbound_rows(snapshot)
    snapshot.msgs.append(copy_of(rows[0]))
    assert inbound.check(history, snapshot, {"allowed_duplicates": 1}).valid is Validity.TRUE
    snapshot.msgs.append(copy_of(rows[1]))
    assert inbound.check(history, snapshot, {"allowed_duplicates": 1}).valid is Validity.FALSE


def test_info_mos_may_be_present_or_absent() -> None:
    world = WorldBuilder()
    world.conversation("tel:+250780000001", "a", outcomes={1: INFO})  # not accepted
    world.mo("tel:+250780000002", "hello [b.0]", conversation="b", step=0, expect=("Hi",), outcome=INFO, accepted=True)
    world.mo("tel:+250780000003", "hello [c.0]", conversation="c", step=0, expect=("Hi",))
    result = inbound.check(world.recorded(), world.snapshot())
    assert result.valid is Validity.TRUE
    assert result.counts["info_absent"] == 1 and result.counts["info_present"] == 1
    assert result.counts["lost"] == 0


def test_a_rejected_mo_that_was_stored_anyway_is_false_unless_allowed() -> None:
    world = WorldBuilder()
    world.mo("tel:+250780000001", "x [a.0]", conversation="a", step=0, expect=(), outcome=FAIL, accepted=True)
    world.mo("tel:+250780000001", "y [a.1]", conversation="a", step=1, expect=())
    history, snapshot = world.recorded(), world.snapshot()
    result = inbound.check(history, snapshot)
    assert result.valid is Validity.FALSE and result.counts["recovered"] == 1
    assert result.examples[0]["kind"] == "recovered" and result.examples[0]["outcome"] == FAIL
    assert inbound.check(history, snapshot, {"failed_must_be_absent": False}).valid is Validity.TRUE


def test_a_rejected_mo_absent_is_fine() -> None:
    world = WorldBuilder()
    world.mo("tel:+250780000001", "x [a.0]", conversation="a", step=0, expect=(), outcome=FAIL)
    world.mo("tel:+250780000001", "y [a.1]", conversation="a", step=0, expect=())
    result = inbound.check(world.recorded(), world.snapshot())
    assert result.valid is Validity.TRUE and result.counts["fail_absent"] == 1


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_failure_is_judged_as_unknown(status: int) -> None:
    # The load balancer answered after it may have passed the request to courier, which stored it.
    world = WorldBuilder()
    world.mo("tel:+250780000001", "x [a.0]", conversation="a", step=0, expect=(), outcome=FAIL, accepted=True,
             fail_status=status)  # fmt: skip
    world.mo("tel:+250780000001", "y [a.1]", conversation="a", step=1, expect=())
    result = inbound.check(world.recorded(), world.snapshot())
    assert result.valid is Validity.TRUE
    assert result.counts["fail"] == 0 and result.counts["info_present"] == 1 and result.counts["recovered"] == 0


def test_a_message_never_handled_is_false_after_quiescence_only() -> None:
    history, snapshot = clean_world(2)
    inbound_rows(snapshot)[3].status = "P"
    result = inbound.check(history, snapshot)
    assert result.valid is Validity.FALSE and result.counts["unhandled"] == 1
    assert inbound.check(history, snapshot, {"allowed_unhandled": 1}).valid is Validity.TRUE
    snapshot.quiescent = False
    assert inbound.check(history, snapshot).valid is Validity.UNKNOWN


def test_a_row_found_by_text_under_another_uuid_is_present_but_noted() -> None:
    history, snapshot = clean_world(2)
    inbound_rows(snapshot)[0].uuid = "rewritten"
    result = inbound.check(history, snapshot)
    assert result.valid is Validity.TRUE
    assert result.counts["uuid_mismatch"] == 1 and result.counts["lost"] == 0


def test_texts_sent_twice_match_by_uuid_only() -> None:
    world = WorldBuilder()
    world.mo("tel:+250780000001", "same", conversation="a", step=0, expect=())
    world.mo("tel:+250780000001", "same", conversation="a", step=1, expect=())
    history, snapshot = world.recorded(), world.snapshot()
    result = inbound.check(history, snapshot)
    assert result.valid is Validity.TRUE and result.counts["ambiguous_texts"] == 1
    snapshot.msgs.pop()
    assert inbound.check(history, snapshot).counts["lost"] == 1


def test_rows_no_mo_accounts_for_are_counted_not_judged() -> None:
    history, snapshot = clean_world(1)
    snapshot.msgs.append(Msg(999, "probe-uuid", "I", "H", "steady-state probe", "tel:+1999"))
    result = inbound.check(history, snapshot)
    assert result.valid is Validity.TRUE and result.counts["unclaimed_rows"] == 1


def test_nothing_to_judge_is_unknown() -> None:
    world = WorldBuilder()
    assert inbound.check(world.recorded(), world.snapshot()).valid is Validity.UNKNOWN
    world.mo("tel:+250780000001", "a [x.0]", conversation="x", step=0, expect=(), outcome=INFO, accepted=False)
    assert inbound.check(world.recorded(), world.snapshot()).valid is Validity.UNKNOWN


def test_bad_options_and_bad_values_are_reported() -> None:
    history, snapshot = clean_world(1)
    with pytest.raises(OptionsError, match=r"inbound: unknown option\(s\) \['allowed_dupes'\]"):
        inbound.check(history, snapshot, {"allowed_dupes": 1})
    with pytest.raises(OptionsError, match=r"inbound.allowed_duplicates: 'one' is not int"):
        inbound.check(history, snapshot, {"allowed_duplicates": "one"})
    world = WorldBuilder()
    world.history.invoke("contact-1", "mo", {"text": "no urn"})
    with pytest.raises(HistoryError, match=r"<memory>:2 \(op 0\): mo invocation value .*missing required field `urn`"):
        inbound.check(world.recorded(), world.snapshot())
