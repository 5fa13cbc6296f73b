"""The history: recording, reading back, crash tolerance, validation with located errors."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

from resilience.history import (
    FAIL,
    INFO,
    OK,
    History,
    HistoryError,
    RecordedHistory,
    TruncatedHistoryWarning,
    parse_history,
    read_history,
    write_history,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 5_000

    def __call__(self) -> int:
        self.now += 10
        return self.now


def record_sample(path: Path | None) -> History:
    history = History(path, run_id="run-1", seed=42, meta={"topology": "standin-ha"}, clock=FakeClock())
    mo = history.invoke("contact-1", "mo", {"urn": "tel:+250788000001", "text": "hi [1]", "expect": ["Hello"]})
    fault = history.invoke("nemesis", "inject", {"fault": "kill", "id": "f1", "targets": ["courier-1"]})
    history.complete(mo, OK, {"msg_uuid": "u-1", "status": 200})
    history.complete(fault, OK, None)
    late = history.invoke("contact-2", "mo", {"urn": "tel:+250788000002", "text": "yo [2]", "expect": []})
    history.complete(late, INFO, {"error": "ReadTimeout"})
    return history


def test_round_trip_keeps_header_and_every_record(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    with record_sample(path) as recorder:
        in_memory = recorder.recorded()
    read = read_history(path)
    assert read.header == recorder.header
    assert read.header.run_id == "run-1" and read.header.seed == 42
    assert read.header.meta == {"topology": "standin-ha"}
    assert read.header.started_wall.endswith("Z")
    assert [op.to_record() for op in read.ops] == [op.to_record() for op in in_memory.ops]
    assert [op.type for op in read.ops] == ["invoke", "invoke", "ok", "ok", "invoke", "info"]
    assert read.ops[2].invoke_index == 0 and read.ops[3].invoke_index == 1
    assert not read.truncated


def test_every_line_is_a_flushed_json_record(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    recorder = record_sample(path)  # not closed: what a crash would leave
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "header"
    assert len(lines) == 7
    assert json.loads(lines[3]) == {
        "type": "ok",
        "index": 2,
        "process": "contact-1",
        "f": "mo",
        "value": {"msg_uuid": "u-1", "status": 200},
        "time": json.loads(lines[3])["time"],
        "invoke_index": 0,
    }
    recorder.close()


def test_operations_pair_invocations_and_merge_values() -> None:
    recorded = record_sample(None).recorded()
    mo, fault, late = recorded.operations
    assert (mo.type, fault.type, late.type) == (OK, OK, INFO)
    assert mo.value == {
        "urn": "tel:+250788000001",
        "text": "hi [1]",
        "expect": ["Hello"],
        "msg_uuid": "u-1",
        "status": 200,
    }
    assert mo.result == {"msg_uuid": "u-1", "status": 200}
    assert fault.value["fault"] == "kill" and fault.result == {}


def test_an_invocation_without_completion_counts_as_info() -> None:
    history = History(None, run_id="r", clock=FakeClock())
    history.invoke("contact-1", "mo", {"urn": "tel:+1", "text": "a"})
    (operation,) = history.recorded().operations
    assert operation.completion is None and operation.type == INFO and operation.end_time is None
    assert len(history.pending) == 1


def test_wall_clock_conversion_uses_the_anchors() -> None:
    header = History(None, run_id="r", clock=lambda: 1_000).header
    assert header.mono_to_wall_ns(1_000 + 7) == header.wall_anchor_ns + 7
    assert header.wall_to_mono_ns(header.mono_to_wall_ns(123_456)) == 123_456


def test_recording_is_thread_safe(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    recorder = History(path, run_id="threads")
    per_thread = 300

    def work(number: int) -> None:
        for i in range(per_thread):
            op = recorder.invoke(f"contact-{number}", "mo", {"urn": f"tel:+{number}", "text": f"{number}-{i}"})
            recorder.complete(op, OK if i % 3 else FAIL, {"status": 200})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.close()
    read = read_history(path)
    assert len(read.ops) == 8 * per_thread * 2
    assert [op.index for op in read.ops] == list(range(len(read.ops)))
    operations = read.operations
    assert len(operations) == 8 * per_thread
    assert all(o.completion is not None and o.completion.process == o.invoke.process for o in operations)
    assert all(o.invoke.time <= o.completion.time for o in operations if o.completion)


def test_a_torn_last_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    record_sample(path).close()
    text = path.read_text()
    path.write_text(text[: len(text) - 15])  # cut inside the last record
    with pytest.warns(TruncatedHistoryWarning, match=r"history.jsonl:7: last line is incomplete"):
        read = read_history(path)
    assert read.truncated
    assert len(read.ops) == 5
    assert read.operations[-1].type == INFO  # its completion was the torn line


def test_a_last_line_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    record_sample(path).close()
    path.write_text(path.read_text().rstrip("\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read = read_history(path)
    assert len(read.ops) == 6 and not read.truncated


def test_a_killed_recorder_leaves_a_readable_history(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    program = f"""
import os, signal
from resilience.history import History, OK
h = History({str(path)!r}, run_id="killed")
for i in range(200):
    op = h.invoke("contact-1", "mo", {{"urn": "tel:+1", "text": str(i)}})
    if i == 150:
        os.kill(os.getpid(), signal.SIGKILL)
    h.complete(op, OK, {{"msg_uuid": str(i)}})
