"""report.html from a run directory: self-contained, verdict first, fault bands, checkers, logs, and
what happens when files are missing or broken."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console

from resilience.checks import merge, run_all
from resilience.checks.result import CheckResult, Validity
from resilience.history import FAIL, INFO, NEMESIS, OK, CompletionType, History, read_history
from resilience.report import (
    Finding,
    Journal,
    Probe,
    ReportError,
    TopologyInfo,
    faults_from_history,
    generate_report,
    series,
    update_latest,
    write_journal,
    write_results,
)
from resilience.report.cli import main as report_main
from resilience.report.journal import iso_of_wall_ns
from resilience.snapshot import Delivery, Direction, Msg, MsgStatus, Snapshot, write_snapshot

NS = 1_000_000_000


class RunBuilder:
    """Writes a run directory's history.jsonl through History on a virtual clock, and the snapshot a
    RapidPro that answered every accepted MO after `reply_delay_s` would leave."""

    def __init__(self, run_dir: Path, *, seed: int = 7) -> None:
        self.run_dir = run_dir
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.now = 5_000 * NS
        self.origin = self.now
        self.history = History(
            run_dir / "history.jsonl",
            run_id="run-test",
            seed=seed,
            meta={"experiment": "kill-courier"},
            clock=lambda: self.now,
        )
        self.msgs: list[Msg] = []
        self.deliveries: list[Delivery] = []
        self.sent = 0

    def at(self, second: float) -> None:
        self.now = self.origin + int(second * NS)

    def wall_ns(self, second: float) -> int:
        return self.history.header.mono_to_wall_ns(self.origin + int(second * NS))

    def mo(
        self, second: float, outcome: CompletionType = OK, *, reply_delay_s: float = 0.5, delivered: bool = True
    ) -> None:
        self.at(second)
        self.sent += 1
        urn = f"tel:+2507800{self.sent:05d}"
        reply = f"Thanks {self.sent}"
        value = {"urn": urn, "text": f"hello {self.sent}", "conversation": f"c{self.sent}", "step": 0}
        value |= {"expect": [reply], "final": True}
        op = self.history.invoke(f"contact-{self.sent}", "mo", value)
        self.now += int(0.02 * NS)
        if outcome == OK:
            inbound = self._row(urn, "I", "H", f"hello {self.sent}")
            self.history.complete(op, OK, {"msg_uuid": inbound.uuid, "status": 200})
            outbound = self._row(urn, "O", "W", reply)
            if delivered:
                arrival = self.wall_ns(second + reply_delay_s)
                self.deliveries.append(Delivery(0, str(outbound.id), urn, reply, arrival))
        elif outcome == FAIL:
            self.history.complete(op, FAIL, {"status": 400})
        else:
            self.history.complete(op, INFO, {"error": "timeout"})

    def _row(self, urn: str, direction: Direction, status: MsgStatus, text: str) -> Msg:
        row = Msg(
            len(self.msgs) + 1, f"00000000-0000-4000-8000-{len(self.msgs) + 1:012d}", direction, status, text, urn
        )
        self.msgs.append(row)
        return row

    def inject(self, second: float, kind: str, fault_id: str, targets: list[str], **facts: object) -> None:
        self.at(second)
        op = self.history.invoke(NEMESIS, "inject", {"fault": kind, "id": fault_id, "targets": targets})
        self.now += int(0.05 * NS)
        self.history.complete(op, OK, {"fault": kind, "id": fault_id, **facts})

    def recover(self, second: float, fault_id: str, outcome: CompletionType = OK) -> None:
        self.at(second)
        op = self.history.invoke(NEMESIS, "recover", {"id": fault_id})
        self.now += int(0.05 * NS)
        self.history.complete(op, outcome, {"id": fault_id})

    def finish(self) -> Snapshot:
        self.history.close()
        arrived = sorted(self.deliveries, key=lambda d: d.received_wall_ns)
        aggregator = [Delivery(seq, d.msg_id, d.to, d.text, d.received_wall_ns) for seq, d in enumerate(arrived)]
        snapshot = Snapshot(msgs=self.msgs, aggregator=aggregator, quiescent=True)
        write_snapshot(snapshot, self.run_dir / "snapshot.json")
        return snapshot

    def log(self, node: str, lines: list[tuple[float | None, str]]) -> None:
        """Log lines at seconds since the start (None: no timestamp), Docker's RFC 3339 prefix."""
        with (self.run_dir / "logs" / f"{node}.log").open("w") as handle:
            for second, text in lines:
                prefix = "" if second is None else iso_of_wall_ns(self.wall_ns(second)) + " "
                handle.write(prefix + text + "\n")


