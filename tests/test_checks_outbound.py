"""Outbound delivery: lost, duplicated (both ways), unexpected replies; leniency for uncertain contacts."""

from __future__ import annotations

import msgspec
import pytest

from resilience.checks import outbound
from resilience.checks.result import Validity
from resilience.checks.synthetic import FAVORITES, WorldBuilder, clean_world
from resilience.history import FAIL, INFO
from resilience.snapshot import Delivery, Snapshot

URN = "tel:+250780000001"


def redelivered(snapshot: Snapshot, original: Delivery, **changes: object) -> None:
    """Append a later arrival of `original` (same message unless changes say otherwise)."""
    last = max(d.seq for d in snapshot.aggregator)
    snapshot.aggregator.append(
        msgspec.structs.replace(original, seq=last + 1, received_wall_ns=original.received_wall_ns + 10**9, **changes)
    )


def test_clean_world_is_valid() -> None:
    history, snapshot = clean_world(3, conversations_each=2)
    result = outbound.check(history, snapshot)
    assert result.valid is Validity.TRUE
    assert result.counts["owed"] == result.counts["delivered"] == 24
    assert result.counts["duplicates"] == result.counts["lost"] == result.counts["unexpected"] == 0
    assert result.counts["outbound_rows"] == 24 and result.counts["wired_not_received"] == 0


def test_a_lost_reply_is_false_after_quiescence_and_unknown_before() -> None:
    history, snapshot = clean_world(3)
    victim = snapshot.aggregator.pop(5)
    result = outbound.check(history, snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["lost"] == 1 and result.counts["delivered"] == result.counts["owed"] - 1
    assert result.examples[0] == {"kind": "lost", "urn": victim.to, "text": victim.text, "owed": 1, "maybe_owed": 0,
                                  "arrived": 0}  # fmt: skip
    assert result.counts["wired_not_received"] == 1  # the DB says W, the network never saw it
    snapshot.quiescent = False
    assert outbound.check(history, snapshot).valid is Validity.UNKNOWN


def test_the_same_message_delivered_twice_is_a_duplicate() -> None:
    history, snapshot = clean_world(2)
    redelivered(snapshot, snapshot.aggregator[1])
    result = outbound.check(history, snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["duplicate_deliveries"] == 1 and result.counts["duplicate_replies"] == 0
    assert result.counts["duplicate_deliveries_after_success"] == 1
    assert result.counts["duplicates"] == 1 and result.counts["lost"] == 0
    assert outbound.check(history, snapshot, {"allowed_duplicates": 1}).valid is Validity.TRUE


def test_a_resend_after_an_error_answer_is_a_duplicate_but_not_after_success() -> None:
    history, snapshot = clean_world(1)
    first = snapshot.aggregator[0]
    first.answer = "500"
    redelivered(snapshot, first, answer="200")
    result = outbound.check(history, snapshot)
    assert result.counts["duplicate_deliveries"] == 1
    assert result.counts["duplicate_deliveries_after_success"] == 0


def test_one_owed_reply_under_two_message_ids_is_a_duplicate() -> None:
    history, snapshot = clean_world(2)
    redelivered(snapshot, snapshot.aggregator[0], msg_id="424242")
    result = outbound.check(history, snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["duplicate_replies"] == 1 and result.counts["duplicate_deliveries"] == 0
    assert result.examples[0]["kind"] == "duplicate_replies"
    assert outbound.check(history, snapshot, {"allowed_duplicates": 1}).valid is Validity.TRUE


def test_a_reply_nobody_owed_is_unexpected() -> None:
    history, snapshot = clean_world(2)
    redelivered(snapshot, snapshot.aggregator[0], msg_id="777", text="Sorry, I don't understand")
    result = outbound.check(history, snapshot)
    assert result.valid is Validity.FALSE and result.counts["unexpected"] == 1
    assert outbound.check(history, snapshot, {"allow_unexpected": True}).valid is Validity.TRUE


def test_replies_to_a_message_of_unknown_outcome_are_allowed_either_way() -> None:
    for accepted in (True, False):
        world = WorldBuilder()
        first = FAVORITES[0]
        world.mo(
            URN, "favorites [a.0]", conversation="a", step=0, expect=first.replies, outcome=INFO, accepted=accepted
        )
        world.advance(5)
        # The contact got nothing back, so it says it again: a second attempt at the same step.
        world.mo(URN, "favorites [a.0'] ", conversation="a", step=0, expect=first.replies)
        result = outbound.check(world.recorded(), world.snapshot())
        assert result.valid is Validity.TRUE, (accepted, result.counts)
        assert result.counts["duplicate_replies"] == 0


def test_a_lost_reply_for_an_uncertain_contact_is_unknown_not_false() -> None:
    world = WorldBuilder()
    world.conversation(URN, "a", outcomes={1: INFO})  # not accepted: the flow never moved past step 0
    history, snapshot = world.recorded(), world.snapshot()
    snapshot.aggregator.pop()
    result = outbound.check(history, snapshot)
    assert result.valid is Validity.UNKNOWN
    assert result.counts["lost_indeterminate"] == 1 and result.counts["lost"] == 0


def test_replies_owed_only_by_a_rejected_message_are_unknown() -> None:
    world = WorldBuilder()
    world.mo(URN, "favorites [a.0]", conversation="a", step=0, expect=FAVORITES[0].replies, outcome=FAIL, accepted=True)
    result = outbound.check(world.recorded(), world.snapshot())
    assert result.valid is Validity.UNKNOWN and result.counts["replies_to_failed"] == 1


def test_replies_to_contacts_the_history_never_mentions_are_counted_not_judged() -> None:
    history, snapshot = clean_world(2)
    redelivered(snapshot, snapshot.aggregator[0], msg_id="888", to="tel:+19995550000")
    result = outbound.check(history, snapshot)
    assert result.valid is Validity.TRUE
    assert result.counts["unowned_deliveries"] == 1 and result.counts["unexpected"] == 0


def test_courier_to_field_without_scheme_matches_the_tel_urn() -> None:
    history, snapshot = clean_world(2)
    for delivery in snapshot.aggregator:
        delivery.to = delivery.to.removeprefix("tel:")
    assert outbound.check(history, snapshot).valid is Validity.TRUE


def test_nothing_owed_and_nothing_delivered_is_unknown() -> None:
    world = WorldBuilder()
    world.mo(URN, "hello", conversation="a", step=0, expect=())
    assert outbound.check(world.recorded(), world.snapshot()).valid is Validity.UNKNOWN


@pytest.mark.parametrize("bad", [{"allowed_duplicates": -0.5}, {"allow_unexpected": "yes"}])
def test_bad_option_values_are_refused(bad: dict[str, object]) -> None:
    history, snapshot = clean_world(1)
    with pytest.raises(ValueError, match="outbound"):
        outbound.check(history, snapshot, bad)
