"""Inbound delivery: every MO courier acknowledged is in `msgs_msg` exactly once, and was handled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.matching import PENDING, InboundMatch
from resilience.checks.options import parse_options
from resilience.checks.result import CheckResult, Examples, Finding, Validity
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


# Every kind of finding this checker reports (allowances and declared unknowns are validated against it).
KINDS: dict[str, str] = {
    "lost": "an acknowledged MO with no row in msgs_msg (count 1 per MO; unknown while its contact has a backlog)",
    "duplicated": "an MO stored in more than one row (count: the extra rows)",
    "unhandled": "an MO whose row is still P after quiescence (unknown while its contact has a backlog)",
    "recovered": "an MO courier refused (4xx/5xx) that was stored anyway",
    "no_data": "no MO was acknowledged: nothing to judge (unknown)",
}


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
    # Per kind, the findings of that kind; the thresholds decide below whether they make the verdict false.
    pending: dict[str, list[Finding]] = {kind: [] for kind in listed}

    def note(kind: str, match: InboundMatch, count: int = 1) -> None:
        found[kind] += 1
        if len(listed[kind]) < MAX_LISTED:
            listed[kind].append(match.mo.index)
        examples.add(kind, **_describe(match, view.seconds))
        mo = match.mo
        settled = analysis.settled(mo.urn)
        # Rows never disappear, so duplicates and refused-but-stored MOs are final even before quiescence;
        # a missing or pending row may still be in a spool or a queue while the contact has a backlog.
        certain = kind in ("duplicated", "recovered") or settled
        pending[kind].append(
            Finding(
                NAME, kind, Validity.FALSE if certain else Validity.UNKNOWN, round(view.seconds(mo.invoke_time), 3),
                count, mo.index, mo.urn, detail=f"msg_uuid {mo.msg_uuid}, rows {[r.id for r in match.rows]}",
                acked_s=view.seconds(mo.end_time) if mo.outcome == OK and mo.end_time is not None else None,
            )
        )  # fmt: skip

    for match in matching.others:
        rows = match.rows
        outcome = match.mo.outcome
        # One handled row for an MO of unknown outcome is also as it should be.
        if len(rows) == 1 and outcome != FAIL and rows[0].status != PENDING and not match.uuid_mismatch:
            continue
        if len(rows) > 1:
            found["duplicate_rows"] += len(rows) - 1
            note("duplicated", match, len(rows) - 1)
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

    findings = [*pending["lost"], *pending["recovered"]] if opts.failed_must_be_absent else [*pending["lost"]]
    if counts["duplicate_rows"] > opts.allowed_duplicates:
        findings.extend(pending["duplicated"])
    if counts["unhandled"] > opts.allowed_unhandled:
        findings.extend(pending["unhandled"])
    if counts["mos"] == 0 or counts["ok"] == 0:
        findings.append(Finding(NAME, "no_data", Validity.UNKNOWN, detail="no acknowledged MO"))
    return CheckResult.of_findings(
        NAME,
        sorted(findings, key=_finding_order),
        counts,
        examples.items,
        {"quiescent": snapshot.quiescent, **{f"{kind}_ops": ops for kind, ops in listed.items()}},
    )


def _finding_order(finding: Finding) -> tuple[float, int]:
    return (finding.at_s if finding.at_s is not None else -1.0, finding.op or 0)


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