def build_run(run_dir: Path, *, lost_reply: bool = False) -> RunBuilder:
    """Ten seconds of one MO per second; courier-1 killed from 3 s to 6 s; MOs during it fail or are unknown;
    a proxy toxic injected at 8 s and never recovered."""
    world = RunBuilder(run_dir)
    for second in range(10):
        outcome: CompletionType = OK
        if second == 4:
            outcome = FAIL
        elif second == 5:
            outcome = INFO
        world.mo(second + 0.1, outcome, delivered=not (lost_reply and second == 7))
        if second == 3:
            world.inject(3.5, "kill", "f1", ["courier-1"], signal="KILL")
        if second == 6:
            world.recover(6.5, "f1")
        if second == 8:
            world.inject(8.5, "proxy-latency", "f2", ["toxiproxy-1"], latency_ms=300)
    world.finish()
    return world


def journal_for(world: RunBuilder, checks: list[CheckResult], **changes: object) -> Journal:
    history = read_history(world.run_dir / "history.jsonl")
    journal = Journal(
        experiment="kill-courier",
        run_id="run-test",
        description="SIGKILL one courier under load",
        expectations="Every acknowledged MO is stored once.",
        seed=7,
        topology=TopologyInfo("standin-ha", "harness/topologies/standin-ha.yaml", ["courier-1", "courier-2"]),
        started_at=history.header.started_wall,
        wall_time_s=12.5,
        workload={"rate": 1.0, "duration": 10},
        steady_state_before={"round trip": Probe(True, "0.4 s")},
        steady_state_after={"round trip": Probe(False, "no reply within 10 s")},
        faults=faults_from_history(history),
        checks=checks,
        verdict=merge(checks),
        findings=[
            Finding("outbound: lost", known=True, detail="courier killed after the pop"),
            Finding("inbound: duplicated", known=False, detail="a new one"),
        ],
    )
    for name, value in changes.items():
        setattr(journal, name, value)
    return journal


def checked_run(run_dir: Path, *, lost_reply: bool = False) -> tuple[RunBuilder, list[CheckResult]]:
    """A run directory with history, snapshot, results from the real checkers, journal and logs."""
    world = build_run(run_dir, lost_reply=lost_reply)
    history = read_history(run_dir / "history.jsonl")
    from resilience.snapshot import read_snapshot

    results = run_all(history, read_snapshot(run_dir / "snapshot.json"))
    write_results(run_dir, results, merge(results))
    write_journal(run_dir, journal_for(world, results))
    world.log(
        "courier-1",
        [
            (-3.0, "long before the fault"),
            (3.0, "just before the kill"),
            (3.6, "ERROR connection refused"),
            (None, "  continuation of the error"),
            (30.0, "long after every fault"),
        ],
    )
    world.log("lb-1", [(None, f"haproxy line {n}") for n in range(60)])
    return world, results


def made_result(name: str, valid: Validity, examples: int = 0) -> CheckResult:
    return CheckResult(
        name=name,
        valid=valid,
        counts={"lost": examples, "ok": 9},
        examples=[{"kind": "lost", "urn": f"tel:+25078{n:07d}", "op": n} for n in range(examples)],
        details={"per_second": [[s, 1, 0, 0] for s in range(50)]},
    )


