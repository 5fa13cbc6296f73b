"""Allowances: a documented RapidPro weak spot, bounded to the fault that causes it.

    Allowance("inbound.duplicated", fault="kill courier-1", max=2,
              why="a request cut between courier's insert and its de-dup mark is stored twice",
              contract="Inbound: order of work on receive; no unique constraint on msgs_msg.uuid")

excuses at most two extra rows per `kill courier-1` in the history, each from an MO invoked within that
fault's window (its injection minus `before` .. its recovery plus `after`, from windows.py unless given).
Nothing else: the same finding long before the kill, a third one, or one in a run with no such fault fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from resilience.checks.model import FaultWindow
from resilience.checks.result import Finding
from resilience.verdict.windows import window_for

CLOSES_AT = ("recovery", "injection")
JUDGED_AT = ("invocation", "acknowledgement")


class PolicyError(ValueError):
    """An allowance, bound or declared unknown that cannot be applied; the message says what is expected."""


@dataclass(frozen=True)
class Allowance:
    key: str
    """"checker.kind", e.g. "inbound.duplicated" (the kinds each checker reports: docs/checkers.md)."""
    fault: str
    """Which fault it belongs to: a fault kind ("kill"), a kind and targets ("kill courier-1"), or a
    schedule step's name (the `as NAME` of the schedule, e.g. "c")."""
    max: int
    """How much of the finding (its count: rows, replies, messages, lines) each such fault may cause."""
    why: str
    """The RapidPro behaviour that causes it, in words."""
    contract: str = ""
    """Where shared/rapidpro-contracts.md documents it (section and line)."""
    before: float | None = None
    """Seconds before the fault's injection the window opens (default: the fault kind's, windows.py)."""
    after: float | None = None
    """Seconds after the fault's recovery the window closes (default: the fault kind's)."""
    closes_at: str = "recovery"
    """What `after` counts from: "recovery" (the fault's recovery) or "injection" (the inject's completion),
    for effects that only what happened before the fault took hold can have (a commit the old primary
    acknowledged before the failover promoted its standby)."""
    judged_at: str = "invocation"
    """Which moment of a finding must lie in the window: "invocation" (its `at_s`: when the MO was sent, the
    fault injected, the line logged) or "acknowledgement" (its `acked_s`: when the client got its 200), for
    effects only an acknowledgement given before the fault took hold can have. A finding without that
    moment is outside the window."""
    max_load_s: float | None = None
    """When given, the maximum grows with the load: the MOs the run sent in this many seconds at its mean
    rate, rounded up, where that is more than `max`. For a mechanism that strands whatever arrives while it
    lasts (mailroom's handler dropping every event of a hung dial), whose count is seconds times the rate."""
    follows_contact_s: float = 0.0
    """Seconds after a finding it excused during which the same contact's later findings of this kind are
    excused too, wherever the window ends (counted toward `max`): for an effect that stays with the contact,
    as a dead mailroom's contact lock does for up to 5 minutes."""
    nodes: tuple[str, ...] = ()
    """Only findings about these nodes (log lines), when given."""
    contacts: tuple[str, ...] = ()
    """Only findings about these URNs, when given."""

    @property
    def checker(self) -> str:
        return self.key.partition(".")[0]

    @property
    def kind(self) -> str:
        return self.key.partition(".")[2]

    def matches_fault(self, fault: FaultWindow) -> bool:
        words = self.fault.split()
        if len(words) == 1 and words[0] == fault.id:
            return True
        if not words or words[0] != fault.kind:
            return False
        # "toxic redis": the words name the fault's target nodes or what it acts on (a toxic's proxy).
        named = {str(t) for t in fault.targets} | {str(v) for v in fault.params.values() if isinstance(v, str | int)}
        return all(word in named for word in words[1:])

    def window(self, fault: FaultWindow, seconds: Any, history_end: int) -> tuple[float, float]:
        """[open, close] in the history's seconds for this fault."""
        default_before, default_after = window_for(fault.kind)
        before = self.before if self.before is not None else default_before
        after = self.after if self.after is not None else default_after
        if self.closes_at == "injection":
            closes = fault.injected if fault.injected is not None else fault.until(history_end)
            return seconds(fault.start) - before, seconds(closes) + after
        return seconds(fault.start) - before, seconds(fault.until(history_end)) + after

    def moment(self, finding: Finding) -> float | None:
        """The finding's moment this allowance's window judges."""
        return finding.acked_s if self.judged_at == "acknowledgement" else finding.at_s

    def limit(self, mo_rate: float) -> int:
        """The maximum per fault for a run whose MOs came at `mo_rate` per second."""
        if not self.max_load_s:
            return self.max
        return max(self.max, math.ceil(self.max_load_s * mo_rate - 1e-9))

    def describe(self, mo_rate: float = 0.0) -> str:
        if not self.max_load_s:
            return f"{self.key} (max {self.max} per '{self.fault}')"
        return (f"{self.key} (max {self.limit(mo_rate)} per '{self.fault}': {self.max_load_s:g} s of "
                f"{mo_rate:.1f} MO/s, at least {self.max})")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"key": self.key, "fault": self.fault, "max": self.max, "why": self.why}
        for name in ("contract", "before", "after", "max_load_s"):
            if getattr(self, name) not in (None, ""):
                raw[name] = getattr(self, name)
        if self.follows_contact_s:
            raw["follows_contact_s"] = self.follows_contact_s
        if self.closes_at != "recovery":
            raw["closes_at"] = self.closes_at
        if self.judged_at != "invocation":
            raw["judged_at"] = self.judged_at
        for name in ("nodes", "contacts"):
            if getattr(self, name):
                raw[name] = list(getattr(self, name))
        return raw


