"""Inbound delivery: every MO courier acknowledged is in `msgs_msg` exactly once, and was handled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.matching import PENDING, InboundMatch
from resilience.checks.options import parse_options
from resilience.checks.result import CheckResult, Examples, verdict
from resilience.history import FAIL, INFO, OK, RecordedHistory
from resilience.snapshot import Snapshot

NAME = "inbound"
MAX_LISTED = 1000  # op indexes listed per finding in details


@dataclass(frozen=True)
class InboundOptions:
    allowed_duplicates: int = 0
    """Extra rows (beyond one per MO) tolerated before the verdict is false."""
    allowed_unhandled: int = 0
    """MOs whose row is still P (pending) after quiescence tolerated before the verdict is false."""
    failed_must_be_absent: bool = True
    """A `fail` MO (courier answered 4xx/5xx) found in msgs_msg makes the verdict false."""


def check(
    history: RecordedHistory,
    snapshot: Snapshot,
    options: InboundOptions | dict[str, Any] | None = None,
    *,
    analysis: Analysis | None = None,
) -> CheckResult:
    opts = parse_options(InboundOptions, options, NAME)
    analysis = Analysis.of(history, snapshot, analysis)
    view = analysis.view
    matching = analysis.inbound
    examples = Examples()
    listed: dict[str, list[int]] = {"lost": [], "duplicated": [], "unhandled": [], "recovered": []}
    found: Counter[str] = Counter()

    def note(kind: str, match: InboundMatch) -> None:
        found[kind] += 1
        if len(listed[kind]) < MAX_LISTED:
            listed[kind].append(match.mo.index)
        examples.add(kind, **_describe(match, view.seconds))

    for match in matching.others:
        rows = match.rows
        outcome = match.mo.outcome
        # One handled row for an MO of unknown outcome is also as it should be.
        if len(rows) == 1 and outcome != FAIL and rows[0].status != PENDING and not match.uuid_mismatch:
            continue
        if len(rows) > 1:
            found["duplicate_rows"] += len(rows) - 1
            note("duplicated", match)
        if any(row.status == PENDING for row in rows):
            note("unhandled", match)
        found["uuid_mismatch"] += match.uuid_mismatch
        if not rows and outcome == OK:
            note("lost", match)
        elif not rows and outcome == INFO:
            found["info_absent"] += 1
        elif rows and outcome == FAIL:
            note("recovered", match)
    outcomes = Counter(m.mo.outcome for m in matching.others)
    outcomes[OK] += matching.settled
    counts = {
        "mos": matching.settled + len(matching.others),
        "ok": outcomes[OK],
        "fail": outcomes[FAIL],
        "info": outcomes[INFO],
        "ok_present": outcomes[OK] - found["lost"],
        "lost": found["lost"],
        "duplicated": found["duplicated"],
        "duplicate_rows": found["duplicate_rows"],
        "unhandled": found["unhandled"],
        "info_present": outcomes[INFO] - found["info_absent"],
        "info_absent": found["info_absent"],
        "fail_absent": outcomes[FAIL] - found["recovered"],
        "recovered": found["recovered"],
        "uuid_mismatch": found["uuid_mismatch"],
        "ambiguous_texts": matching.ambiguous_texts,
        "unclaimed_rows": matching.unclaimed_rows,
    }

    quiescent = snapshot.quiescent
    # Rows never disappear, so duplicates and rejected-but-stored MOs are final even before quiescence;
    # a missing or pending row may still be in a spool or a queue until then.
    definite_false = counts["duplicate_rows"] > opts.allowed_duplicates or (
        opts.failed_must_be_absent and counts["recovered"] > 0
    )
    settled_false = counts["lost"] > 0 or counts["unhandled"] > opts.allowed_unhandled
    valid = verdict(
        false_if=definite_false or (quiescent and settled_false),
        unknown_if=counts["mos"] == 0 or counts["ok"] == 0 or (not quiescent and settled_false),
    )
    return CheckResult(
        name=NAME,
        valid=valid,
        counts=counts,
        examples=examples.items,
        details={"quiescent": quiescent, **{f"{kind}_ops": ops for kind, ops in listed.items()}},
    )


def _describe(match: InboundMatch, seconds: Callable[[int], float]) -> dict[str, Any]:
    mo = match.mo
    return {
        "op": mo.index,
        "process": mo.process,
        "outcome": mo.outcome,
        "urn": mo.urn,
        "text": mo.text,
        "msg_uuid": mo.msg_uuid,
        "invoked_s": round(seconds(mo.invoke_time), 3),
        "rows": [{"id": r.id, "uuid": r.uuid, "status": r.status} for r in match.rows],
    }
