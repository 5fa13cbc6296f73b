"""`resilience target check` (resilience/target/check.py) item by item, each shown passing and failing with what
to fix. RapidPro's web and courier are an httpx MockTransport and its database a fake here (the stack test,
tests/stack/test_target.py, runs the same checks on the real stand-in stack); the aggregator is the real
stand-in aggregator, run as a local process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from resilience.backends.base import Backend, BackendError
from resilience.cli import main
from resilience.cluster import Cluster, ClusterError, Endpoints, Seed
from resilience.target import Target
from resilience.target.check import CheckResult, Outcome, all_passed, run_checks
from resilience.target.deployment import ChannelRow
from resilience.target.no_hosts import NoHostsRun

ROOT = Path(__file__).resolve().parent.parent
LB = "http://rapidpro.test"
AGGREGATOR = "http://aggregator.test:8070"
SEND_URL = "http://10.0.0.5:8070/send"
TOKEN = "t" * 40
CHANNEL = "2a5f0c34-1234-4321-8888-0123456789ab"
REGISTRATION = "3a1d5c8e-7b2f-4c61-9d0e-5f8a2b6c4e10"
QUICK_REPLY = "9b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"


def make_target(**changes: Any) -> Target:
    target = Target(
        name="staging",
        path=Path("targets/staging.yaml"),
        hosts_file=None,
        lb_url=LB,
        api_token=TOKEN,
        channel_uuid=CHANNEL,
        aggregator_url=AGGREGATOR,
        aggregator_send_url=SEND_URL,
        database_dsn="postgres://ro@db/temba",
        redis_url="redis://redis.test:6379/15",
        flows={"Registration": REGISTRATION, "Quick reply": ""},
    )
    return replace(target, **changes)


@dataclass
class FakeRapidPro:
    """RapidPro's web, courier and the aggregator as they answer the checks' requests."""

    flows: list[dict[str, str]] = field(
        default_factory=lambda: [
            {"uuid": REGISTRATION, "name": "Registration"},
            {"uuid": QUICK_REPLY, "name": "Quick reply"},
        ]
    )
    root_status: int = 302
    courier_routed: bool = True
    channels: tuple[str, ...] = (CHANNEL,)
    aggregator_body: Any = field(default_factory=lambda: {"records": [], "last_seq": 7})
    down: tuple[str, ...] = ()  # hosts that refuse connections

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        url = str(request.url)
        if url.startswith(AGGREGATOR) and request.url.path == "/records":
            if isinstance(self.aggregator_body, str):
                return httpx.Response(200, text=self.aggregator_body)
            return httpx.Response(200, json=self.aggregator_body)
        if request.url.path == "/":
            return httpx.Response(self.root_status, text="login")
        if request.url.path.startswith("/c/ex/"):
            if not self.courier_routed:
                return httpx.Response(404, text="<html>Page not found</html>")
            uuid = request.url.path.split("/")[3]
            error = "must have one of 'sender' or 'from' set" if uuid in self.channels else "channel not found"
            return httpx.Response(400, json={"message": "Error", "data": [{"type": "error", "error": error}]})
        if request.url.path == "/api/v2/flows.json":
            if request.headers.get("Authorization") != f"Token {TOKEN}":
                return httpx.Response(403, json={"detail": "Invalid token"})
            # Two pages, so that a flow on the second is found only by following the cursor.
            if request.url.params.get("cursor") == "2":
                return httpx.Response(200, json={"next": None, "results": self.flows[1:]})
            return httpx.Response(200, json={"next": f"{LB}/api/v2/flows.json?cursor=2", "results": self.flows[:1]})
        return httpx.Response(404)


@dataclass
class FakeDeployment:
    channel_row: ChannelRow | None = field(
        default_factory=lambda: ChannelRow(CHANNEL, "EX", SEND_URL, True, 4, "org-uuid")
    )
    unreadable: dict[str, str] = field(default_factory=dict)
    writable: list[str] = field(default_factory=list)
    orgs: set[int] = field(default_factory=lambda: {4})
    database_down: bool = False
    redis_down: bool = False

    def _database(self) -> None:
        if self.database_down:
            raise OSError('connection to server at "db" failed: Connection refused')

    def channel(self, channel_uuid: str) -> ChannelRow | None:
        self._database()
        return self.channel_row if self.channel_row and self.channel_row.uuid == channel_uuid else None

    def unreadable_tables(self) -> dict[str, str]:
        self._database()
        return self.unreadable

    def writable_tables(self) -> list[str]:
        return self.writable

    def flow_orgs(self, flow_uuids: list[str]) -> set[int]:
        return self.orgs

    def ping_redis(self) -> None:
        if self.redis_down:
            raise ConnectionError("Error 111 connecting to redis.test:6379. Connection refused.")


def check(
    target: Target | None = None, rapidpro: FakeRapidPro | None = None, deployment: FakeDeployment | None = None
) -> dict[str, CheckResult]:
    http = httpx.Client(transport=httpx.MockTransport(rapidpro or FakeRapidPro()))
    results = run_checks(target or make_target(), http=http, deployment=deployment or FakeDeployment())
    assert len({r.name for r in results}) == len(results)
    return {r.name: r for r in results}


def outcomes(results: dict[str, CheckResult]) -> dict[str, str]:
    return {name: r.outcome.value for name, r in results.items()}


def test_a_ready_target_passes_every_check() -> None:
    results = check()
    assert outcomes(results) == {
        "lb": "ok",
        "courier": "ok",
        "token": "ok",
        "flows": "ok",
        "aggregator": "ok",
        "database": "ok",
        "channel": "ok",
        "org": "ok",
        "redis": "ok",
        "hosts": "info",
    }
    assert all_passed(list(results.values()))
    # "Quick reply" was given by name and is on the API's second page.
    assert results["flows"].detail == f"Registration = {REGISTRATION}, Quick reply = {QUICK_REPLY}"
    assert results["database"].detail.endswith("read-only")
    assert results["aggregator"].detail == f"{AGGREGATOR} answers (7 sends recorded so far)"


def test_an_unreachable_lb_fails_and_skips_what_needs_it() -> None:
    results = check(rapidpro=FakeRapidPro(down=("rapidpro.test",)))
    assert results["lb"].outcome is Outcome.FAIL
    assert (
        "cannot reach http://rapidpro.test (ConnectError" in results["lb"].detail
        and "fix lb_url" in results["lb"].detail
    )
    assert outcomes(results)["courier"] == outcomes(results)["token"] == outcomes(results)["flows"] == "skip"
    assert results["org"].detail == "needs flows to pass first"
    assert not all_passed(list(results.values()))


def test_an_lb_without_web_behind_it_fails() -> None:
    results = check(rapidpro=FakeRapidPro(root_status=503))
    assert results["lb"].outcome is Outcome.FAIL and "answered 503" in results["lb"].detail


def test_courier_not_routed_through_the_lb_is_named() -> None:
    results = check(rapidpro=FakeRapidPro(courier_routed=False))
    assert results["courier"].outcome is Outcome.FAIL
    assert "route /c/ to courier at lb_url" in results["courier"].detail


def test_courier_that_does_not_know_the_channel() -> None:
    results = check(rapidpro=FakeRapidPro(channels=()))
    assert results["courier"].outcome is Outcome.FAIL
    assert "courier refused channel" in results["courier"].detail and "channel not found" in results["courier"].detail


def test_a_refused_token_is_named_with_where_it_came_from() -> None:
    target = make_target(api_token="wrong", secret_sources={"api_token": "env:RP_TOKEN"})
    results = check(target)
    assert results["token"].outcome is Outcome.FAIL
    assert results["token"].detail == (
        "the API refused the token (403); expected the key of an active API token of the org "
        "(api_token, from env:RP_TOKEN)"
    )
    assert results["flows"].outcome is Outcome.SKIP


def test_flows_missing_misspelt_ambiguous_or_of_another_org() -> None:
    target = make_target(flows={"Registraton": "", "Other": QUICK_REPLY.replace("9b", "aa")})
    results = check(target)
    detail = results["flows"].detail
    assert results["flows"].outcome is Outcome.FAIL
    assert "'Registraton': no flow of that name in the token's org; import fixtures/flows" in detail
    assert "(did you mean 'Registration'?)" in detail
    assert "'Other': no flow aa0c1d2e" in detail
    twice = FakeRapidPro(
        flows=[{"uuid": REGISTRATION, "name": "Quick reply"}, {"uuid": QUICK_REPLY, "name": "Quick reply"}]
    )
    results = check(make_target(flows={"Quick reply": ""}), rapidpro=twice)
    assert f"2 flows have that name ({REGISTRATION}, {QUICK_REPLY}); write the uuid" in results["flows"].detail


def test_an_aggregator_that_is_not_the_aggregator() -> None:
    results = check(rapidpro=FakeRapidPro(aggregator_body="<html>nginx</html>"))
    assert results["aggregator"].outcome is Outcome.FAIL
    assert "not as the simulated aggregator does; fix aggregator.url" in results["aggregator"].detail
    results = check(rapidpro=FakeRapidPro(down=("aggregator.test",)))
    assert "expected the simulated aggregator listening there" in results["aggregator"].detail


def test_an_unreachable_database_fails_and_skips_the_channel() -> None:
    results = check(deployment=FakeDeployment(database_down=True))
    assert results["database"].outcome is Outcome.FAIL
    assert "cannot query it (OSError: connection to server" in results["database"].detail
    assert results["channel"].detail == "needs database to pass first"
    assert results["org"].outcome is Outcome.SKIP


def test_unreadable_tables_say_what_to_grant_and_a_writing_role_is_noted() -> None:
    results = check(deployment=FakeDeployment(unreadable={"msgs_msg": "no SELECT privilege"}))
    assert results["database"].detail == (
        "cannot read msgs_msg (no SELECT privilege); expected `GRANT SELECT ON msgs_msg TO` the DSN's role"
    )
    results = check(deployment=FakeDeployment(writable=["msgs_msg", "flows_flowrun"]))
    assert results["database"].outcome is Outcome.OK
    assert "the role may also write 2 of them (a read-only role is safer" in results["database"].detail


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        (None, f"no channel {CHANNEL} in the database; expected the uuid of the org's External (EX) channel"),
        (ChannelRow(CHANNEL, "EX", SEND_URL, False, 4, "o"), "was deleted"),
        (ChannelRow(CHANNEL, "TG", None, True, 4, "o"), "is of type 'TG'; expected an External API channel (type EX)"),
        (
            ChannelRow(CHANNEL, "EX", "http://aggregator:8070/send", True, 4, "o"),
            f"sends to 'http://aggregator:8070/send'; expected aggregator.send_url '{SEND_URL}': set the channel's",
        ),
        (ChannelRow(CHANNEL, "EX", None, True, 4, "o"), "sends to None; expected aggregator.send_url"),
    ],
)
def test_a_channel_that_is_missing_deleted_of_another_type_or_sending_elsewhere(
    row: ChannelRow | None, fragment: str
) -> None:
    results = check(deployment=FakeDeployment(channel_row=row))
    assert results["channel"].outcome is Outcome.FAIL
    assert fragment in results["channel"].detail
    assert results["org"].detail == "needs channel to pass first"


def test_a_channel_of_another_org_than_the_flows() -> None:
    results = check(deployment=FakeDeployment(orgs={9}))
    assert results["org"].outcome is Outcome.FAIL
    assert results["org"].detail.startswith("the channel is in org 4 but the token's flows in org(s) 9")


def test_redis_is_optional_but_checked_when_named() -> None:
    results = check(make_target(redis_url=None))
    assert results["redis"].outcome is Outcome.INFO and all_passed(list(results.values()))
    results = check(deployment=FakeDeployment(redis_down=True))
    assert results["redis"].outcome is Outcome.FAIL and "no answer to PING" in results["redis"].detail


def test_the_round_trip_is_asked_for_and_needs_the_rest() -> None:
    assert "round-trip" not in check()
    http = httpx.Client(transport=httpx.MockTransport(FakeRapidPro()))
    results = run_checks(make_target(), http, FakeDeployment(channel_row=None), round_trip=True)
    assert results[-1] == CheckResult("round-trip", Outcome.SKIP, "needs channel and org to pass first")


def test_the_cli_prints_a_line_per_check_and_exits_0_or_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "staging.yaml"
    path.write_text(
        f"version: 1\nkind: target\nname: staging\nlb_url: {LB}\napi_token: {TOKEN}\nchannel_uuid: {CHANNEL}\n"
        f"aggregator: {{url: {AGGREGATOR}, send_url: {SEND_URL}}}\ndatabase: postgres://ro@db/temba\n"
        f"flows: [Registration]\n"
    )
    deployment = FakeDeployment()
    rapidpro = FakeRapidPro()

    def with_fakes(target: Target, report: Any = None, **_: Any) -> list[CheckResult]:
        http = httpx.Client(transport=httpx.MockTransport(rapidpro))
        return run_checks(target, http=http, deployment=deployment, report=report)

    monkeypatch.setattr("resilience.cli_target.run_checks", with_fakes)
    assert main(["target", "check", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"target staging ({path})"
    assert out[1] == "ok    lb          http://rapidpro.test answered 302"
    assert out[-1] == "target staging: ready"
    deployment.channel_row = None
    assert main(["target", "check", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("FAIL  channel     no channel") for line in out), out
    assert out[-1] == "target staging: not ready (channel failed; see docs/target.md)"


# -- the real stand-in aggregator, as docs/target.md runs it -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def local_aggregator() -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "harness" / "standin"), "AGGREGATOR_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "standin.aggregator"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("the stand-in aggregator did not start within 20 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_local_stand_in_aggregator_passes_and_a_closed_port_fails(local_aggregator: str) -> None:
    with httpx.Client(timeout=5) as http:
        results = {r.name: r for r in run_checks(make_target(aggregator_url=local_aggregator), http, FakeDeployment())}
        assert results["aggregator"].outcome is Outcome.OK, results["aggregator"]
        closed = f"http://127.0.0.1:{_free_port()}"
        results = {r.name: r for r in run_checks(make_target(aggregator_url=closed), http, FakeDeployment())}
        assert results["aggregator"].outcome is Outcome.FAIL
        assert "Connect" in results["aggregator"].detail


# -- the Cluster of a target ---------------------------------------------------------------------------------


def test_a_target_without_hosts_has_a_run_with_no_nodes_that_refuses_node_operations() -> None:
    run = NoHostsRun(make_target())
    assert isinstance(run, Backend)
    assert (run.node_names(), run.nodes_of("courier"), run.status(), run.logs("courier-1")) == ([], [], [], "")
    with pytest.raises(BackendError, match=r"names no hosts file.*add `hosts: FILE` to targets/staging\.yaml"):
        run.kill("courier-1")


def test_a_cluster_with_endpoints_reads_them_not_the_topology() -> None:
    seed = Seed(4, "org-uuid", CHANNEL, TOKEN, {"Registration": REGISTRATION})
    endpoints = Endpoints(LB, AGGREGATOR, "postgres://ro@db/temba", None)
    cluster = Cluster(NoHostsRun(make_target()), seed, endpoints)
    assert (cluster.lb_url, cluster.aggregator_url, cluster.db_dsn) == (LB, AGGREGATOR, "postgres://ro@db/temba")
    assert cluster.queued_tasks() == 0 and cluster.spooled_msgs() == 0
    with pytest.raises(ClusterError, match="names no redis URL"):
        cluster.redis()
    with_redis = Cluster(cluster.run, seed, replace(endpoints, redis_url="redis://redis.test:6380/15"))
    kwargs = with_redis.redis().connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("redis.test", 6380, 15)
