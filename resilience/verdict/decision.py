"""The decision: every finding of every checker judged against the experiment's policy.

One function decides which findings are new (`Decision.new`); the test, the console summary, the report
and `resilience check DIR` all use it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from resilience.checks.model import FaultWindow, HistoryView
from resilience.checks.result import CheckResult, Finding, Validity
from resilience.verdict.allowances import Allowance
from resilience.verdict.policy import Policy
from resilience.verdict.power import power_of


class Status(enum.Enum):
    ALLOWED = "allowed"
    """Inside an allowance's window and under its maximum."""
    DECLARED_UNKNOWN = "declared-unknown"
    """Undecided, where the experiment declares that unknown with a reason."""
    EXPECTED = "expected"
    """Of a checker whose exact verdict the experiment expects, and got."""
    VIOLATION = "violation"
    """Proven and not excused: fails the experiment."""
    UNDECLARED_UNKNOWN = "unknown"
    """Undecided and not declared: the experiment's decision is unknown."""


NEW = frozenset({Status.VIOLATION, Status.UNDECLARED_UNKNOWN})


@dataclass(frozen=True)
class Judgement:
    finding: Finding
    status: Status
    rule: str
    """Which allowance excused it, or which rule it broke, in words."""

    def to_dict(self) -> dict[str, Any]:
        return {"checker": self.finding.checker, **self.finding.to_dict(), "status": self.status.value,
                "rule": self.rule}  # fmt: skip


@dataclass
class Decision:
    validity: Validity
    """TRUE: the experiment passes; FALSE: a violation or an unmet expectation; UNKNOWN: undeclared unknowns."""
    judgements: list[Judgement]
    unmet: dict[str, str] = field(default_factory=dict)
    """checker -> how its verdict missed the experiment's exact expectation."""
    power: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    checks: dict[str, Validity] = field(default_factory=dict)

    @property
    def new(self) -> list[Judgement]:
        """The findings the experiment does not excuse: violations and undeclared unknowns."""
        return [j for j in self.judgements if j.status in NEW]

    def new_kinds(self, checker: str) -> list[str]:
        return sorted({j.finding.kind for j in self.new if j.finding.checker == checker})

    def failing_checkers(self) -> list[str]:
        failing = dict.fromkeys(self.unmet)
        failing.update(dict.fromkeys(j.finding.checker for j in self.new))
        return list(failing)

    def reasons(self, limit: int = 12) -> list[str]:
        """Which finding broke which rule, one line each (the first `limit`, then how many more)."""
        lines = [f"{checker}: {why}" for checker, why in self.unmet.items()]
        new = self.new
        for judgement in new[:limit]:
            lines.append(f"{judgement.finding.describe()} -- {judgement.rule}")
        if len(new) > limit:
            lines.append(f"... and {len(new) - limit} more (results.json, decision.findings)")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "validity": self.validity.value,
            "unmet": self.unmet,
            "power": self.power,
            "findings": [j.to_dict() for j in self.judgements],
        }


def decide(policy: Policy, results: Iterable[CheckResult], view: HistoryView) -> Decision:
    results = list(results)
    seconds, end = view.seconds, view.history.end_time
    faults = view.applied_faults
    used: dict[tuple[int, str], int] = {}  # (allowance index, fault id) -> count used
    # (weak spot, fault id, contact) -> when that contact's last finding was excused by one of the weak spot's
    # allowances that follow the contact. A weak spot is its allowances' shared `why`: a dead mailroom's
    # contact lock leaves the contact's MO unhandled, its re-sends unanswered and its run stuck, each a
    # finding of another checker, and all of them one effect. Checkers are judged in order (inbound first),
    # so the chain starts at the contact's first excused message; nothing before that start follows it.
    followed: dict[tuple[str, str, str], tuple[float, float]] = {}  # -> (first, last) excused moment
    judgements: list[Judgement] = []
    unmet: dict[str, str] = {}
    rate = mo_rate(view)
    for result in results:
        expected = policy.expected.get(result.name)
        if expected is not None:
            if result.valid is not expected:
                unmet[result.name] = f"expected {expected.value}, got {result.valid.value}"
            status = Status.EXPECTED if result.valid is expected else Status.VIOLATION
            rule = f"the experiment expects {result.name} {expected.value}"
            judgements.extend(Judgement(f, status, rule) for f in result.findings)
            continue
        for finding in sorted(result.findings, key=_order):
            judgements.append(_judge(finding, policy, faults, seconds, end, used, followed, rate))
    violations = bool(unmet) or any(j.status is Status.VIOLATION for j in judgements)
    undecided = any(j.status is Status.UNDECLARED_UNKNOWN for j in judgements)
    validity = Validity.FALSE if violations else Validity.UNKNOWN if undecided else Validity.TRUE
    return Decision(validity, judgements, unmet, power_of(results), {r.name: r.valid for r in results})


