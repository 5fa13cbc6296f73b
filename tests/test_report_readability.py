"""report.html reads well: the run named once and no empty facts, node names that do not wrap, quiet nodes
in one line, trouble only where a line says so, one timestamp a line, one row per distinct image, and the
faults' numbers above the plots rather than over their data."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib import pyplot as plt
from test_report import build_run, checked_run, journal_for

from resilience.report import generate_report, write_journal
from resilience.report import plots as plots_module
from resilience.report.html import image_rows
from resilience.report.journal import Versions
from resilience.report.logs import LogLine


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "20240501-120000-kill-courier"
    path.mkdir()
    return path


def facts(html: str) -> dict[str, str]:
    block = html[html.index('<dl class="facts">') : html.index("</dl>")]
    return {
        dt: re.sub(r"<[^>]+>", "", dd).strip()
        for dt, dd in re.findall(r"<dt>([^<]+)</dt><dd[^>]*>(.*?)</dd>", block, re.S)
    }


def test_the_run_is_named_once_and_absent_facts_are_left_out(run_dir: Path) -> None:
    world, results = checked_run(run_dir)
    write_journal(run_dir, journal_for(world, results, run_id=run_dir.name))
    html = generate_report(run_dir).read_text()
    shown = facts(html)
    assert shown["Run"] == run_dir.name
    assert "Run directory" not in shown and "Run id" not in shown
    assert "–" not in shown.values()  # a fact with no value is left out, not shown as a dash
    # A run id that differs from its directory's name still shows both.
    write_journal(run_dir, journal_for(world, results, run_id="other-id"))
    shown = facts(generate_report(run_dir).read_text())
    assert shown["Run"] == "other-id" and shown["Run directory"] == run_dir.name


def test_null_fault_facts_are_not_shown(run_dir: Path) -> None:
    world = build_run(run_dir)
    world.log("courier-1", [(3.0, "x")])
    journal = journal_for(world, [])
    journal.faults[0].facts = {"signal": "KILL", "pid": None}
    write_journal(run_dir, journal)
    html = generate_report(run_dir).read_text()
    table = html[html.index('<table id="faults">') : html.index("</table>", html.index('<table id="faults">'))]
    assert "signal=<b>KILL</b>" in table
    assert "pid=" not in table and "null" not in table


def test_node_names_do_not_wrap_and_quiet_nodes_take_one_line(run_dir: Path) -> None:
    world, results = checked_run(run_dir)
    nodes = [f"courier-{n}" for n in range(1, 3)] + [f"web-{n}" for n in range(1, 16)]
    journal = journal_for(world, results)
    assert journal.topology is not None
    journal.topology.nodes = nodes
    write_journal(run_dir, journal)
    for node in nodes[1:]:
        world.log(node, [(-30.0, "long before")])
    html = generate_report(run_dir).read_text()
    assert ".node { white-space: nowrap; }" in html
    assert '<span class="node">web-15</span>' in html
    assert '<b class="node">courier-1</b>' in html
    assert re.search(r'title="courier-2, web-1, [^"]*">16 nodes logged nothing in the window</div>', html)
    assert "Nothing logged in this window" not in html


@pytest.mark.parametrize(
    ("text", "trouble"),
    [
        ("ERROR connection refused", True),
        ("level=error msg=boom", True),
        ("ValueError: bad input", True),
        ("request timed out after 5 s", True),
        ("Timeout waiting for the primary", True),
        ("Traceback (most recent call last):", True),
        ("dsn: host=lb-1 connect_timeout=2", False),
        ("sentinel_failover_timeout_ms 5000", False),
        ("switches: error_rate: 0.0 timeout_rate: 0.0", False),
        ("gunicorn timeout=30", False),
        ("INFO listening on :8070", False),
    ],
)
def test_trouble_is_a_word_not_a_setting_name(text: str, trouble: bool) -> None:
    assert LogLine(1, None, text).trouble is trouble


def test_one_timestamp_per_log_line(run_dir: Path) -> None:
    world, _ = checked_run(run_dir)
    world.log("courier-1", [(3.0, "2024-05-01 12:00:03,000 INFO courier: twice stamped")])
    line = LogLine(1, None, "2024-05-01T12:00:03.000000000Z 2024-05-01 12:00:03,000 INFO x")
    assert line.shown == "2024-05-01T12:00:03.000000000Z INFO x"
    assert LogLine(1, None, "2024-05-01T12:00:03Z only one").shown == "2024-05-01T12:00:03Z only one"
    html = generate_report(run_dir).read_text()
    assert "INFO courier: twice stamped" in html
    assert "12:00:03,000 INFO courier" not in html


def test_identical_images_are_one_row(run_dir: Path) -> None:
    images = {"web": "resilience-node:abc", "courier": "resilience-node:abc", "pg": "postgres:15"}
    assert image_rows(images) == [(["web", "courier"], "resilience-node:abc"), (["pg"], "postgres:15")]
    world, results = checked_run(run_dir)
    write_journal(run_dir, journal_for(world, results, versions=Versions(images=images)))
    html = generate_report(run_dir).read_text()
    assert html.count("resilience-node:abc") == 1
    assert 'images <span class="node">web</span>, <span class="node">courier</span></th>' in html


def test_fault_numbers_sit_above_the_data(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checked_run(run_dir)
    placed: list[tuple[str, float]] = []
    original = plots_module._bands

    def spy(axes: plt.Axes, *args: object, **kwargs: object) -> None:
        original(axes, *args, **kwargs)  # type: ignore[arg-type]
        for text in axes.texts:
            if text.get_text().startswith("#"):
                # The text's bottom, in axes fractions: 1.0 is the top of the plotting area.
                box = text.get_window_extent()  # drawn with the figure's own renderer
                placed.append((text.get_text(), axes.transAxes.inverted().transform((0, box.y0))[1]))

    monkeypatch.setattr(plots_module, "_bands", spy)
    generate_report(run_dir)
    assert placed and all(bottom >= 1.0 for _, bottom in placed), placed
