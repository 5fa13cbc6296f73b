"""What every checker returns, and how verdicts merge."""

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


@dataclass
class CheckResult:
    name: str
    valid: Validity
    counts: Mapping[str, float] = field(default_factory=dict)  # ints, and a few ratios and seconds
    examples: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.examples) > MAX_EXAMPLES:
            raise ValueError(f"{self.name}: {len(self.examples)} examples; at most {MAX_EXAMPLES} are kept")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "valid": self.valid.value,
            "counts": self.counts,
            "examples": self.examples,
            "details": self.details,
        }
