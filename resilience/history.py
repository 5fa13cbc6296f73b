"""The append-only operation log (Jepsen's history model): JSON lines, one record per event.

Line 1 is a header; every later line is an `invoke` or its single completion (`ok`, `fail`, `info`).
Each line is written and flushed under a lock as it happens, so a run that crashes still leaves a
readable file; on read a torn last line (no newline, not JSON) is dropped with a warning.
See docs/history.md for the record format and the values workloads must record.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any, Final, Literal

INVOKE: Final = "invoke"
OK: Final = "ok"
FAIL: Final = "fail"
INFO: Final = "info"
COMPLETION_TYPES: Final = frozenset({OK, FAIL, INFO})
OP_TYPES: Final = frozenset({INVOKE}) | COMPLETION_TYPES

CompletionType = Literal["ok", "fail", "info"]

NEMESIS: Final = "nemesis"
"""The process that records fault events (f "inject" / "recover")."""


class HistoryError(ValueError):
    """A history file or a recording call is malformed; the message says where and what was expected."""


class TruncatedHistoryWarning(UserWarning):
    """The last line of a history was cut short (the recording process died mid-write) and was dropped."""


@dataclass(frozen=True, slots=True)
class Header:
    run_id: str
    started_wall: str
    mono_anchor_ns: int
    wall_anchor_ns: int
    seed: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def mono_to_wall_ns(self, mono_ns: int) -> int:
        """Wall-clock ns of a monotonic reading taken by the recording process."""
        return self.wall_anchor_ns + (mono_ns - self.mono_anchor_ns)

    def wall_to_mono_ns(self, wall_ns: int) -> int:
        return self.mono_anchor_ns + (wall_ns - self.wall_anchor_ns)

    def to_record(self) -> dict[str, Any]:
        return {
            "type": "header",
            "run_id": self.run_id,
            "started_wall": self.started_wall,
            "mono_anchor_ns": self.mono_anchor_ns,
            "wall_anchor_ns": self.wall_anchor_ns,
            "seed": self.seed,
            "meta": self.meta,
        }


@dataclass(slots=True)
class Op:
    """One line of the history: an invocation or a completion (which names its invocation's index)."""

    index: int
    type: str
    process: str
    f: str
    value: Any
    time: int
    invoke_index: int | None = None

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "type": self.type,
            "index": self.index,
            "process": self.process,
            "f": self.f,
            "value": self.value,
            "time": self.time,
        }
        if self.invoke_index is not None:
            record["invoke_index"] = self.invoke_index
        return record


@dataclass(slots=True)
class Operation:
    """An invocation paired with its completion; no completion (the run died) counts as `info`."""

    invoke: Op
    completion: Op | None

    @property
    def type(self) -> str:
        return self.completion.type if self.completion is not None else INFO

    @property
    def process(self) -> str:
        return self.invoke.process

    @property
    def f(self) -> str:
        return self.invoke.f

    @property
    def end_time(self) -> int | None:
        return self.completion.time if self.completion is not None else None

    @property
    def value(self) -> dict[str, Any]:
        """The invocation's value overlaid with what the completion learned (both must be objects)."""
        merged = dict(self.invoke.value) if isinstance(self.invoke.value, dict) else {}
        if self.completion is not None and isinstance(self.completion.value, dict):
            merged.update(self.completion.value)
        return merged

    @property
    def result(self) -> dict[str, Any]:
        """The completion's own value (empty without a completion or when it was not an object)."""
        if self.completion is not None and isinstance(self.completion.value, dict):
            return self.completion.value
        return {}


@dataclass(eq=False)
class RecordedHistory:
    """A whole history, read back or taken from a live recorder. Compared and hashed by identity."""

    header: Header
    ops: list[Op]
    source: str = "<memory>"
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    @cached_property
    def operations(self) -> list[Operation]:
        """Invocations in invocation order, each with its completion (or None)."""
        pairs: dict[int, Operation] = {}
        for op in self.ops:
            if op.invoke_index is None:
                pairs[op.index] = Operation(op, None)
            else:
                pairs[op.invoke_index].completion = op
        return list(pairs.values())

    @property
    def end_time(self) -> int:
        """Monotonic time of the last event (the header's anchor for an empty history)."""
        return self.ops[-1].time if self.ops else self.header.mono_anchor_ns

    def location(self, op_index: int) -> str:
        """Where an op sits in the file, for error messages (the header is line 1)."""
        return f"{self.source}:{op_index + 2} (op {op_index})"


