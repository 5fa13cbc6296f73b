"""The append-only operation log (Jepsen's history model): JSON lines, one record per event.

Line 1 is a header; every later line is an `invoke` or its single completion (`ok`, `fail`, `info`).
Each line is written and flushed under a lock as it happens, so a run that crashes still leaves a
readable file; on read a torn last line (no newline, not JSON) is dropped with a warning.
See docs/history.md for the record format and the values workloads must record.
"""

from __future__ import annotations

import datetime as dt
import gc
import io
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from sys import intern
from typing import IO, Any, Final, Literal

import msgspec

INVOKE: Final = "invoke"
OK: Final = "ok"
FAIL: Final = "fail"
INFO: Final = "info"
COMPLETION_TYPES: Final = frozenset({OK, FAIL, INFO})

OpType = Literal["invoke", "ok", "fail", "info"]
CompletionType = Literal["ok", "fail", "info"]

NEMESIS: Final = "nemesis"
"""The process that records fault events (f INJECT / RECOVER)."""
INJECT: Final = "inject"
"""The nemesis operation that applies a fault; its value names the fault (kind, id, targets)."""
RECOVER: Final = "recover"
"""The nemesis operation that removes a fault; its value carries the same id as the inject."""


class HistoryError(ValueError):
    """A history file or a recording call is malformed; the message says where and what was expected."""


