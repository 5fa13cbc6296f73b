"""How the aggregator answers sends: a validated, partially updatable configuration."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

CALLBACK_KINDS = ("delivered", "sent", "failed", "")


class BehaviourError(ValueError):
    """A configuration update naming an unknown setting or carrying a bad value."""


@dataclass(frozen=True)
class Behaviour:
    status: int = 200  # answer to a send
    body: str = "OK"  # body of that answer (courier's mt_response_check looks into it)
    error_rate: float = 0.0  # probability of answering error_status instead
    error_status: int = 500
    latency_ms: int = 0  # wait before answering
    timeout_rate: float = 0.0  # probability of holding the request hang_ms, then closing without answer
    hang_ms: int = 60_000
    record_failed: bool = True  # record sends answered with an error or a hang (the network got them)
    callback: str = "delivered"  # status callback to post after a successful send ("" for none)
    delivered_delay_ms: int = 1000
    callback_base: str = ""  # e.g. http://lb; no callbacks while empty
    callback_retries: int = 0
    channel_uuid: str = ""  # used when a send carries no `channel` field

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: object) -> Behaviour:
        if not isinstance(changes, dict):
            raise BehaviourError("config: expected a JSON object of setting names to values")
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise BehaviourError(f"config: unknown setting {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            expected = type(getattr(self, name))
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise BehaviourError(f"config: {name} expects a {expected.__name__}, got {value!r}")
            values[name] = value
        result = replace(self, **values)
        result.validate()
        return result

    def validate(self) -> None:
        for name in ("error_rate", "timeout_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise BehaviourError(f"config: {name} must be within [0, 1], got {rate}")
        for name in ("status", "error_status"):
            code = getattr(self, name)
            if not 100 <= code <= 599:
                raise BehaviourError(f"config: {name} must be an HTTP status code, got {code}")
        for name in ("latency_ms", "hang_ms", "delivered_delay_ms", "callback_retries"):
            if getattr(self, name) < 0:
                raise BehaviourError(f"config: {name} must be 0 or more, got {getattr(self, name)}")
        if self.callback not in CALLBACK_KINDS:
            raise BehaviourError(
                f"config: callback must be one of {', '.join(repr(k) for k in CALLBACK_KINDS)}, got {self.callback!r}"
            )
