"""`resilience target check`: before any fault, whether the harness can use a target, one verdict per item.

Each check says what it saw and, when it fails, what to fix. A check that needs another one (the channel
needs the database, the flows need the token) is skipped when that one failed, naming it.
Nothing is written anywhere: HTTP reads, one courier request without a sender (which courier refuses
before looking at anything else), and read-only queries.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from resilience.rapidpro.api import ApiError
from resilience.target.deployment import (
    SNAPSHOT_TABLES,
    ChannelRow,
    DeploymentReader,
    org_flows,
    resolve_flows,
)
from resilience.target.model import Target

HTTP_TIMEOUT = 10.0
PREPARE = "docs/target.md"


class Outcome(enum.StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"
    INFO = "info"


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: Outcome
    detail: str  # what was seen; for FAIL, also what to fix

    def line(self) -> str:
        return f"{self.outcome.value:<4}  {self.name:<10}  {self.detail}"


class Deployment(Protocol):
    """The read-only questions the checks ask of the database and Redis (DeploymentReader's)."""

    def channel(self, channel_uuid: str) -> ChannelRow | None: ...
    def unreadable_tables(self) -> dict[str, str]: ...
    def writable_tables(self) -> list[str]: ...
    def flow_orgs(self, flow_uuids: list[str]) -> set[int]: ...
    def ping_redis(self) -> None: ...


def run_checks(
    target: Target,
    http: httpx.Client | None = None,
    deployment: Deployment | None = None,
    report: Callable[[CheckResult], None] | None = None,
    round_trip: bool = False,
) -> list[CheckResult]:
    """Every check of the target, in order; `report` sees each result as soon as it is known. With
    `round_trip`, last, one MO through the load balancer until its reply is read at the aggregator: the
    only check that writes (a contact and two messages in the org)."""
    own_client = http is None
    http = http or httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False)
    reader = deployment or DeploymentReader(target.database_dsn, target.redis_url)
    checks = _Checks(target, http, reader, report, round_trip)
    try:
        checks.run()
    finally:
        if own_client:
            http.close()
    return checks.results


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _Checks:
    def __init__(
        self,
        target: Target,
        http: httpx.Client,
        deployment: Deployment,
        report: Callable[[CheckResult], None] | None,
        round_trip: bool = False,
    ) -> None:
        self.round_trip = round_trip
        self.target = target
        self.http = http
        self.deployment = deployment
        self.report = report
        self.results: list[CheckResult] = []
        self.passed: set[str] = set()
        self.channel: ChannelRow | None = None
        self.flows: dict[str, str] = {}
        self.org_flows: list[dict[str, Any]] = []

    def record(self, name: str, outcome: Outcome, detail: str) -> None:
        result = CheckResult(name, outcome, detail)
        if outcome is Outcome.OK:
            self.passed.add(name)
        self.results.append(result)
        if self.report is not None:
            self.report(result)

    def needs(self, name: str, *before: str) -> bool:
        """Whether the checks `name` depends on passed; if not, `name` is recorded as skipped."""
        failed = [b for b in before if b not in self.passed]
        if failed:
            self.record(name, Outcome.SKIP, f"needs {' and '.join(failed)} to pass first")
        return not failed

    def run(self) -> None:
        for step in (
            self.check_lb,
            self.check_courier,
            self.check_token,
            self.check_flows,
            self.check_aggregator,
            self.check_database,
            self.check_channel,
            self.check_org,
            self.check_redis,
            self.check_hosts,
        ):
            step()
        if self.round_trip:
            self.check_round_trip()

    # -- through the load balancer ------------------------------------------------------------------
    def check_lb(self) -> None:
        url = self.target.lb_url
        try:
            response = self.http.get(f"{url}/")
        except httpx.HTTPError as exc:
            self.record(
                "lb",
                Outcome.FAIL,
                f"cannot reach {url} ({_first_line(exc)}); fix lb_url, or the network or VPN between here and it",
            )
            return
        if response.status_code >= 500:
            self.record(
                "lb",
                Outcome.FAIL,
                f"{url} answered {response.status_code}; expected RapidPro's web behind it (is any web node up?)",
            )
            return
        self.record("lb", Outcome.OK, f"{url} answered {response.status_code}")

    def check_courier(self) -> None:
        if not self.needs("courier", "lb"):
            return
        url = f"{self.target.lb_url}/c/ex/{self.target.channel_uuid}/receive"
        try:
            # No sender: courier refuses it before it writes anything, which proves that the LB routes /c/ to it.
            response = self.http.post(url, data={})
        except httpx.HTTPError as exc:
            self.record("courier", Outcome.FAIL, f"POST {url} failed ({_first_line(exc)})")
            return
        body = response.text[:300]
        if response.status_code == 400 and ("sender" in body or "'from'" in body):
            self.record("courier", Outcome.OK, "answers /c/ex/ through the load balancer and takes the channel")
            return
        if response.status_code == 400 and "channel" in body.lower():
            self.record(
                "courier",
                Outcome.FAIL,
                f"courier refused channel {self.target.channel_uuid}: {body.strip()}; "
                "expected the uuid of an active EX channel",
            )
            return
        self.record(
            "courier",
            Outcome.FAIL,
            f"POST {url} answered {response.status_code} {body.strip()[:120]!r}; expected courier's 400 for a "
            "request without a sender: route /c/ to courier at lb_url, as RapidPro's nginx does",
        )

    def check_token(self) -> None:
        if not self.needs("token", "lb"):
            return
        try:
            self.org_flows = org_flows(self.http, self.target.lb_url, self.target.api_token)
        except ApiError as exc:
            if exc.status in (401, 403):
                self.record(
                    "token",
                    Outcome.FAIL,
                    f"the API refused the token ({exc.status}); expected the key of an active API token of the org "
                    f"(api_token{self._source('api_token')})",
                )
            else:
                self.record("token", Outcome.FAIL, f"{exc}; expected 200 from RapidPro's API v2 at lb_url")
            return
        except (httpx.HTTPError, ValueError) as exc:
            self.record("token", Outcome.FAIL, f"GET /api/v2/flows.json failed ({_first_line(exc)})")
            return
        self.record("token", Outcome.OK, f"API v2 accepts it ({len(self.org_flows)} flows in the org)")

    def check_flows(self) -> None:
        if not self.needs("flows", "token"):
            return
        resolution = resolve_flows(self.target.flows, self.org_flows)
        self.flows = resolution.flows
        if resolution.problems:
            problems = "; ".join(f"{name!r}: {problem}" for name, problem in resolution.problems.items())
            self.record("flows", Outcome.FAIL, problems)
            return
        self.record("flows", Outcome.OK, ", ".join(f"{name} = {uuid}" for name, uuid in self.flows.items()))

    # -- the aggregator ------------------------------------------------------------------------------
    def check_aggregator(self) -> None:
        url = self.target.aggregator_url
        try:
            response = self.http.get(f"{url}/records", params={"after": 2**62})
            response.raise_for_status()
            last_seq = int(response.json()["last_seq"])
        except httpx.HTTPError as exc:
            self.record(
                "aggregator",
                Outcome.FAIL,
                f"cannot read {url}/records ({_first_line(exc)}); expected the simulated aggregator listening "
                f"there ({PREPARE}, 'The aggregator')",
            )
            return
        except (ValueError, KeyError, TypeError):
            self.record(
                "aggregator",
                Outcome.FAIL,
                f"{url}/records answered, but not as the simulated aggregator does; fix aggregator.url",
            )
            return
        self.record("aggregator", Outcome.OK, f"{url} answers ({last_seq} sends recorded so far)")

    # -- the database --------------------------------------------------------------------------------
    def check_database(self) -> None:
        try:
            unreadable = self.deployment.unreadable_tables()
            writable = self.deployment.writable_tables() if not unreadable else []
        except Exception as exc:
            self.record(
                "database",
                Outcome.FAIL,
                f"cannot query it ({_first_line(exc)}); fix the DSN (database{self._source('database')}), "
                "the network to Postgres, or pg_hba.conf",
            )
            return
        if unreadable:
            tables = ", ".join(f"{t} ({why})" for t, why in unreadable.items())
            self.record(
                "database",
                Outcome.FAIL,
                f"cannot read {tables}; expected `GRANT SELECT ON {', '.join(unreadable)} TO` the DSN's role",
            )
            return
        note = (
            f"; note: the role may also write {len(writable)} of them (a read-only role is safer, {PREPARE})"
            if writable
            else ", read-only"
        )
        self.record("database", Outcome.OK, f"reads the {len(SNAPSHOT_TABLES)} tables the snapshot reads{note}")

    def check_channel(self) -> None:
        if not self.needs("channel", "database"):
            return
        uuid = self.target.channel_uuid
        try:
            channel = self.deployment.channel(uuid)
        except Exception as exc:
            self.record("channel", Outcome.FAIL, f"cannot read channels_channel ({_first_line(exc)})")
            return
        if channel is None:
            self.record(
                "channel",
                Outcome.FAIL,
                f"no channel {uuid} in the database; expected the uuid of the org's External (EX) channel",
            )
            return
        if not channel.is_active:
            self.record("channel", Outcome.FAIL, f"channel {uuid} was deleted (is_active false); expected a live one")
            return
        if channel.channel_type != "EX":
            self.record(
                "channel",
                Outcome.FAIL,
                f"channel {uuid} is of type {channel.channel_type!r}; expected an External API channel (type EX)",
            )
            return
        if channel.send_url != self.target.aggregator_send_url:
            self.record(
                "channel",
                Outcome.FAIL,
                f"channel {uuid} sends to {channel.send_url!r}; expected aggregator.send_url "
                f"{self.target.aggregator_send_url!r}: set the channel's send URL to it, or correct the target",
            )
            return
        self.channel = channel
        self.record("channel", Outcome.OK, f"EX, sends to {channel.send_url}, org {channel.org_id}")

    def check_org(self) -> None:
        if not self.needs("org", "channel", "flows"):
            return
        if self.channel is None or not self.flows:
            return
        try:
            orgs = self.deployment.flow_orgs(sorted(set(self.flows.values())))
        except Exception as exc:
            self.record("org", Outcome.FAIL, f"cannot read flows_flow ({_first_line(exc)})")
            return
        if orgs != {self.channel.org_id}:
            self.record(
                "org",
                Outcome.FAIL,
                f"the channel is in org {self.channel.org_id} but the token's flows in org(s) "
                f"{', '.join(str(o) for o in sorted(orgs)) or 'none'}; "
                "expected the channel, token and flows of one org",
            )
            return
        self.record("org", Outcome.OK, f"channel, token and flows are all of org {self.channel.org_id}")

    def check_redis(self) -> None:
        if self.target.redis_url is None:
            self.record("redis", Outcome.INFO, "none named: quiescence rests on the database's backlog alone")
            return
        try:
            self.deployment.ping_redis()
        except Exception as exc:
            self.record(
                "redis",
                Outcome.FAIL,
                f"no answer to PING ({_first_line(exc)}); fix the redis URL{self._source('redis')} or leave it out",
            )
            return
        self.record("redis", Outcome.OK, "answers PING")

    def check_hosts(self) -> None:
        if self.target.hosts_file is None:
            self.record("hosts", Outcome.INFO, "no hosts file: workload and checks only, no faults, no logs")
            return
        hosts = self.target.load_hosts()
        if hosts is None:
            return
        self.record(
            "hosts",
            Outcome.INFO,
            f"{self.target.hosts_file}: {len(hosts.hosts)} hosts, {len(hosts.nodes())} nodes, faults "
            f"{'allowed' if hosts.allow_faults else 'not allowed (allow_faults is not true)'}; not contacted here",
        )

    def check_round_trip(self) -> None:
        if not self.needs("round-trip", "courier", "flows", "aggregator", "channel", "org"):
            return
        from resilience.cluster import Cluster, ClusterError

        try:
            seconds = Cluster.for_target(None, self.target).round_trip()
        except (ClusterError, httpx.HTTPError) as exc:
            self.record(
                "round-trip",
                Outcome.FAIL,
                f"{exc}; expected the reply of the org's `info` keyword (Quick Reply) at aggregator.url: check that "
                "your couriers reach aggregator.send_url (firewall, COURIER_DISALLOWED_NETWORKS) and that url and "
                "send_url are the same aggregator",
            )
            return
        self.record("round-trip", Outcome.OK, f"an MO's reply reached the aggregator in {seconds:.2f} s")

    def _source(self, field: str) -> str:
        source = self.target.secret_sources.get(field, "")
        return f", from {source}" if source.startswith("env:") else ""


def all_passed(results: list[CheckResult]) -> bool:
    return not any(r.outcome in (Outcome.FAIL, Outcome.SKIP) for r in results)
