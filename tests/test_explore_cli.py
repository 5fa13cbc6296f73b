"""`resilience explore` without Docker: its options, the found experiment module (loadable, with the minimal
schedule and the base's policy), the record, and an interruption that keeps what was played."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from resilience import cli_explore
from resilience.checks import Validity
from resilience.cli import main
from resilience.cli_experiments import load_experiment
from resilience.cluster import DEFAULT_TOPOLOGY
from resilience.explore.found import found_module, write_found_module
from resilience.explore.search import TrialOutcome
from resilience.explore.shrink import Candidate, episodes_of
from resilience.faults.schedule import parse_schedule
from resilience.topology import load_topology
from resilience.workload.runner import WorkloadConfig

MINIMAL = "at 5 kill courier-2 as kill-3; recover kill-3 at 18\nat 12.3 pg-failover as pg-failover-5\n"


def minimal_candidate() -> Candidate:
    return Candidate(episodes_of(parse_schedule(MINIMAL)), WorkloadConfig(rate=0.5, duration=23, seed=77), seed=77)


@pytest.mark.parametrize(("text", "seconds"), [("900", 900), ("90s", 90), ("45m", 2700), ("1h30m", 5400)])
def test_budgets_read_as_people_write_them(text: str, seconds: float) -> None:
    assert cli_explore.parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "m"])
def test_a_bad_budget_says_what_is_expected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="like 900, 90s, 45m"):
        cli_explore.parse_budget(text)


def test_repetitions_are_k_of_n() -> None:
    assert cli_explore.parse_repeat("2/3") == (2, 3)
    for bad in ("3/2", "0/3", "2", "a/b"):
        with pytest.raises(argparse.ArgumentTypeError, match="1 ≤ K ≤ N"):
            cli_explore.parse_repeat(bad)


def test_chase_takes_a_checker_or_one_of_its_findings() -> None:
    assert cli_explore.chase_item("inbound") == "inbound"
    assert cli_explore.chase_item("inbound.lost") == "inbound.lost"
    for bad in ("inbund", "inbound.", "meteor.lost"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"or checker\.kind, e\.g\. inbound\.lost"):
            cli_explore.chase_item(bad)


def test_unknown_fault_kinds_are_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--faults", "kill", "meteor", "--budget", "10m"]) == 3
    assert "unknown kind 'meteor'" in capsys.readouterr().err


def test_faults_name_their_targets_after_a_colon() -> None:
    kinds, targets = cli_explore.parse_faults(["kill:courier,mailroom", "pg-failover:kill", "lb-cut"])
    assert kinds == ("kill", "pg-failover", "lb-cut")
    assert targets == {"kill": ("courier", "mailroom"), "pg-failover": ("kill",)}
    for words, fragment in (
        (["kill:"], "names no target after the colon"),
        (["kill:courier", "kill:web"], "kill is given twice"),
        (["kil:courier"], "unknown kind 'kil'"),
    ):
        with pytest.raises(cli_explore.ExploreError, match=fragment):
            cli_explore.parse_faults(words)


def test_the_found_module_is_a_ready_experiment_with_the_minimal_schedule_and_the_base_policy(tmp_path: Path) -> None:
    name, text = found_module(
        minimal_candidate(), base="nightly_mixed", target="inbound.lost", seed=4, original_faults=5, runs=52, k=2, n=3
    )
    assert name == "test_found_inbound_lost_4.py"
    path = write_found_module(tmp_path, name, text)
    experiment = load_experiment(path.stem, directory=tmp_path)
    base = load_experiment("nightly_mixed")

    assert experiment.name == "found-inbound-lost-4"
    assert experiment.workload == WorkloadConfig(rate=0.5, duration=23, seed=77)
    found = parse_schedule(experiment.schedule, load_topology(DEFAULT_TOPOLOGY))
    steps = [(s.at, s.action, s.fault.describe()) for s in found.steps]
    assert steps == [(s.at, s.action, s.fault.describe()) for s in minimal_candidate().schedule().steps]
    assert experiment.allowances == base.allowances and experiment.bounds == base.bounds
    assert "inbound.lost" in experiment.expectations
    # Kinds explored beyond the base's are judged by their documented weak spots, bound to those kinds.
    _name, widened = found_module(
        minimal_candidate(), base="nightly_mixed", target="inbound.lost", seed=5, original_faults=5, runs=9, k=2, n=3,
        extra_kinds=("pg-failover",),
    )  # fmt: skip
    extra = load_experiment(write_found_module(tmp_path, "test_widened.py", widened).stem, directory=tmp_path)
    added = extra.allowances[len(base.allowances) :]
    assert added and {a.fault for a in added} == {"pg-failover"}
    # A second, different find of the same name does not overwrite the first.
    other = write_found_module(tmp_path, name, text.replace("rate=0.5", "rate=1.0"))
    assert other != path and path.read_text() == text


def test_an_interrupted_exploration_records_what_it_played_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    played: list[str] = []

    class FakeRun:
        topology = load_topology(DEFAULT_TOPOLOGY)
        run_id = "fake"

    class FakeCluster:
        run = FakeRun()

    def runner(candidate: Candidate, label: str) -> TrialOutcome:
        if len(played) == 2:
            raise KeyboardInterrupt
        played.append(label)
        return TrialOutcome(Validity.TRUE, frozenset(), seconds=1.0)

    import resilience.cluster
    import resilience.explore.trial

    monkeypatch.setattr(resilience.cluster, "attach_cluster", lambda _run: FakeCluster())
    monkeypatch.setattr(resilience.explore.trial, "ClusterTrials", lambda *_a, **_k: runner)
    code = main(
        ["explore", "--reuse-cluster", "fake", "--budget", "2h", "--seed", "9", "--report-dir", str(tmp_path),
         "--found-dir", str(tmp_path / "found")]
    )  # fmt: skip
    assert code == 130
    out = capsys.readouterr().out
    assert "interrupted (SIGINT)" in out
    record = json.loads(next(tmp_path.glob("*-explore/journal.json")).read_text())
    assert [r["label"] for r in record["runs"]] == played and len(played) == 2
    assert record["interrupted"] == "SIGINT" and record["failing"] is None
    assert (next(tmp_path.glob("*-explore")) / "index.html").read_text().count("<tr>") == 3
    assert not (tmp_path / "found").exists()