"""
    finished = subprocess.run([sys.executable, "-c", program], check=False, timeout=60)
    assert finished.returncode == -9
    read = read_history(path)
    assert len(read.operations) == 151
    assert read.operations[-1].type == INFO and read.operations[-2].type == OK


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"empty; expected a header line first"),
        ('{"type": "invoke"}\n', r"h.jsonl:1: not a header record \(Invalid value 'invoke' - at `\$.type`\)"),
        ("[1, 2]\n", r"h.jsonl:1: not a header record \(Expected `object`, got `array`\)"),
        ('{"type":"header","run_id":"r","started_wall":"x","mono_anchor_ns":"1","wall_anchor_ns":2}\n',
         r"h.jsonl:1: .*Expected `int`, got `str` - at `\$.mono_anchor_ns`"),
    ],
)  # fmt: skip
def test_bad_headers_are_located(text: str, message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        parse_history(text, source="h.jsonl")


HEADER = '{"type":"header","run_id":"r","started_wall":"2026-01-01T00:00:00Z","mono_anchor_ns":0,"wall_anchor_ns":0}'
INVOKE0 = '{"type":"invoke","index":0,"process":"p","f":"mo","value":{},"time":1}'


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([INVOKE0, "{not json", INVOKE0], r"h.jsonl:3: not an op record \(JSON is malformed"),
        (['{"type":"invoke","index":0,"process":"p","value":{},"time":1}'],
         r"h.jsonl:2: not an op record \(Object missing required field `f`\)"),
        (['{"type":"invoke","index":3,"process":"p","f":"mo","value":{},"time":1}'], r"h.jsonl:2: index 3 out of"),
        (['{"type":"invoke","index":0,"process":"p","f":"mo","value":{},"time":1.5}'],
         r"h.jsonl:2: .*Expected `int`, got `float` - at `\$.time`"),
        ([INVOKE0, '{"type":"ok","index":1,"process":"p","f":"mo","value":{},"time":2,"invoke_index":7}'],
         r"h.jsonl:3 \(op 1\): ok names invoke_index 7, which is not an earlier invocation"),
        ([INVOKE0, '{"type":"ok","index":1,"process":"q","f":"mo","value":{},"time":2,"invoke_index":0}'],
         r"h.jsonl:3 \(op 1\): ok is for q mo but invocation 0 was p mo"),
        ([INVOKE0, '{"type":"ok","index":1,"process":"p","f":"mo","value":{},"time":2,"invoke_index":0}',
          '{"type":"fail","index":2,"process":"p","f":"mo","value":{},"time":3,"invoke_index":0}'],
         r"h.jsonl:4 \(op 2\): fail names invoke_index 0"),
        (['{"type":"maybe","index":0,"process":"p","f":"mo","value":{},"time":1}'],
         r"h.jsonl:2: .*Invalid enum value 'maybe' - at `\$.type`"),
    ],
)  # fmt: skip
def test_bad_records_are_located(lines: list[str], message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        parse_history("\n".join([HEADER, *lines]) + "\n", source="h.jsonl")


def test_recorder_refuses_misuse(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    recorder = History(path, run_id="r")
    op = recorder.invoke("p", "mo", {})
    recorder.complete(op, OK)
    with pytest.raises(HistoryError, match="is not a pending invocation"):
        recorder.complete(op, OK)
    with pytest.raises(HistoryError, match="type must be one of ok/fail/info"):
        recorder.complete(recorder.invoke("p", "mo"), "done")  # type: ignore[arg-type]
    with pytest.raises(HistoryError, match="not JSON-serialisable"):
        recorder.invoke("p", "mo", {"when": object()})
    with pytest.raises(HistoryError, match="process must be a non-empty string"):
        recorder.invoke("", "mo")
    with pytest.raises(HistoryError, match="already exists"):
        History(path, run_id="again")
    recorder.close()
    with pytest.raises(HistoryError, match="the history is closed"):
        recorder.invoke("p", "mo")
    with pytest.raises(HistoryError, match="no such history file"):
        read_history(tmp_path / "missing.jsonl")


def test_unserialisable_value_leaves_the_file_consistent(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    recorder = History(path, run_id="r")
    with pytest.raises(HistoryError):
        recorder.invoke("p", "mo", {"bad": object()})
    op = recorder.invoke("p", "mo", {"good": 1})
    recorder.complete(op, OK)
    recorder.close()
    assert [o.index for o in read_history(path).ops] == [0, 1]


def test_write_history_round_trips(tmp_path: Path) -> None:
    recorded = record_sample(None).recorded()
    write_history(recorded, tmp_path / "copy.jsonl")
    again = read_history(tmp_path / "copy.jsonl")
    assert isinstance(again, RecordedHistory)
    assert [o.to_record() for o in again.ops] == [o.to_record() for o in recorded.ops]
    with pytest.raises(HistoryError, match="already exists"):
        write_history(recorded, tmp_path / "copy.jsonl")
