"""A target file pointing at the running stand-in stack as if it were a user's staging RapidPro: `resilience
target check` passes on it and fails, saying what to fix, for a wrong token, channel, send URL or DB role; a
Cluster built from the target (nothing seeded) does a round trip through the same endpoints."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from resilience.cli import main
from resilience.cluster import AGGREGATOR_SEND_URL, ROOT, Cluster
from resilience.target import load_target
from resilience.target.deployment import SNAPSHOT_TABLES
from resilience.topology import Role

pytestmark = [pytest.mark.stack, pytest.mark.timeout(180)]


def _redis_url(cluster: Cluster) -> str:
    host, port = cluster.run.endpoint(cluster.run.nodes_of(Role.LB.value)[0], 6379)
    return f"redis://{host}:{port}/15"


def _as_superuser(cluster: Cluster, sql: str) -> None:
    """Run SQL as Postgres's superuser on the current primary (the harness's role may not create roles)."""
    for node in cluster.run.nodes_of(Role.POSTGRES.value):
        psql = ["psql", "-h", "/var/run/postgresql", "-U", "postgres", "-d", "temba", "-XtAc"]
        if cluster.run.exec_ok(node, [*psql, "SELECT pg_is_in_recovery()"], user="postgres").strip() == "f":
            cluster.run.exec_ok(node, [*psql, sql], user="postgres")
            return
    raise AssertionError("no Postgres primary")


@pytest.fixture(scope="module")
def readonly_dsn(cluster: Cluster) -> Iterator[tuple[str, str]]:
    """A read-only role (SELECT on the snapshot's tables) and one with no grant, as an operator would make
    them: their DSNs."""
    suffix = secrets.token_hex(3)
    reader, stranger = f"rs_ro_{suffix}", f"rs_none_{suffix}"
    _as_superuser(
        cluster,
        f"CREATE ROLE {reader} LOGIN PASSWORD 'pw'; CREATE ROLE {stranger} LOGIN PASSWORD 'pw'; "
        f"GRANT SELECT ON {', '.join(SNAPSHOT_TABLES)} TO {reader}",
    )
    base = cluster.db_dsn.replace("temba:temba@", "{role}:pw@")
    yield base.format(role=reader), base.format(role=stranger)
    _as_superuser(
        cluster,
        f"REVOKE ALL ON {', '.join(SNAPSHOT_TABLES)} FROM {reader}; DROP ROLE {reader}; DROP ROLE {stranger}",
    )


@pytest.fixture
def target_of(cluster: Cluster, readonly_dsn: tuple[str, str], tmp_path: Path) -> Any:
    """Writes a target file for the stack, with `changes` over the right values; returns its path."""
    names = sorted(cluster.seed.flows)

    def write(**changes: Any) -> str:
        data: dict[str, Any] = {
            "version": 1,
            "kind": "target",
            "name": "stack",
            "lb_url": cluster.lb_url,
            "api_token": "env:STACK_TARGET_TOKEN",
            "channel_uuid": cluster.seed.channel_uuid,
            "aggregator": {"url": cluster.aggregator_url, "send_url": AGGREGATOR_SEND_URL},
            "database": readonly_dsn[0],
            "redis": _redis_url(cluster),
            # One flow by uuid, the others by name (resolved through the API).
            "flows": {name: (cluster.seed.flows[name] if i == 0 else None) for i, name in enumerate(names)},
        }
        for key, value in changes.items():
            if key.startswith("aggregator_"):
                data["aggregator"][key.removeprefix("aggregator_")] = value
            else:
                data[key] = value
        path = tmp_path / f"stack-{secrets.token_hex(2)}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return str(path)

    return write


@pytest.fixture(autouse=True)
def token_in_env(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACK_TARGET_TOKEN", cluster.seed.api_token)


def _check(path: str, capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, dict[str, str]]:
    code = main(["target", "check", path, *options])
    out = capsys.readouterr().out
    lines = {}
    for line in out.splitlines():
        words = line.split(None, 2)
        if len(words) == 3 and words[0] in ("ok", "FAIL", "skip", "info"):
            lines[words[1]] = f"{words[0]} {words[2]}"
    return code, lines


def test_check_passes_on_the_running_stack(target_of: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _check(target_of(), capsys, "--round-trip")
    assert code == 0, lines
    for name in ("lb", "courier", "token", "flows", "aggregator", "database", "channel", "org", "redis"):
        assert lines[name].startswith("ok "), (name, lines)
    assert "read-only" in lines["database"]
    assert lines["round-trip"].startswith("ok an MO's reply reached the aggregator in"), lines


@pytest.fixture(scope="module")
def other_aggregator() -> Iterator[str]:
    """A stand-in aggregator run on this machine, as docs/target.md runs one: not the one the channel sends to."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "harness" / "standin"), "AGGREGATOR_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "standin.aggregator"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_round_trip_finds_an_aggregator_that_is_not_the_channels(
    target_of: Any, other_aggregator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every other check passes: url answers as an aggregator and the channel sends to send_url, but they are
    two aggregators; only the round trip can tell."""
    code, lines = _check(target_of(aggregator_url=other_aggregator), capsys, "--round-trip")
    assert code == 1
    assert lines["aggregator"].startswith("ok "), lines
    assert lines["channel"].startswith("ok "), lines
    assert lines["round-trip"].startswith("FAIL no reply reached the aggregator within 20 s"), lines
    assert "that url and send_url are the same aggregator" in lines["round-trip"], lines


def test_a_wrong_token_is_refused(target_of: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _check(target_of(api_token="0" * 40), capsys)
    assert code == 1
    assert lines["token"].startswith("FAIL the API refused the token (403)"), lines
    assert lines["flows"].startswith("skip"), lines
    assert lines["channel"].startswith("ok"), lines


def test_a_wrong_channel_uuid_is_named(target_of: Any, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = str(uuid.uuid4())
    code, lines = _check(target_of(channel_uuid=wrong), capsys)
    assert code == 1
    assert lines["channel"] == (
        f"FAIL no channel {wrong} in the database; expected the uuid of the org's External (EX) channel"
    ), lines
    assert lines["courier"].startswith("FAIL"), lines
    assert lines["token"].startswith("ok"), lines


def test_a_send_url_that_is_not_the_aggregator_is_named(
    cluster: Cluster, target_of: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _check(target_of(aggregator_send_url="http://aggregator:9999/send"), capsys)
    assert code == 1
    assert lines["channel"].startswith(f"FAIL channel {cluster.seed.channel_uuid} sends to"), lines
    assert (
        f"sends to '{AGGREGATOR_SEND_URL}'; expected aggregator.send_url 'http://aggregator:9999/send'"
        in (lines["channel"])
    ), lines


def test_a_role_without_grants_is_told_what_to_grant(
    target_of: Any, readonly_dsn: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _check(target_of(database=readonly_dsn[1]), capsys)
    assert code == 1
    assert lines["database"].startswith("FAIL cannot read msgs_msg (no SELECT privilege)"), lines
    assert "GRANT SELECT ON msgs_msg" in lines["database"], lines
    assert lines["channel"] == "skip needs database to pass first", lines


def test_a_cluster_from_the_target_seeds_nothing_and_round_trips(cluster: Cluster, target_of: Any) -> None:
    target = load_target(target_of())
    assert target.hosts_file is None
    from_target = Cluster.for_target(None, target)
    assert from_target.seed == cluster.seed  # the flows given by name were found, the org read from the channel
    assert (from_target.lb_url, from_target.aggregator_url) == (cluster.lb_url, cluster.aggregator_url)
    assert from_target.run.node_names() == []
    assert from_target.round_trip() < 20
    quiet = from_target.quiesce([from_target.last_probe_urn or ""], timeout=30)
    assert quiet.reached, quiet
    snapshot = from_target.snapshot([from_target.last_probe_urn or ""], quiet)
    assert [m.direction for m in snapshot.msgs][:1] == ["I"] and snapshot.logs == {}
