"""What every checker returns, and how verdicts merge.

A checker reports every problem it finds as a `Finding` (the full list, not a sample): the experiment's
verdict rule (resilience/verdict) judges each one against the experiment's allowances, so a finding
must say what it is (checker, kind), how sure (severity), when it arose, and how much (count).
`examples` stay a short sample for people; the rule never reads them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_EXAMPLES = 10


class Validity(enum.Enum):
    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"


# false beats unknown beats true
_RANK = {Validity.TRUE: 0, Validity.UNKNOWN: 1, Validity.FALSE: 2}


def merge(verdicts: Iterable[Validity | CheckResult]) -> Validity:
    """The combined verdict: any FALSE is FALSE, else any UNKNOWN is UNKNOWN, else TRUE (also when empty)."""
    validities = (v.valid if isinstance(v, CheckResult) else v for v in verdicts)
    return max(validities, key=_RANK.__getitem__, default=Validity.TRUE)


def verdict(*, false_if: bool, unknown_if: bool) -> Validity:
    if false_if:
        return Validity.FALSE
    return Validity.UNKNOWN if unknown_if else Validity.TRUE


class Examples:
    """Collects at most MAX_EXAMPLES examples, keeping the first ones seen."""

    def __init__(self, limit: int = MAX_EXAMPLES) -> None:
        self.limit = limit
        self.items: list[dict[str, Any]] = []

    def add(self, kind: str, **fields: Any) -> None:
        if len(self.items) < self.limit:
            self.items.append({"kind": kind, **fields})


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a checker found.

    `severity` is FALSE (the history proves it) or UNKNOWN (the history cannot decide it, e.g. the contact
    still had a backlog). `at_s` is when the problem arose, in seconds since the history's origin (the MO's
    invocation for a message, the fault's injection for a bound, the line's time for a log line); None when
    nothing ties it to a moment. `count` is how much it weighs against an allowance's maximum (rows,
    replies, messages, lines). `urn`, `node` and `fault` say what it concerns when known.
    """

    checker: str
    kind: str
    severity: Validity
    at_s: float | None = None
    count: int = 1
    op: int | None = None
    urn: str | None = None
    node: str | None = None
    fault: str | None = None
    detail: str = ""
    acked_s: float | None = None
    """When the acknowledgement this finding is about reached the client (an MO's 200), in the same seconds
    as `at_s`; None when it is not about one. Allowances judged "at acknowledgement" use it: a commit the
    old primary acknowledged before a failover took hold, not one merely invoked before it."""

    @property
    def key(self) -> str:
        return f"{self.checker}.{self.kind}"

    def describe(self) -> str:
        where = [f"op {self.op}" if self.op is not None else "", self.urn or "", self.node or "",
                 f"fault {self.fault}" if self.fault else ""]  # fmt: skip
        when = f" at {self.at_s:.1f} s" if self.at_s is not None else ""
        amount = f" x{self.count}" if self.count != 1 else ""
        context = ", ".join(w for w in where if w)
        text = f"{self.key}{amount}{when}" + (f" ({context})" if context else "")
        return f"{text}: {self.detail}" if self.detail else text

    def to_dict(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"kind": self.kind, "severity": self.severity.value, "at_s": self.at_s}
        for name in ("count", "op", "urn", "node", "fault", "detail", "acked_s"):
            value = getattr(self, name)
            if value not in (None, "") and not (name == "count" and value == 1):
                raw[name] = value
        return raw

    @classmethod
    def from_dict(cls, checker: str, raw: Mapping[str, Any]) -> Finding:
        return cls(
            checker=checker,
            kind=str(raw["kind"]),
            severity=Validity(raw["severity"]),
            at_s=raw.get("at_s"),
            count=int(raw.get("count", 1)),
            op=raw.get("op"),
            urn=raw.get("urn"),
            node=raw.get("node"),
            fault=raw.get("fault"),
            detail=str(raw.get("detail", "")),
            acked_s=raw.get("acked_s"),
        )


def validity_of(findings: Iterable[Finding]) -> Validity:
    """FALSE if any finding is proven, else UNKNOWN if any is undecided, else TRUE."""
    return merge(f.severity for f in findings)


@dataclass
class CheckResult:
    name: str
    valid: Validity
    counts: Mapping[str, float] = field(default_factory=dict)  # ints, and a few ratios and seconds
    examples: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.examples) > MAX_EXAMPLES:
            raise ValueError(f"{self.name}: {len(self.examples)} examples; at most {MAX_EXAMPLES} are kept")

    @classmethod
    def of_findings(
        cls,
        name: str,
        findings: list[Finding],
        counts: Mapping[str, float],
        examples: list[dict[str, Any]],
        details: dict[str, Any],
    ) -> CheckResult:
        """A result whose verdict is exactly what its findings say (the only way checkers build one)."""
        return cls(name, validity_of(findings), counts, examples, details, findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "valid": self.valid.value,
            "counts": self.counts,
            "examples": self.examples,
            "details": self.details,
            "findings": [f.to_dict() for f in self.findings],
        }