class History:
    """A thread-safe recorder. Each call writes and flushes one line before returning.

    `path=None` records in memory only (tests, dry runs). `clock` returns monotonic nanoseconds and
    exists so that generators and tests can write deterministic times.
    """

    def __init__(
        self,
        path: Path | str | None,
        *,
        run_id: str,
        seed: int | None = None,
        meta: Mapping[str, Any] | None = None,
        clock: Callable[[], int] = time.monotonic_ns,
        keep_in_memory: bool = True,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ops: list[Op] | None = [] if keep_in_memory else None
        self._pending: dict[int, Op] = {}
        self._next_index = 0
        mono = clock()
        wall = time.time_ns()
        self.header = Header(
            run_id=run_id,
            started_wall=_iso_utc(wall),
            mono_anchor_ns=mono,
            wall_anchor_ns=wall,
            seed=seed,
            meta=dict(meta or {}),
        )
        self.path = Path(path) if path is not None else None
        self._file: IO[str] | None = None
        if self.path is not None:
            try:
                # "x": never overwrite an earlier run's history.
                self._file = self.path.open("x", encoding="utf-8")
            except FileExistsError:
                raise HistoryError(f"{self.path}: already exists; a history is never overwritten") from None
            self._write(self.header.to_record(), "header")

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def invoke(self, process: str, f: str, value: Any = None) -> Op:
        if not isinstance(process, str) or not process:
            raise HistoryError(f"invoke: process must be a non-empty string, got {process!r}")
        if not isinstance(f, str) or not f:
            raise HistoryError(f"invoke: f must be a non-empty string, got {f!r}")
        with self._lock:
            op = Op(self._next_index, INVOKE, process, f, value, self._clock())
            self._append(op)
            self._pending[op.index] = op
            return op

    def complete(self, op: Op, type: CompletionType, value: Any = None) -> Op:
        """Record the completion of `op`. `value` holds what the completion learned (see docs)."""
        if type not in COMPLETION_TYPES:
            raise HistoryError(f"complete: type must be one of ok/fail/info, got {type!r}")
        with self._lock:
            if self._pending.get(op.index) is not op:
                raise HistoryError(
                    f"complete: op {op.index} ({op.process} {op.f}) is not a pending invocation of this history"
                )
            done = Op(self._next_index, type, op.process, op.f, value, self._clock(), op.index)
            self._append(done)
            del self._pending[op.index]
            return done

    @property
    def pending(self) -> list[Op]:
        with self._lock:
            return list(self._pending.values())

    def recorded(self) -> RecordedHistory:
        """What has been recorded so far (needs keep_in_memory)."""
        if self._ops is None:
            raise HistoryError("recorded(): this History was created with keep_in_memory=False")
        with self._lock:
            return RecordedHistory(self.header, list(self._ops), source=str(self.path or "<memory>"))

    def _append(self, op: Op) -> None:
        if self.path is not None:
            if self._file is None:
                raise HistoryError(f"{self.path}: the history is closed")
            self._write(op.to_record(), f"op {op.index} ({op.process} {op.f})")
        if self._ops is not None:
            self._ops.append(op)
        self._next_index += 1

    def _write(self, record: dict[str, Any], what: str) -> None:
        assert self._file is not None
        try:
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise HistoryError(f"{self.path}: {what}: value is not JSON-serialisable: {exc}") from None
        self._file.write(line + "\n")
        self._file.flush()


def _iso_utc(wall_ns: int) -> str:
    moment = dt.datetime.fromtimestamp(wall_ns / 1e9, tz=dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def read_history(path: Path | str) -> RecordedHistory:
    """Read and validate a history file. A torn last line is dropped with TruncatedHistoryWarning."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HistoryError(f"{path}: no such history file") from None
    except UnicodeDecodeError as exc:
        raise HistoryError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_history(text, source=str(path))


def parse_history(text: str, *, source: str = "<string>") -> RecordedHistory:
    lines = text.split("\n")
    # A file written completely ends with "\n", leaving one empty string; anything else in the last slot
    # is a line whose newline never made it to disk.
    unterminated = lines.pop()
    truncated = False
    if unterminated:
        try:
            json.loads(unterminated)
            lines.append(unterminated)
        except json.JSONDecodeError:
            truncated = True
            warnings.warn(
                f"{source}:{len(lines) + 1}: last line is incomplete (the recorder stopped mid-write); ignored",
                TruncatedHistoryWarning,
                stacklevel=2,
            )
    if not lines:
        raise HistoryError(f"{source}: empty; expected a header line first")
    header = _parse_header(lines[0], source)
    ops = _parse_ops(lines, source)
    return RecordedHistory(header, ops, source=source, truncated=truncated)


def _load_line(line: str, source: str, lineno: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise HistoryError(f"{source}:{lineno}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise HistoryError(f"{source}:{lineno}: expected a JSON object, got {type(record).__name__}")
    return record


def _parse_header(line: str, source: str) -> Header:
    record = _load_line(line, source, 1)
    if record.get("type") != "header":
        raise HistoryError(f"{source}:1: expected the header record (type 'header'), got type {record.get('type')!r}")
    wanted = {"run_id": str, "started_wall": str, "mono_anchor_ns": int, "wall_anchor_ns": int}
    for key, kind in wanted.items():
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool):
            raise HistoryError(f"{source}:1: header field {key!r} must be {kind.__name__}, got {record.get(key)!r}")
    seed = record.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise HistoryError(f"{source}:1: header field 'seed' must be an integer or null, got {seed!r}")
    meta = record.get("meta", {})
    if not isinstance(meta, dict):
        raise HistoryError(f"{source}:1: header field 'meta' must be an object, got {meta!r}")
    return Header(
        run_id=record["run_id"],
        started_wall=record["started_wall"],
        mono_anchor_ns=record["mono_anchor_ns"],
        wall_anchor_ns=record["wall_anchor_ns"],
        seed=seed,
        meta=meta,
    )


def _parse_ops(lines: list[str], source: str) -> list[Op]:
    ops: list[Op] = []
    pending: dict[int, Op] = {}
    loads = json.loads
    for offset in range(1, len(lines)):
        lineno = offset + 1
        line = lines[offset]
        try:
            record = loads(line)
            kind = record["type"]
            index = record["index"]
            process = record["process"]
            f = record["f"]
            when = record["time"]
            value = record.get("value")
            invoke_index = record.get("invoke_index")
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{source}:{lineno}: not JSON ({exc.msg} at column {exc.colno})") from None
        except (KeyError, TypeError) as exc:
            raise HistoryError(
                f"{source}:{lineno}: expected an op object with type, index, process, f, value, time; missing {exc}"
            ) from None
        if index != offset - 1 or type(index) is not int:
            raise HistoryError(f"{source}:{lineno}: index {index!r} out of sequence; expected {offset - 1}")
        if type(when) is not int:
            raise HistoryError(f"{source}:{lineno}: time must be integer monotonic ns, got {when!r}")
        if not isinstance(process, str) or not isinstance(f, str):
            raise HistoryError(f"{source}:{lineno}: process and f must be strings")
        if kind == INVOKE:
            if invoke_index is not None:
                raise HistoryError(f"{source}:{lineno}: an invoke must not carry invoke_index")
            op = Op(index, kind, process, f, value, when)
            pending[index] = op
        elif kind in COMPLETION_TYPES:
            invoked = pending.pop(invoke_index, None) if type(invoke_index) is int else None
            if invoked is None:
                raise HistoryError(
                    f"{source}:{lineno}: {kind} names invoke_index {invoke_index!r}, which is not an"
                    " earlier invocation still awaiting its completion"
                )
            if invoked.process != process or invoked.f != f:
                raise HistoryError(
                    f"{source}:{lineno}: {kind} is for {process} {f} but invocation {invoke_index} was"
                    f" {invoked.process} {invoked.f}"
                )
            op = Op(index, kind, process, f, value, when, invoke_index)
        else:
            raise HistoryError(f"{source}:{lineno}: type {kind!r} is not one of invoke, ok, fail, info")
        ops.append(op)
    return ops


def write_history(history: RecordedHistory, path: Path | str) -> None:
    """Write a whole history at once (fixtures, re-encoding). Refuses to overwrite."""
    path = Path(path)
    try:
        handle = path.open("x", encoding="utf-8")
    except FileExistsError:
        raise HistoryError(f"{path}: already exists; a history is never overwritten") from None
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    with handle:
        handle.write(dumps(history.header.to_record()) + "\n")
        handle.writelines(dumps(op.to_record()) + "\n" for op in history.ops)
