"""Flow continuity: order, repeats, skips, stuck runs and sessions, DB agreement; lenient threads."""

from __future__ import annotations

import msgspec
import pytest

from resilience.checks import continuity
from resilience.checks.continuity import compare_replies
from resilience.checks.result import Validity
from resilience.checks.synthetic import FAVORITES, FLOW_UUID, WorldBuilder, clean_world
from resilience.history import FAIL, INFO
from resilience.snapshot import Delivery, Run, Snapshot

URN = "tel:+250780000001"


def deliveries_to(snapshot: Snapshot, urn: str) -> list[Delivery]:
    return sorted((d for d in snapshot.aggregator if d.to == urn), key=lambda d: d.seq)


def one_contact(**conversation: object) -> tuple[WorldBuilder, Snapshot]:
    world = WorldBuilder()
    world.conversation(URN, "a", **conversation)  # type: ignore[arg-type]
    world.conversation("tel:+250780000002", "b")
    return world, world.snapshot()


@pytest.mark.parametrize(
    ("expected", "seen", "shape", "repeated", "missing"),
    [
        ("abc", "abc", "in_order", 0, 0),
        ("abc", "ab", "incomplete", 0, 1),
        ("abc", "", "incomplete", 0, 3),
        ("abc", "ac", "skipped", 0, 1),
        ("abc", "acb", "reordered", 0, 0),
        ("abc", "abbc", "in_order", 1, 0),
        ("abc", "abcb", "in_order", 1, 0),
        ("abab", "abab", "in_order", 0, 0),
        ("abab", "aabb", "reordered", 0, 0),
        ("abab", "abb", "skipped", 0, 1),
        ("abc", "ba", "reordered", 0, 1),
    ],
)
def test_compare_replies(expected: str, seen: str, shape: str, repeated: int, missing: int) -> None:
    finding = compare_replies(list(expected), list(seen))
    assert (finding.shape, finding.repeated, finding.missing) == (shape, repeated, missing)


def test_clean_world_is_valid() -> None:
    history, snapshot = clean_world(4, conversations_each=2)
    result = continuity.check(history, snapshot)
    assert result.valid is Validity.TRUE
    assert result.counts["threads"] == result.counts["threads_in_order"] == 4
    assert result.counts["conversations"] == result.counts["conversations_ended"] == 8
    assert result.examples == []