ALLOWANCE_FIELDS = frozenset(Allowance.__dataclass_fields__)


def allowance_from(raw: Allowance | Mapping[str, Any], where: str) -> Allowance:
    """An Allowance from itself or a mapping of its fields, checked; errors name `where`."""
    if isinstance(raw, Allowance):
        allowance = raw
    elif isinstance(raw, Mapping):
        unknown = sorted(set(raw) - ALLOWANCE_FIELDS)
        if unknown:
            raise PolicyError(f"{where}: unknown field(s) {unknown}; an allowance has {sorted(ALLOWANCE_FIELDS)}")
        missing = sorted({"key", "fault", "max", "why"} - set(raw))
        if missing:
            raise PolicyError(f"{where}: missing {missing}: an allowance names its kind, fault, maximum and why")
        values = dict(raw)
        for name in ("nodes", "contacts"):
            if name in values:
                values[name] = tuple(values[name])
        allowance = Allowance(**values)
    else:
        raise PolicyError(f"{where}: expected an Allowance or a mapping, got {type(raw).__name__}")
    problems = []
    if "." not in allowance.key:
        problems.append(f"key {allowance.key!r} is not 'checker.kind'")
    if not isinstance(allowance.max, int) or isinstance(allowance.max, bool) or allowance.max < 1:
        problems.append(f"max must be a whole number >= 1, got {allowance.max!r}")
    if not isinstance(allowance.fault, str) or not allowance.fault.strip():
        problems.append("fault must name a fault kind, 'kind target…' or a schedule step's name")
    if not isinstance(allowance.why, str) or not allowance.why.strip():
        problems.append("why must say which RapidPro behaviour causes it")
    if allowance.closes_at not in CLOSES_AT:
        problems.append(f"closes_at must be one of {', '.join(CLOSES_AT)}, got {allowance.closes_at!r}")
    if allowance.judged_at not in JUDGED_AT:
        problems.append(f"judged_at must be one of {', '.join(JUDGED_AT)}, got {allowance.judged_at!r}")
    if allowance.max_load_s is not None and (
        not isinstance(allowance.max_load_s, int | float) or isinstance(allowance.max_load_s, bool)
        or not math.isfinite(allowance.max_load_s) or allowance.max_load_s <= 0
    ):
        problems.append(f"max_load_s must be seconds > 0, got {allowance.max_load_s!r}")
    if not isinstance(allowance.follows_contact_s, int | float) or allowance.follows_contact_s < 0:
        problems.append(f"follows_contact_s must be seconds >= 0, got {allowance.follows_contact_s!r}")
    for name in ("before", "after"):
        value = getattr(allowance, name)
        if value is not None and (not isinstance(value, int | float) or value < 0):
            problems.append(f"{name} must be seconds >= 0, got {value!r}")
    if problems:
        raise PolicyError(f"{where}: {'; '.join(problems)}")
    return allowance


@dataclass
class AllowanceUse:
    """How much of one allowance each matching fault has used."""

    allowance: Allowance
    used: dict[str, int] = field(default_factory=dict)  # fault id -> count
