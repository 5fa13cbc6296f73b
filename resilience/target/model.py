"""A target: what the workload and the checkers need from a RapidPro deployment the harness did not create.

The harness stands up nothing for a target and seeds nothing in it: the user's staging org already has an
External (EX) channel whose send URL reaches the harness's aggregator, an API token, a read-only database
role and the flows. docs/target.md describes the file and how to prepare the org.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from resilience.topology.errors import LocatedError
from resilience.topology.hosts import HostsTopology

SECRET_FIELDS = ("api_token", "database", "redis")


class TargetError(Exception):
    """A target that cannot be used as written: every mistake, `FILE:LINE: what; expected ...`, one a line."""

    def __init__(self, errors: list[LocatedError]) -> None:
        unique = list(dict.fromkeys(errors))
        self.errors = sorted(unique, key=lambda e: (e.file, e.line or 0))
        super().__init__("\n".join(str(e) for e in self.errors))

    @classmethod
    def single(cls, file: str, message: str, line: int | None = None) -> TargetError:
        return cls([LocatedError(file, line, message)])


@dataclass(frozen=True)
class Target:
    name: str
    path: Path  # the target file, as resolved
    hosts_file: Path | None  # a hosts topology (docs/hosts.md); None: no faults or logs, workload and checks only
    lb_url: str  # where the harness reaches the deployment's load balancer (web, courier's /c/ex/ endpoints)
    api_token: str  # the key of an API token of the org (no "Token " prefix)
    channel_uuid: str  # the org's EX channel the workload talks through
    aggregator_url: str  # where the harness reads and configures the simulated aggregator
    aggregator_send_url: str  # what the channel's send URL must be: the aggregator as the deployment reaches it
    database_dsn: str  # a read-only DSN on RapidPro's database (snapshots, quiescence, target check)
    redis_url: str | None  # RapidPro's Redis (queue depth while quiescing); None: quiesce on the database only
    # flow name (as the conversation scripts call it) -> uuid; "" when it is resolved by name through the API
    flows: dict[str, str] = field(hash=False)
    description: str = ""
    # Where each secret came from, for `target show`: "env:VAR" or "the file".
    secret_sources: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    hosts: HostsTopology | None = field(default=None, hash=False, compare=False, repr=False)

    def load_hosts(self) -> HostsTopology | None:
        """The hosts topology the target names (validated when the target was loaded), or None."""
        if self.hosts_file is None:
            return None
        if self.hosts is not None:
            return self.hosts
        from resilience.topology import TopologyError, load_hosts

        try:
            return load_hosts(self.hosts_file)
        except TopologyError as exc:
            raise TargetError(exc.errors) from None

    @property
    def unresolved_flows(self) -> list[str]:
        """Flows given by name only, whose uuid the API is asked for."""
        return [name for name, uuid in self.flows.items() if not uuid]


def mask_secret(value: str) -> str:
    """A token shown by its first four characters, enough to tell two apart."""
    return f"{value[:4]}…" if len(value) > 8 else "…"


def mask_url_password(url: str) -> str:
    """A DSN or URL with its password replaced (`postgres://ro:***@db/temba`); libpq's `key=value` form too."""
    if "://" not in url:
        return " ".join("password=***" if w.startswith("password=") else w for w in url.split())
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))