def test_reordered_replies_are_false_even_before_quiescence() -> None:
    world, snapshot = one_contact()
    first, second = deliveries_to(snapshot, URN)[1:3]
    first.seq, second.seq = second.seq, first.seq
    snapshot.quiescent = False
    result = continuity.check(world.recorded(), snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["reordered"] == 1 and result.counts["threads_in_order"] == 1
    assert result.examples[0]["urn"] == URN and result.examples[0]["findings"] == {"reordered": 1}


def test_a_repeated_step_is_false_unless_allowed() -> None:
    world, snapshot = one_contact()
    again = deliveries_to(snapshot, URN)[1]
    snapshot.aggregator.append(msgspec.structs.replace(again, seq=10_000, msg_id="9999"))
    history = world.recorded()
    result = continuity.check(history, snapshot)
    assert result.valid is Validity.FALSE and result.counts["repeated"] == 1
    assert continuity.check(history, snapshot, {"allowed_repeated_steps": 1}).valid is Validity.TRUE


def test_a_redelivered_message_is_not_a_repeated_step() -> None:
    world, snapshot = one_contact()
    again = deliveries_to(snapshot, URN)[1]
    snapshot.aggregator.append(msgspec.structs.replace(again, seq=10_000))  # same msg_id: transport duplicate
    assert continuity.check(world.recorded(), snapshot).valid is Validity.TRUE


def test_a_skipped_step_is_false_after_quiescence() -> None:
    world, snapshot = one_contact()
    snapshot.aggregator.remove(deliveries_to(snapshot, URN)[1])
    history = world.recorded()
    result = continuity.check(history, snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["skipped"] == 1 and result.counts["missing_replies"] == 1
    assert result.counts["completed_run_replies_missing"] == 1
    snapshot.quiescent = False
    assert continuity.check(history, snapshot).valid is Validity.UNKNOWN


def test_a_missing_last_reply_is_incomplete() -> None:
    world, snapshot = one_contact()
    snapshot.aggregator.remove(deliveries_to(snapshot, URN)[-1])
    result = continuity.check(world.recorded(), snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["incomplete"] == 1 and result.counts["completed_run_replies_missing"] == 1


def test_a_session_left_waiting_after_the_end_is_stuck() -> None:
    world, snapshot = one_contact()
    next(s for s in snapshot.sessions if s.contact_urn == URN).status = "W"
    history = world.recorded()
    result = continuity.check(history, snapshot)
    assert result.valid is Validity.FALSE and result.counts["stuck_sessions"] == 1
    snapshot.quiescent = False
    assert continuity.check(history, snapshot).valid is Validity.UNKNOWN


def test_a_run_left_waiting_after_the_contact_saw_the_end_is_false_at_once() -> None:
    # Mailroom commits the run's exit with the final replies, so the delivered end settles it.
    world, snapshot = one_contact()
    next(r for r in snapshot.runs if r.contact_urn == URN).status = "W"
    snapshot.quiescent = False
    result = continuity.check(world.recorded(), snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["stuck_runs"] == 1 and result.counts["saw_end_without_completed_run"] == 1


def test_a_run_left_waiting_while_replies_are_missing_is_stuck() -> None:
    world, snapshot = one_contact()
    next(r for r in snapshot.runs if r.contact_urn == URN).status = "A"
    snapshot.aggregator.remove(deliveries_to(snapshot, URN)[-1])
    history = world.recorded()
    result = continuity.check(history, snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["stuck_runs"] == 1 and result.counts["saw_end_without_completed_run"] == 0
    snapshot.quiescent = False
    assert continuity.check(history, snapshot).valid is Validity.UNKNOWN


def test_a_conversation_the_workload_abandoned_may_wait() -> None:
    world, snapshot = one_contact(steps=2)
    result = continuity.check(world.recorded(), snapshot)
    assert result.valid is Validity.TRUE
    assert result.counts["conversations_abandoned"] == 1 and result.counts["waiting_abandoned"] == 1


def test_seeing_the_end_without_a_completed_run_is_false() -> None:
    world, snapshot = one_contact()
    next(r for r in snapshot.runs if r.contact_urn == URN).status = "X"  # expired, yet every reply arrived
    result = continuity.check(world.recorded(), snapshot)
    assert result.valid is Validity.FALSE and result.counts["saw_end_without_completed_run"] == 1


def test_more_completed_runs_than_finished_conversations_is_false() -> None:
    world, snapshot = one_contact()
    snapshot.runs.append(Run("extra-run", FLOW_UUID, "C", URN, "Favorites"))
    result = continuity.check(world.recorded(), snapshot)
    assert result.valid is Validity.FALSE and result.counts["extra_completed_runs"] == 1


def test_runs_are_matched_by_flow_name_too() -> None:
    world = WorldBuilder()
    for number, step in enumerate(FAVORITES):
        world.mo(URN, f"{step.answer} [{number}]", conversation="a", step=number, expect=step.replies,
                 final=number == len(FAVORITES) - 1, flow="Favorites")  # fmt: skip
    assert continuity.check(world.recorded(), world.snapshot()).valid is Validity.TRUE


def test_conversations_without_a_flow_skip_the_run_agreement_but_are_counted() -> None:
    world = WorldBuilder()
    for number, step in enumerate(FAVORITES):
        world.mo(URN, f"{step.answer} [{number}]", conversation="a", step=number, expect=step.replies,
                 final=number == len(FAVORITES) - 1, flow=None)  # fmt: skip
    snapshot = world.snapshot()
    snapshot.runs[0].status = "X"
    result = continuity.check(world.recorded(), snapshot)
    assert result.valid is Validity.TRUE and result.counts["flow_unknown"] == 1


@pytest.mark.parametrize("outcome", [INFO, FAIL])
def test_an_unknown_or_rejected_message_does_not_excuse_a_reordering_of_other_replies(outcome: str) -> None:
    world, snapshot = one_contact(outcomes={2: outcome})
    deliveries = deliveries_to(snapshot, URN)
    deliveries[0].seq, deliveries[1].seq = deliveries[1].seq, deliveries[0].seq
    result = continuity.check(world.recorded(), snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["reordered"] == 1 and result.counts["threads_lenient"] == 1


def test_an_unknown_message_excuses_at_most_the_replies_it_was_owed() -> None:
    # The flow may have taken step 1's unknown message and so be one reply off: one missing reply is
    # within what that exchange was owed; two are not.
    world, snapshot = one_contact(outcomes={1: INFO})
    replies = [FAVORITES[2].replies[0], FAVORITES[3].replies[0]]
    one_gone = [d for d in snapshot.aggregator if not (d.recipient == URN and d.text == replies[1])]
    result = continuity.check(world.recorded(), msgspec.structs.replace(snapshot, aggregator=one_gone))
    assert result.valid is Validity.UNKNOWN and result.counts["indeterminate"] == 1
    (finding,) = result.findings
    assert finding.kind == "indeterminate" and finding.severity is Validity.UNKNOWN
    two_gone = [d for d in snapshot.aggregator if not (d.recipient == URN and d.text in replies)]
    result = continuity.check(world.recorded(), msgspec.structs.replace(snapshot, aggregator=two_gone))
    assert result.valid is Validity.FALSE and result.counts["incomplete"] == 2  # replies missing


def test_a_timeout_does_not_excuse_later_acknowledged_replies_lost_and_a_stuck_run() -> None:
    # Issue 8: a step-0 timeout followed by two acknowledged replies lost and a stuck run was judged unknown.
    world, snapshot = one_contact(outcomes={0: INFO})
    later = {FAVORITES[2].replies[0], FAVORITES[3].replies[0]}
    snapshot.aggregator = [d for d in snapshot.aggregator if not (d.recipient == URN and d.text in later)]
    run = next(r for r in snapshot.runs if r.contact_urn == URN)
    run.status = "W"
    result = continuity.check(world.recorded(), snapshot)
    assert result.valid is Validity.FALSE
    kinds = {f.kind for f in result.findings if f.severity is Validity.FALSE}
    assert "incomplete" in kinds


def test_a_step_sent_twice_makes_the_thread_lenient() -> None:
    world = WorldBuilder()
    first = FAVORITES[0]
    world.mo(URN, "favorites [1]", conversation="a", step=0, expect=first.replies)
    world.mo(URN, "favorites [2]", conversation="a", step=0, expect=first.replies)  # no reply seen yet: again
    result = continuity.check(world.recorded(), world.snapshot())
    assert result.counts["threads_lenient"] == 1
    assert result.valid is Validity.TRUE  # the ideal world answered both: nothing to report


def test_unowned_runs_and_unscripted_texts_are_counted_not_judged() -> None:
    world, snapshot = one_contact()
    snapshot.runs.append(Run("probe-run", FLOW_UUID, "W", "tel:+19999", "Favorites"))
    original = deliveries_to(snapshot, URN)[0]
    snapshot.aggregator.append(msgspec.structs.replace(original, seq=10_000, msg_id="55", text="Broadcast!"))
    result = continuity.check(world.recorded(), snapshot)
    assert result.valid is Validity.TRUE
    assert result.counts["unowned_runs"] == 1 and result.counts["unscripted"] == 1


def test_no_exchanges_is_unknown() -> None:
    world = WorldBuilder()
    assert continuity.check(world.recorded(), world.snapshot()).valid is Validity.UNKNOWN
