"""Who owns a run, and which runs a command may act on when it is not told.

Every run is labelled at `up` with its owner, `<user>@<host>`, followed by `/<ci>:<job>` when a CI job made
it (so two jobs on one shared runner, or two users of one engine, never own each other's runs);
`RESILIENCE_OWNER` overrides the whole value. Commands that act on one run (`status`, `logs`, `smoke`,
`workload`, `down`) default to the caller's newest run; `cleanup` defaults to all of the caller's runs.
Any other run is acted on only when named (`--run ID`) or with `--all`. A run made before the label
existed has no owner and is owned by nobody.

This module only decides; it never talks to Docker (the backend passes its listing in).
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

OWNER_ENV = "RESILIENCE_OWNER"
# (environment variable naming the job, CI system, extra variables that make the id unique per job)
CI_JOBS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("GITHUB_RUN_ID", "github", ("GITHUB_RUN_ATTEMPT", "GITHUB_JOB")),
    ("CI_JOB_ID", "gitlab", ()),
    ("BUILDKITE_JOB_ID", "buildkite", ()),
    ("CIRCLE_WORKFLOW_JOB_ID", "circleci", ()),
    ("BUILD_TAG", "jenkins", ()),
)
UNLABELLED = "(none: made before runs were labelled with an owner)"


class RunListing(Protocol):
    """What ownership needs to know of a run (the backend's RunInfo has these)."""

    @property
    def run_id(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def created(self) -> float: ...


Run = TypeVar("Run", bound=RunListing)


class OwnershipError(RuntimeError):
    """No run may be chosen without being named; the message lists the candidates."""


def current_owner(env: Mapping[str, str] | None = None) -> str:
    """The owner label of runs this process makes: `<user>@<host>[/<ci>:<job>]`."""
    env = os.environ if env is None else env
    if env.get(OWNER_ENV):
        return env[OWNER_ENV]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container running as an arbitrary uid)
        user = f"uid{os.getuid()}"
    owner = f"{user}@{socket.gethostname()}"
    for variable, system, extra in CI_JOBS:
        if env.get(variable):
            job = "-".join([env[variable], *(env[e] for e in extra if env.get(e))])
            return f"{owner}/{system}:{job}"
    return owner


def owned(run: RunListing, owner: str) -> bool:
    return bool(run.user) and run.user == owner


def age(created: float, now: float | None = None) -> str:
    if created <= 0:
        return "?"
    seconds = max(0, int((time.time() if now is None else now) - created))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def describe(runs: Sequence[RunListing], now: float | None = None) -> list[str]:
    """One aligned line per run: id, owner, age."""
    return [f"  {r.run_id:<16} owner {r.user or UNLABELLED:<40} age {age(r.created, now)}" for r in runs]


def _refusal(first_line: str, runs: Sequence[RunListing], now: float | None) -> OwnershipError:
    lines = [first_line, *describe(runs, now)]
    if any(not r.user for r in runs):
        lines.append("runs without an owner label predate ownership and are owned by nobody")
    lines.append("name one with --run ID")
    return OwnershipError("\n".join(lines))


def choose_run(runs: Sequence[Run], run_id: str | None, owner: str, now: float | None = None) -> Run:
    """The run a single-run command acts on: the one named, else the caller's newest; refuse otherwise."""
    if run_id:
        named = next((r for r in runs if r.run_id == run_id), None)
        if named is None:
            known = ", ".join(r.run_id for r in runs) or "none"
            raise OwnershipError(f"no run {run_id} on this engine (runs: {known})")
        return named
    if not runs:
        raise OwnershipError("no run is up (resilience up TOPOLOGY starts one)")
    mine = [r for r in runs if owned(r, owner)]
    if mine:
        return max(mine, key=lambda r: r.created)
    raise _refusal(f"none of the {len(runs)} run(s) on this engine is owned by {owner}:", runs, now)


def choose_runs(runs: Sequence[Run], run_id: str | None, everyone: bool, owner: str) -> list[Run]:
    """The runs `cleanup` acts on: the one named, every run (`--all`), else all of the caller's own."""
    if run_id:
        return [r for r in runs if r.run_id == run_id]
    if everyone:
        return list(runs)
    return [r for r in runs if owned(r, owner)]


def not_mine(runs: Sequence[Run], owner: str) -> list[Run]:
    return [r for r in runs if not owned(r, owner)]