def mo_rate(view: HistoryView) -> float:
    """The run's mean MO rate per second, from its first MO's invocation to its last's."""
    times = [mo.invoke_time for mo in view.mos]
    if len(times) < 2 or max(times) <= min(times):
        return 0.0
    return (len(times) - 1) / ((max(times) - min(times)) / 1e9)


def _order(finding: Finding) -> tuple[float, int]:
    return (finding.at_s if finding.at_s is not None else float("inf"), finding.op or 0)


def _judge(
    finding: Finding,
    policy: Policy,
    faults: list[FaultWindow],
    seconds: Any,
    end: int,
    used: dict[tuple[int, str], int],
    followed: dict[tuple[str, str, str], tuple[float, float]],
    rate: float,
) -> Judgement:
    candidates = [
        (number, allowance)
        for number, allowance in enumerate(policy.allowances)
        if allowance.key == finding.key and _concerns(allowance, finding)
    ]
    outside: list[str] = []
    full: list[str] = []
    if finding.at_s is not None:
        for number, allowance in candidates:
            for fault in faults:
                if not allowance.matches_fault(fault):
                    continue
                opens, closes = allowance.window(fault, seconds, end)
                window = f"[{opens:.1f}, {closes:.1f}] s around {fault.kind} {fault.id}"
                contact = (allowance.why, fault.id, finding.urn or "")
                chain = followed.get(contact) if finding.urn else None
                moment = allowance.moment(finding)
                if allowance.judged_at != "invocation":
                    window = f"{window} (judged at {allowance.judged_at})"
                if chain is not None and chain[0] <= finding.at_s <= chain[1] + allowance.follows_contact_s:
                    window = f"{window}, then {finding.urn} for {allowance.follows_contact_s:g} s"
                elif moment is None or not opens <= moment <= closes:
                    outside.append(window)
                    continue
                spent = used.get((number, fault.id), 0)
                if spent + finding.count > allowance.limit(rate):
                    full.append(f"{allowance.describe(rate)} in {window}: {spent} used, this adds {finding.count}")
                    continue
                used[(number, fault.id)] = spent + finding.count
                if finding.urn and allowance.follows_contact_s > 0:
                    at = finding.at_s
                    followed[contact] = (at, at) if chain is None else (min(chain[0], at), max(chain[1], at))
                return Judgement(finding, Status.ALLOWED, f"{allowance.describe(rate)} in {window}: {allowance.why}")
    if finding.severity is Validity.UNKNOWN:
        reason = policy.unknown.get(finding.key) or policy.unknown.get(finding.checker)
        if reason is not None:
            return Judgement(finding, Status.DECLARED_UNKNOWN, f"declared unknown: {reason}")
        return Judgement(finding, Status.UNDECLARED_UNKNOWN, f"undecided, and the experiment declares no unknown "
                         f"for {finding.checker} or {finding.key}")  # fmt: skip
    if not candidates:
        return Judgement(finding, Status.VIOLATION, f"no allowance names {finding.key}")
    if full:
        return Judgement(finding, Status.VIOLATION, "over the maximum: " + "; ".join(full))
    if finding.at_s is None:
        return Judgement(finding, Status.VIOLATION, "not tied to a moment, so no allowance window can excuse it")
    if not outside:
        wanted = ", ".join(sorted({a.fault for _, a in candidates}))
        return Judgement(
            finding, Status.VIOLATION, f"its allowance belongs to '{wanted}', which this run never injected"
        )
    return Judgement(finding, Status.VIOLATION, "outside every allowance window: " + "; ".join(outside[:3]))


def _concerns(allowance: Allowance, finding: Finding) -> bool:
    if allowance.nodes and finding.node not in allowance.nodes:
        return False
    return not (allowance.contacts and finding.urn not in allowance.contacts)


__all__ = ["NEW", "Decision", "Judgement", "Status", "decide"]