class TruncatedHistoryWarning(UserWarning):
    """The last line of a history was cut short (the recording process died mid-write) and was dropped."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of acyclic records are built.

    Reference counting still frees everything; only the cycle detector waits. Without the pause it walks
    the growing heap again and again, which costs more than the decoding itself on a large history.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Header(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    started_wall: str
    mono_anchor_ns: int
    wall_anchor_ns: int
    seed: int | None = None
    meta: dict[str, Any] = msgspec.field(default_factory=dict)

    def mono_to_wall_ns(self, mono_ns: int) -> int:
        """Wall-clock ns of a monotonic reading taken by the recording process."""
        return self.wall_anchor_ns + (mono_ns - self.mono_anchor_ns)

    def wall_to_mono_ns(self, wall_ns: int) -> int:
        return self.mono_anchor_ns + (wall_ns - self.wall_anchor_ns)

    def to_record(self) -> dict[str, Any]:
        return {"type": "header", **msgspec.structs.asdict(self)}


class _HeaderRecord(Header, frozen=True, kw_only=True, tag_field="type", tag="header"):
    """The header as it is written: the same fields under type "header"."""


class Op(msgspec.Struct, gc=False, omit_defaults=True):
    """One line of the history: an invocation or a completion (which names its invocation's index)."""

    type: OpType
    index: int
    process: str
    f: str
    time: int
    value: Any = None
    invoke_index: int | None = None

    def to_record(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class Operation(msgspec.Struct, gc=False):
    """An invocation paired with its completion; no completion (the run died) counts as `info`."""

    invoke: Op
    completion: Op | None = None

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
        merged.update(self.result)
        return merged

    @property
    def result(self) -> dict[str, Any]:
        """The completion's own value (empty without a completion or when it was not an object)."""
        if self.completion is not None and isinstance(self.completion.value, dict):
            return self.completion.value
        return {}


class RecordedHistory:
    """A whole history, read back or taken from a live recorder. Compared and hashed by identity."""

    def __init__(self, header: Header, ops: list[Op], source: str = "<memory>", truncated: bool = False) -> None:
        self.header = header
        self.ops = ops
        self.source = source
        self.truncated = truncated

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __repr__(self) -> str:
        return f"RecordedHistory({self.source!r}, run {self.header.run_id!r}, {len(self.ops)} records)"

    @cached_property
    def operations(self) -> list[Operation]:
        """Invocations in file order, each with its completion (or None). Raises HistoryError where a
        completion names no pending invocation of the same process and f."""
        pending: dict[int, Operation] = {}
        operations: list[Operation] = []
        for op in self.ops:
            invoked = op.invoke_index
            if invoked is None:
                operation = Operation(op)
                pending[op.index] = operation
                operations.append(operation)
                continue
            awaiting = pending.pop(invoked, None)
            if awaiting is None:
                raise HistoryError(
                    f"{self.location(op.index)}: {op.type} names invoke_index {invoked}, which is not an"
                    " earlier invocation still awaiting its completion"
                )
            if awaiting.invoke.process != op.process or awaiting.invoke.f != op.f:
                raise HistoryError(
                    f"{self.location(op.index)}: {op.type} is for {op.process} {op.f} but invocation {invoked}"
                    f" was {awaiting.invoke.process} {awaiting.invoke.f}"
                )
            awaiting.completion = op
        return operations

    @cached_property
    def end_time(self) -> int:
        """Monotonic time of the latest event (the header's anchor for an empty history)."""
        return max((op.time for op in self.ops), default=self.header.mono_anchor_ns)

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
        self._file: IO[bytes] | None = None
        if self.path is not None:
            try:
                # "x": never overwrite an earlier run's history.
                self._file = self.path.open("xb")
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
            op = Op(INVOKE, self._next_index, process, f, self._clock(), value)
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
            done = Op(type, self._next_index, op.process, op.f, self._clock(), value, op.index)
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
            self._write(op, f"op {op.index} ({op.process} {op.f})")
        if self._ops is not None:
            self._ops.append(op)
        self._next_index += 1

    def _write(self, record: Op | dict[str, Any], what: str) -> None:
        assert self._file is not None
        try:
            line = _encode(record)
        except (TypeError, ValueError) as exc:
            raise HistoryError(f"{self.path}: {what}: value is not JSON-serialisable: {exc}") from None
        self._file.write(line + b"\n")
        self._file.flush()


def _iso_utc(wall_ns: int) -> str:
    moment = dt.datetime.fromtimestamp(wall_ns / 1e9, tz=dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


_encode = msgspec.json.Encoder().encode
_decode_op = msgspec.json.Decoder(Op).decode
_decode_header = msgspec.json.Decoder(_HeaderRecord).decode


def read_history(path: Path | str) -> RecordedHistory:
    """Read and validate a history file. A torn last line is dropped with TruncatedHistoryWarning."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise HistoryError(f"{path}: no such history file") from None
    with handle:
        return _read_lines(handle, str(path))


def parse_history(data: bytes | str, *, source: str = "<string>") -> RecordedHistory:
    """Read a history held in memory (see read_history)."""
    return _read_lines(io.BytesIO(data.encode() if isinstance(data, str) else data), source)


def _read_lines(lines: Iterable[bytes], source: str) -> RecordedHistory:
    # Line by line, so that a large history never sits in memory twice (as bytes and as records).
    numbered = enumerate(lines, start=1)
    _, first = next(numbered, (1, b""))
    if not first:
        raise HistoryError(f"{source}: empty; expected a header line first")
    try:
        header = Header(**msgspec.structs.asdict(_decode_header(first)))
    except msgspec.MsgspecError as exc:
        raise HistoryError(f"{source}:1: not a header record ({exc})") from None
    ops: list[Op] = []
    truncated = False
    with gc_paused():
        for lineno, line in numbered:
            try:
                op = _decode_op(line)
            except msgspec.MsgspecError as exc:
                # A file written completely ends with a newline; a last line without one was being
                # written when the recorder stopped.
                if not line.endswith(b"\n") and isinstance(exc, msgspec.DecodeError):
                    truncated = True
                    warnings.warn(
                        f"{source}:{lineno}: last line is incomplete (the recorder stopped mid-write); ignored",
                        TruncatedHistoryWarning,
                        stacklevel=3,
                    )
                    break
                raise HistoryError(f"{source}:{lineno}: not an op record ({exc})") from None
            if op.index != lineno - 2:
                raise HistoryError(f"{source}:{lineno}: index {op.index} out of sequence; expected {lineno - 2}")
            # Every process name and f recurs on many lines: keep one copy of each.
            op.process, op.f = intern(op.process), intern(op.f)
            if (op.invoke_index is None) != (op.type == INVOKE):
                raise HistoryError(
                    f"{source}:{lineno}: an invoke carries no invoke_index and a completion must name one"
                )
            ops.append(op)
        history = RecordedHistory(header, ops, source=source, truncated=truncated)
        history.operations  # noqa: B018 -- pair now, so that a bad completion is reported at read time
    return history


def write_history(history: RecordedHistory, path: Path | str) -> None:
    """Write a whole history at once (fixtures, re-encoding). Refuses to overwrite."""
    path = Path(path)
    try:
        handle = path.open("xb")
    except FileExistsError:
        raise HistoryError(f"{path}: already exists; a history is never overwritten") from None
    with handle:
        handle.write(_encode(history.header.to_record()) + b"\n")
        handle.writelines(_encode(op) + b"\n" for op in history.ops)
