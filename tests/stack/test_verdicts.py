"""A verdict must be able to fail: planted bugs in the stand-ins turn the right checker false, with examples
that name the damage; clean runs are valid; `resilience check DIR` reaches the same verdicts from the files."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_support import Database, switches

from resilience.checks import CheckResult, Validity
from resilience.cli import main
from resilience.cli_experiments import load_experiment
from resilience.cluster import Cluster
from resilience.experiment import Experiment, Outcome, SteadyState, run_experiment
from resilience.history import OK, read_history
from resilience.workload.runner import WorkloadConfig

pytestmark = pytest.mark.stack

CLEAN_SEEDS = (11, 23, 37, 41, 59)
DROP_LINE = re.compile(r"drop_after_ack: acknowledging msg ([0-9a-f-]{36}) without writing it")


# A planted bug breaks the cluster on purpose: the steady-state probe's own message may be dropped too (CI once
# lost it twice at drop_after_ack 0.3 and refused to run), so planted runs only record the probe.
PLANTED = SteadyState.RECORD


def run(
    cluster: Cluster, reports_root: Path, name: str, seed: int, steady: SteadyState = SteadyState.ENFORCE,
    **workload: object,
) -> Outcome:  # fmt: skip
    settings: dict[str, object] = {"rate": 4, "duration": 6, "seed": seed, **workload}
    config = WorkloadConfig(**settings)  # type: ignore[arg-type]
    return run_experiment(cluster, Experiment(name=name, workload=config, steady_state=steady), reports_root)


def verdicts(outcome: Outcome) -> dict[str, Validity]:
    return {r.name: r.valid for r in outcome.results}


def result(outcome: Outcome, name: str) -> CheckResult:
    return next(r for r in outcome.results if r.name == name)


def recheck(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str], str]:
    """`resilience check DIR`: its exit code, the verdict per checker in its table, and its merged verdict."""
    capsys.readouterr()
    code = main(["check", str(run_dir)])
    out = capsys.readouterr().out
    table = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) >= 4 and cells[1] and cells[1] != "checker":
            table[cells[1]] = cells[2]
    merged = re.search(r"merged verdict: (\w+)", out)
    assert merged, out
    return code, table, merged.group(1)


def assert_recheck_agrees(outcome: Outcome, capsys: pytest.CaptureFixture[str]) -> None:
    code, table, merged = recheck(outcome.run_dir, capsys)
    assert table == {name: valid.value for name, valid in verdicts(outcome).items()}
    assert merged == outcome.merged.value
    assert code == {Validity.TRUE: 0, Validity.FALSE: 1, Validity.UNKNOWN: 2}[outcome.merged]


def acknowledged_mo_uuids(run_dir: Path) -> list[str]:
    history = read_history(run_dir / "history.jsonl")
    return [op.value["msg_uuid"] for op in history.operations if op.f == "mo" and op.type == OK]


@pytest.fixture
def capsys_clean(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    capsys.readouterr()
    yield capsys


@pytest.mark.timeout(90)
@pytest.mark.parametrize("seed", CLEAN_SEEDS)
def test_clean_run_is_valid(
    cluster: Cluster, reports_root: Path, seed: int, capsys_clean: pytest.CaptureFixture[str]
) -> None:
    outcome = run(cluster, reports_root, f"clean-{seed}", seed)
    assert outcome.stats.mo_ok > 0 and outcome.stats.completed == outcome.stats.conversations, outcome.stats
    assert outcome.merged is Validity.TRUE, outcome.summary()
    assert all(v is Validity.TRUE for v in verdicts(outcome).values()), outcome.summary()
    assert_recheck_agrees(outcome, capsys_clean)


@pytest.mark.timeout(180)
def test_dropped_acknowledged_mos_make_inbound_false(
    cluster: Cluster, reports_root: Path, database: Database, capsys_clean: pytest.CaptureFixture[str]
) -> None:
    # No resends and a short reply wait: a conversation whose MO was dropped simply stops.
    with switches(cluster, {"courier": {"drop_after_ack": 0.3}}):
        outcome = run(
            cluster, reports_root, "drop-after-ack", 7, PLANTED, duration=8, resend_attempts=0, reply_timeout=8
        )

    inbound = result(outcome, "inbound")
    assert inbound.valid is Validity.FALSE, outcome.summary()

    # What courier says it dropped (its log), against what the workload was told was accepted.
    dropped = set()
    for log in (outcome.run_dir / "logs").glob("courier-*.log"):
        dropped.update(DROP_LINE.findall(log.read_text()))
    acknowledged = acknowledged_mo_uuids(outcome.run_dir)
    lost = [u for u in acknowledged if u in dropped]
    assert lost, "courier logged no dropped workload MO"
    assert inbound.counts["lost"] == len(lost)
    assert inbound.counts["ok_present"] == len(acknowledged) - len(lost)
    assert database.msgs_by_uuid(lost) == []

    examples = [e for e in inbound.examples if e["kind"] == "lost"]
    assert len(examples) == min(len(lost), 10)
    for example in examples:
        assert example["msg_uuid"] in lost and example["rows"] == [], example
    assert_recheck_agrees(outcome, capsys_clean)


@pytest.mark.timeout(180)
def test_duplicated_replies_make_outbound_false(
    cluster: Cluster, reports_root: Path, database: Database, capsys_clean: pytest.CaptureFixture[str]
) -> None:
    with switches(cluster, {"mailroom": {"duplicate_reply": 0.5}}):
        outcome = run(cluster, reports_root, "duplicate-reply", 13, PLANTED)

    outbound = result(outcome, "outbound")
    assert outbound.valid is Validity.FALSE, outcome.summary()
    assert result(outcome, "inbound").valid is Validity.TRUE, outcome.summary()

    # Each owed reply is one outgoing row per contact; every further row with the same text is a duplicate.
    rows = Counter((r["urn"], r["text"]) for r in database.msgs(outcome.stats.urns) if r["direction"] == "O")
    extra = sum(n - 1 for n in rows.values())
    assert extra > 0
    counted = outbound.counts["duplicate_replies"] + outbound.counts["duplicate_replies_indeterminate"]
    assert counted == extra, outcome.summary()
    assert outbound.counts["duplicates"] >= outbound.counts["duplicate_replies"] > 0
    for example in (e for e in outbound.examples if e["kind"] == "duplicate_replies"):
        assert rows[(example["urn"], example["text"])] == example["arrived"] > example["owed"], example
    assert_recheck_agrees(outcome, capsys_clean)



@pytest.mark.outage
@pytest.mark.timeout(300)
def test_a_courier_that_drops_acknowledged_mos_is_not_excused_as_replication_loss(
    cluster: Cluster, reports_root: Path, capsys_clean: pytest.CaptureFixture[str]
) -> None:
    # Issue 8, seen on this stack: pg-failover-async with a planted courier bug (3 % of acknowledged MOs
    # dropped) passed, its losses diagnosed as Postgres replication loss. Allowances bound to the failover's
    # window excuse at most what replication can lose there; the planted losses elsewhere fail the run.
    experiment = dataclasses.replace(
        load_experiment("pg_failover_async"),
        workload=WorkloadConfig(rate=4, duration=42, seed=5, resend_attempts=0, reply_timeout=10),
        steady_state=PLANTED,
    )
    # 10 %, not 3 %: at 3 % a run once dropped a single MO, inside the failover's window and maximum (3), which
    # the rule rightly excuses; ~16 drops over 163 MOs cannot all hide there.
    with switches(cluster, {"courier": {"drop_after_ack": 0.1}}):
        outcome = run_experiment(cluster, experiment, reports_root)
    assert outcome.decision.validity is Validity.FALSE, outcome.summary()
    refused = [j for j in outcome.decision.new if j.finding.key == "inbound.lost"]
    assert refused, outcome.summary()
    assert all("outside every allowance window" in j.rule or "over the maximum" in j.rule for j in refused)
    code, _table, _merged = recheck(outcome.run_dir, capsys_clean)
    assert code == 1  # `resilience check DIR` reaches the test's decision
