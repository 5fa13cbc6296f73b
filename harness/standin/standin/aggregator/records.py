"""What the aggregator received: a bounded, sequence-numbered log of MTs."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, replace
from itertools import islice
from typing import Any


@dataclass(frozen=True)
class MTRecord:
    seq: int
    msg_id: int | None  # the send's `id` field (courier v9: msgs_msg.id)
    raw_id: str
    to: str
    sender: str  # the send's `from` field
    text: str
    channel: str
    method: str
    path: str
    received_wall_ns: int  # wall clock, time.time_ns()
    answer: str  # HTTP status answered, or "hang"

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["from"] = document.pop("sender")
        return document


class RecordStore:
    """Keeps the newest `capacity` records; older ones are dropped and counted."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"record capacity must be at least 1, got {capacity}")
        self._records: deque[MTRecord] = deque()
        self._capacity = capacity
        self._next_seq = 1
        self.dropped = 0

    def add(self, record: MTRecord) -> MTRecord:
        """Store the record under the next sequence number (its own `seq` is ignored)."""
        stored = replace(record, seq=self._next_seq)
        self._next_seq += 1
        self._records.append(stored)
        while len(self._records) > self._capacity:
            self._records.popleft()
            self.dropped += 1
        return stored

    def after(self, seq: int, limit: int) -> list[MTRecord]:
        if not self._records:
            return []
        # sequence numbers are contiguous within the store, so the offset is direct
        start = max(0, seq - self._records[0].seq + 1)
        return list(islice(self._records, start, start + limit))

    def clear(self) -> int:
        count = len(self._records)
        self._records.clear()
        return count

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    def __len__(self) -> int:
        return len(self._records)
