"""`resilience check DIR` re-judges a stored run as the test did: each checker's verdict, the experiment's
decision from the run's policy.json, and the decision's exit code (0 valid, 1 invalid, 2 unknown, 3 bad
input). No cluster needed."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from resilience.checks.synthetic import WorldBuilder
from resilience.cli import main
from resilience.snapshot import Snapshot, write_snapshot
from resilience.verdict.policy import make_policy, write_policy
from resilience.verdict.weak_spots import courier_cut_between_insert_and_dedup


def stored_run(tmp_path: Path, plant: str | None = None, *, quiescent: bool = True) -> Path:
    """A kill-courier-like run directory: contacts converse, courier-1 is killed mid-run; `plant` names an
    inbound text to store twice."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    world = WorldBuilder(path=run_dir / "history.jsonl")
    for number in range(8):
        if number == 4:
            world.inject("kill", "f1", ["courier-1"])
        if number == 5:
            world.recover("f1", "kill")
        world.conversation(f"tel:+25078{number:07d}", f"c{number}")
    world.history.close()
    snapshot: Snapshot = world.snapshot(quiescent=quiescent, logs={"courier-1": []})
    if plant is not None:
        original = next(m for m in snapshot.msgs if m.direction == "I" and m.text == plant)
        snapshot.msgs.append(msgspec.structs.replace(original, id=original.id + 100_000))
    write_snapshot(snapshot, run_dir / "snapshot.json")
    policy = make_policy([*courier_cut_between_insert_and_dedup("kill courier-1", max=1)])
    write_policy(run_dir, policy)
    return run_dir


def check(run_dir: Path | str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["check", str(run_dir)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_clean_stored_run_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(stored_run(tmp_path), capsys)
    assert code == 0 and "decision: true" in out and "power: detects" in out


def test_one_documented_duplicate_at_the_kill_is_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(stored_run(tmp_path, "favorites [c4.0]"), capsys)
    assert code == 0, out
    assert "merged verdict: false" in out  # the checker found it; the experiment allows it
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    statuses = {f["kind"]: f["status"] for f in results["decision"]["findings"]}
    assert statuses == {"duplicated": "allowed"}


def test_a_duplicate_long_before_the_kill_is_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(stored_run(tmp_path, "favorites [c0.0]"), capsys)
    assert code == 1, out
    assert "inbound.duplicated" in out and "outside every allowance window" in out


def test_policy_of_judges_with_a_catalogue_experiments_current_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two duplicates at the kill: over the stored policy's maximum (1), within kill-courier's (2)."""
    run_dir = stored_run(tmp_path, "favorites [c4.0]")
    snapshot = json.loads((run_dir / "snapshot.json").read_text())
    original = next(m for m in snapshot["msgs"] if m["direction"] == "I" and m["text"] == "red [c4.1]")
    snapshot["msgs"].append({**original, "id": original["id"] + 200_000})
    (run_dir / "snapshot.json").write_text(json.dumps(snapshot))
    code, out, _ = check(run_dir, capsys)
    assert code == 1 and "over the maximum" in out, out
    stored = (run_dir / "results.json").read_text()

    capsys.readouterr()
    code = main(["check", str(run_dir), "--policy-of", "kill_courier"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "current policy" in out and (run_dir / "results.json").read_text() == stored

    capsys.readouterr()
    code = main(["check", str(run_dir), "--policy-of", "no_such_experiment"])
    captured = capsys.readouterr()
    assert code == 3 and "no experiment module" in captured.err and "Traceback" not in captured.err


def test_an_undecided_run_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = stored_run(tmp_path, quiescent=False)
    snapshot = json.loads((run_dir / "snapshot.json").read_text())
    snapshot["msgs"] = [m for m in snapshot["msgs"] if m["text"] != "red [c1.1]"]
    (run_dir / "snapshot.json").write_text(json.dumps(snapshot))
    code, out, _ = check(run_dir, capsys)
    assert code == 2, out
    assert "undecided" in out


def test_bad_input_exits_three_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = stored_run(tmp_path)
    code, out, err = check(run_dir / "history.jsonl", capsys)
    assert code == 3 and "expected a run directory" in err and "Traceback" not in err + out

    lines = (run_dir / "history.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    header["meta"] = {"checker_options": ["inbound"]}
    (run_dir / "history.jsonl").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    code, out, err = check(run_dir, capsys)
    assert code == 3 and "checker_options must be a mapping" in err and "Traceback" not in err

    header["meta"] = {}
    (run_dir / "history.jsonl").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    snapshot = json.loads((run_dir / "snapshot.json").read_text())
    del snapshot["aggregator"]
    (run_dir / "snapshot.json").write_text(json.dumps(snapshot))
    code, out, err = check(run_dir, capsys)
    assert code == 3 and "missing required field `aggregator`" in err


def test_a_run_without_a_policy_is_judged_with_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = stored_run(tmp_path, "favorites [c4.0]")
    (run_dir / "policy.json").unlink()
    code, out, _ = check(run_dir, capsys)
    assert code == 1 and "no policy.json" in out


def test_run_maps_pytest_and_the_decisions_to_one_meaning_per_code() -> None:
    from types import SimpleNamespace

    from resilience.checks.result import Validity
    from resilience.cli_experiments import exit_code_of

    def outcome(validity: Validity) -> object:
        return SimpleNamespace(decision=SimpleNamespace(validity=validity))

    assert exit_code_of(0, [outcome(Validity.TRUE)]) == 0
    assert exit_code_of(1, [outcome(Validity.TRUE), outcome(Validity.FALSE)]) == 1
    assert exit_code_of(1, [outcome(Validity.TRUE), outcome(Validity.UNKNOWN)]) == 2
    assert exit_code_of(1, [outcome(Validity.TRUE)]) == 1  # another test failed: not a verdict of ours
    assert exit_code_of(2, []) == 3  # collection errors
    assert exit_code_of(2, [], interrupted=True) == 130
    assert exit_code_of(4, []) == 3 and exit_code_of(5, []) == 3
