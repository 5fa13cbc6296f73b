"""What a valid verdict is worth: the smallest per-message loss or duplication rate the run would have
caught with 95 % confidence.

With N messages through a hop and a true per-message fault rate p, the chance of seeing no fault at all
is (1 - p)^N; the run detects p with 95 % confidence when that is at most 5 %, i.e. p >= 1 - 0.05^(1/N)
(about 3/N: the "rule of three"). A clean run of 150 acknowledged MOs therefore says "inbound loses less
than 2 % of messages", not "inbound loses nothing".
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from resilience.checks.result import CheckResult

CONFIDENCE = 0.95
TARGET_RATE = 0.02
"""Every catalogue experiment is sized to detect this rate or better on each hop."""
SOAK_RATE = 0.002
"""What `--soak` sizes a run for."""


def detectable_rate(messages: int, confidence: float = CONFIDENCE) -> float | None:
    """The smallest per-message rate N messages detect with `confidence`; None without messages."""
    if messages <= 0:
        return None
    return 1.0 - (1.0 - confidence) ** (1.0 / messages)


def messages_needed(rate: float, confidence: float = CONFIDENCE) -> int:
    """How many messages a hop needs to detect `rate` with `confidence`."""
    return math.ceil(math.log(1.0 - confidence) / math.log(1.0 - rate))


def power_of(results: Iterable[CheckResult]) -> dict[str, dict[str, float | int | None]]:
    """Per hop, the messages judged and the rate they can detect: inbound (acknowledged MOs) and outbound
    (owed replies)."""
    by_name = {r.name: r for r in results}
    hops = {"inbound": ("inbound", "ok"), "outbound": ("outbound", "owed")}
    power: dict[str, dict[str, float | int | None]] = {}
    for hop, (checker, count) in hops.items():
        result = by_name.get(checker)
        messages = int(result.counts.get(count, 0)) if result is not None else 0
        rate = detectable_rate(messages)
        power[hop] = {"messages": messages, "detectable_rate": round(rate, 5) if rate is not None else None}
    return power


def describe(power: dict[str, dict[str, float | int | None]]) -> str:
    parts = []
    for hop, figures in power.items():
        rate = figures["detectable_rate"]
        shown = f"{float(rate) * 100:.2g} %" if rate is not None else "nothing (no messages)"
        parts.append(f"{hop} {shown} over {figures['messages']}")
    return "detects a per-message loss/duplication rate of " + ", ".join(parts) + " (95 % confidence)"