class Resources(HTMLParser):
    """Every URL the page would load (src, href, CSS url()/@import) and every tag name."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "data", "action") and value is not None:
                self.urls.append(value)
            if name == "style" and value:
                self.urls.extend(re.findall(r"url\(([^)]*)\)", value))

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls.extend(re.findall(r"url\(([^)]*)\)", data))
            self.urls.extend(re.findall(r"@import\s+([^;]+)", data))


def resources(html: str) -> Resources:
    parser = Resources()
    parser.feed(html)
    return parser


def fault_rows(html: str) -> list[tuple[str, str]]:
    return re.findall(r'class="fault-band" data-start-s="([^"]*)" data-end-s="([^"]*)"', html)


def verdict_badge(html: str) -> str:
    found = re.search(r'<span class="badge big (\w+)" id="verdict"[^>]*>(\w+)</span>', html)
    assert found, "no verdict badge"
    assert found.group(1) == found.group(2)
    return found.group(1)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "20240501-120000-kill-courier"
    path.mkdir()
    return path


def test_report_is_self_contained(run_dir: Path) -> None:
    checked_run(run_dir)
    html = generate_report(run_dir).read_text()
    found = resources(html)
    assert found.urls, "the page has its figure"
    external = [u for u in found.urls if not (u.startswith("data:") or u.startswith("#"))]
    assert external == []
    assert not {"script", "link", "iframe"} & found.tags
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html)
    figure = next(u for u in found.urls if u.startswith("data:image/png;base64,"))
    assert base64.b64decode(figure.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")


def test_report_shows_verdict_faults_checkers_and_examples(run_dir: Path) -> None:
    _, results = checked_run(run_dir, lost_reply=True)
    html = generate_report(run_dir).read_text()
    merged = merge(results)
    assert merged == Validity.FALSE  # the lost reply
    assert verdict_badge(html) == "invalid"
    # the verdict comes before what happened, which comes before the details
    assert html.index('id="verdict"') < html.index('id="summary"') < html.index('id="faults"')
    assert html.index('id="faults"') < html.index('id="check-inbound"')
    assert fault_rows(html) == [("3.5", "6.55"), ("8.5", "")]
    assert "not recovered" in html
    assert "signal=<b>KILL</b>" in html and "latency_ms=<b>300</b>" in html
    alt = re.search(r'<img src="data:image/png;base64,[^"]+" alt="([^"]*)"', html)
    assert alt and "#1 kill courier-1 3.5–6.5 s" in alt.group(1) and "#2 proxy-latency" in alt.group(1)
    for result in results:
        assert f'id="check-{result.name}"' in html
    outbound = next(r for r in results if r.name == "outbound")
    assert outbound.valid == Validity.FALSE and outbound.examples
    section = html[html.index('id="check-outbound"') :]
    section = section[: section.index("</section>")]
    assert "tel:+250780000008" in section  # the MO at 7 s whose reply was lost (the 8th sent)
    assert "outbound: lost" in html and "Known RapidPro v9 behaviour" in html
    assert "FAILED" in html and "no reply within 10 s" in html  # steady state after


@pytest.mark.parametrize(
    ("validity", "word"), [(Validity.FALSE, "invalid"), (Validity.TRUE, "valid"), (Validity.UNKNOWN, "unknown")]
)
def test_verdict_badge_follows_the_results(run_dir: Path, validity: Validity, word: str) -> None:
    world = build_run(run_dir)
    checks = [made_result("inbound", Validity.TRUE), made_result("outbound", validity, examples=3)]
    write_results(run_dir, checks, merge(checks))
    write_journal(run_dir, journal_for(world, checks))
    html = generate_report(run_dir).read_text()
    assert verdict_badge(html) == word
    row = re.search(r'<td><a href="#check-outbound">outbound</a></td>\s*<td><span class="badge (\w+)">', html)
    assert row and row.group(1) == word


def test_at_most_ten_examples_and_long_details_are_cut(run_dir: Path) -> None:
    world = build_run(run_dir)
    checks = [made_result("inbound", Validity.FALSE, examples=10)]
    write_results(run_dir, checks, Validity.FALSE)
    write_journal(run_dir, journal_for(world, checks))
    html = generate_report(run_dir).read_text()
    table = html[html.index('<table class="examples">') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 11  # header and ten examples
    assert "tel:+250780000009" in table
    assert "… 30 more" in html  # per_second's 50 items cut to 20


def test_results_json_wins_over_the_journal(run_dir: Path) -> None:
    """`resilience check` rewrites results.json after the run: the page follows it."""
    world = build_run(run_dir)
    write_journal(run_dir, journal_for(world, [made_result("inbound", Validity.FALSE, 1)]))
    write_results(run_dir, [made_result("inbound", Validity.TRUE)], Validity.TRUE)
    assert verdict_badge(generate_report(run_dir).read_text()) == "valid"


def test_a_missing_snapshot_costs_only_the_latency(run_dir: Path) -> None:
    checked_run(run_dir)
    (run_dir / "snapshot.json").unlink()
    html = generate_report(run_dir).read_text()
    assert 'id="problems"' in html
    assert re.search(r"snapshot\.json: no such snapshot file — latency not shown", html)
    assert "data:image/png;base64," in html and fault_rows(html)
    assert "Latency:" not in html


def test_a_missing_history_falls_back_to_the_journal_faults(run_dir: Path) -> None:
    checked_run(run_dir)
    (run_dir / "history.jsonl").unlink()
    html = generate_report(run_dir).read_text()
    assert "history.jsonl: no such history file — timeline, throughput and latency not shown" in html
    assert "data:image/png" not in html
    assert fault_rows(html) == [("3.5", "6.55"), ("8.5", "")]  # from journal.json
    assert verdict_badge(html) in ("valid", "invalid", "unknown")


def test_broken_files_are_named_and_the_rest_still_renders(run_dir: Path) -> None:
    checked_run(run_dir)
    (run_dir / "results.json").write_text("{not json")
    journal = json.loads((run_dir / "journal.json").read_text())
    journal["faults"][0]["kind"] = 17
    (run_dir / "journal.json").write_text(json.dumps(journal))
    html = generate_report(run_dir).read_text()
    assert "results.json: not JSON" in html
    assert "journal.json: Expected `str`, got `int` - at `$.faults[0].kind`" in html
    assert verdict_badge(html) == "unknown"  # neither file could say
    assert "No checker results were found" in html
    assert fault_rows(html)  # the history still gives the timeline


def test_a_torn_history_is_reported_and_used(run_dir: Path) -> None:
    checked_run(run_dir)
    with (run_dir / "history.jsonl").open("a") as handle:
        handle.write('{"type": "invoke", "ind')
    html = generate_report(run_dir).read_text()
    assert "last line is incomplete" in html
    assert fault_rows(html)


def test_not_a_run_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ReportError, match="no such run directory"):
        generate_report(tmp_path / "absent")
    with pytest.raises(ReportError, match=r"holds none of history\.jsonl"):
        generate_report(tmp_path)
    assert report_main([str(tmp_path / "absent")]) == 3  # bad input
    error = capsys.readouterr().err
    assert "absent: no such run directory" in error and "Traceback" not in error


def test_logs_around_each_fault(run_dir: Path) -> None:
    checked_run(run_dir)
    html = generate_report(run_dir).read_text()
    logs = html[html.index("Node logs around faults") :]
    assert "just before the kill" in logs
    assert "ERROR connection refused" in logs and 'class="line trouble"' in logs
    assert "continuation of the error" in logs  # an untimed line takes its predecessor's time
    assert "long before the fault" not in logs  # 6.5 s before the injection
    assert "long after every fault" not in logs
    assert "Logs without timestamps" in logs
    assert "haproxy line 59" in logs and "haproxy line 19" not in logs  # the tail (40 lines)


def test_console_summary(run_dir: Path) -> None:
    _, results = checked_run(run_dir, lost_reply=True)
    (run_dir / "snapshot.json").unlink()
    console = Console(record=True, width=140, color_system=None)
    generate_report(run_dir, console=console)
    text = console.export_text()
    for result in results:
        assert result.name in text
    assert "verdict: INVALID" in text
    assert "not read:" in text and "snapshot.json" in text
    assert "report.html" in text


def test_series_count_what_was_recorded(run_dir: Path) -> None:
    build_run(run_dir)
    history = read_history(run_dir / "history.jsonl")
    flow = series.throughput(history)
    assert flow.bucket_s == 1
    assert sum(flow.ok) == 8 and sum(flow.fail) == 1 and sum(flow.info) == 1
    assert flow.fail[4] == 1 and flow.info[5] == 1 and flow.ok[4] == 0
    from resilience.snapshot import read_snapshot

    samples = series.first_reply_latencies(history, read_snapshot(run_dir / "snapshot.json"))
    latency = series.latency(history, samples)
    assert latency.samples == 8
    assert all(p is None or p == pytest.approx(0.5, abs=1e-6) for p in latency.p50)


def test_long_runs_are_bucketed() -> None:
    assert series.bucket_width_s(59) == 1
    assert series.bucket_width_s(600) == 1
    assert series.bucket_width_s(601) == 2
    assert series.bucket_width_s(3600) == 6


def test_update_latest_points_at_the_newest_run(tmp_path: Path) -> None:
    older = tmp_path / "20240501-120000-kill-courier"
    newer = tmp_path / "20240501-130000-partition"
    older.mkdir()
    newer.mkdir()
    link = update_latest(tmp_path, newer)
    assert link.is_symlink() and link.readlink() == Path(newer.name)
    assert update_latest(tmp_path, older).resolve() == newer.resolve()  # a newer run already finished
    newest = tmp_path / "20240502-000000-kill-courier"
    newest.mkdir()
    assert update_latest(tmp_path, newest).resolve() == newest.resolve()
    (tmp_path / "latest").unlink()
    (tmp_path / "latest").mkdir()
    with pytest.raises(ReportError, match="not a symlink"):
        update_latest(tmp_path, newest)
