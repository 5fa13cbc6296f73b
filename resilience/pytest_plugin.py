"""The pytest plugin: options, the `experiment` marker, and the fixtures experiments use.

    @pytest.mark.experiment(name="kill-courier", schedule="at 8 kill courier-1; recover at 20", rate=4)
    def test_kill_courier(experiment):
        experiment.run()

`cluster` is session-scoped: one topology serves every experiment of a pytest run (and is removed at the
end unless --keep-cluster). A verdict other than the experiment's expectation fails the test with the
checker summary; an unknown verdict that was not expected is reported as such (and fails only with
--strict-unknown).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resilience.checks import Validity
from resilience.cluster import DEFAULT_TOPOLOGY, Cluster, attach_cluster, start_cluster
from resilience.experiment import REPORTS_DIR, Experiment, Outcome, new_run_dir, run_experiment
from resilience.history import History
from resilience.interrupts import terminate_gracefully
from resilience.workload.runner import WorkloadConfig

OUTCOMES_KEY = pytest.StashKey[list[Outcome]]()


class UnknownVerdictWarning(UserWarning):
    """An experiment's verdict was unknown: the history could not decide (e.g. the system never drained)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience", "resilience experiments")
    group.addoption("--topology", default=str(DEFAULT_TOPOLOGY), help="topology file for the `cluster` fixture")
    group.addoption("--seed", type=int, default=None, help="seed for workloads and generated schedules")
    group.addoption("--duration", type=float, default=None, help="override every experiment's workload duration (s)")
    group.addoption("--rate", type=float, default=None, help="override every experiment's MO rate (per second)")
    group.addoption("--keep-cluster", action="store_true", help="leave the cluster up after the run")
    group.addoption("--reuse-cluster", default=None, metavar="RUN_ID", help="run against an existing run")
    group.addoption("--report-dir", default=str(REPORTS_DIR), help="where run directories are written")
    group.addoption("--strict-unknown", action="store_true", help="fail experiments whose verdict is unknown")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "experiment(**kw): a resilience experiment (docs/writing-experiments.md)")
    config.stash[OUTCOMES_KEY] = []
    # A cancelled CI job (SIGTERM) unwinds like ^C: fault reverts and the cluster's teardown run.
    terminate_gracefully()


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The topology, up, healthy and seeded; shared by every test of the session."""
    config = request.config
    reuse = config.getoption("--reuse-cluster") or os.environ.get("RESILIENCE_REUSE_CLUSTER")
    if reuse:
        yield attach_cluster(reuse)
        return
    from resilience.topology import load_topology

    keep = bool(config.getoption("--keep-cluster"))
    topology = load_topology(Path(config.getoption("--topology")))
    cluster = start_cluster(topology, keep=keep, log=lambda _m: None)
    try:
        yield cluster
    finally:
        if not keep:
            from resilience.backends.docker import DockerBackend

            try:
                from resilience.faults.registry import revert_leftovers

                revert_leftovers(DockerBackend(), cluster.run.run_id)
            except ImportError:
                pass
            DockerBackend().down(cluster.run.run_id, log=lambda _m: None)


@pytest.fixture
def history(request: pytest.FixtureRequest) -> Iterator[History]:
    """A fresh history in its own run directory, for tests that drive workload and nemesis by hand."""
    root = Path(request.config.getoption("--report-dir"))
    run_dir = new_run_dir(root, request.node.name.replace("[", "-").replace("]", ""))
    with History(run_dir / "history.jsonl", run_id=run_dir.name, seed=request.config.getoption("--seed")) as h:
        yield h


@pytest.fixture
def nemesis(cluster: Cluster, history: History) -> Iterator[Any]:
    """Injects and recovers faults, recording them in `history`; whatever is still active is recovered at the end."""
    from resilience.faults.nemesis import Nemesis

    nem = Nemesis(cluster.run, history)
    try:
        yield nem
    finally:
        nem.recover_all()


@pytest.fixture
def workload(cluster: Cluster, history: History, request: pytest.FixtureRequest) -> Any:
    """A factory: `stats = workload(rate=4, duration=10)` runs conversations recorded in `history`."""
    import asyncio
    import time

    from resilience.experiment import SCRIPTS_DIR
    from resilience.workload.runner import Workload
    from resilience.workload.script import load_scripts

    def run(**overrides: Any) -> Any:
        config = dataclasses.replace(WorkloadConfig(seed=request.config.getoption("--seed") or 1), **overrides)
        courier = cluster.courier()
        aggregator = cluster.aggregator()
        api = cluster.api()
        scripts = list(load_scripts(SCRIPTS_DIR).values())
        runner = Workload(history, courier, aggregator, scripts, config, api=api, flow_uuids=cluster.seed.flows,
                          salt=int(time.time()) % 100_000)

        async def go() -> Any:
            try:
                return await runner.run()
            finally:
                await courier.aclose()

        try:
            return asyncio.run(go())
        finally:
            aggregator.close()
            api.close()

    return run


class ExperimentHandle:
    """What the `experiment` fixture gives a test: the marker's experiment, ready to run against the cluster."""

    def __init__(self, request: pytest.FixtureRequest, cluster: Cluster, experiment: Experiment) -> None:
        self._request = request
        self.cluster = cluster
        self.definition = experiment

    def run(self, check: bool = True) -> Outcome:
        config = self._request.config
        reporter = config.pluginmanager.get_plugin("terminalreporter")

        capture = config.pluginmanager.get_plugin("capturemanager")

        def progress(message: str) -> None:
            if reporter is None or config.getoption("verbose") <= 0:
                return
            # Live: past pytest's output capture, so a long experiment shows where it is as it goes.
            if capture is not None:
                with capture.global_and_fixture_disabled():
                    reporter.write_line(f"  [{self.definition.name}] {message}")
            else:
                reporter.write_line(f"  [{self.definition.name}] {message}")

        outcome = run_experiment(
            self.cluster, self.definition, Path(config.getoption("--report-dir")), progress=progress
        )
        config.stash[OUTCOMES_KEY].append(outcome)
        self._request.node.user_properties.append(("verdict", outcome.merged.value))
        self._request.node.user_properties.append(("report", str(outcome.run_dir)))
        if check:
            self.assert_expected(outcome)
        return outcome

    def assert_expected(self, outcome: Outcome) -> None:
        unexpected_unknown = [
            name for name in outcome.unmet
            if next(r for r in outcome.results if r.name == name).valid is Validity.UNKNOWN
        ]
        hard = [name for name in outcome.unmet if name not in unexpected_unknown]
        if unexpected_unknown:
            message = f"{self.definition.name}: verdict unknown for {', '.join(unexpected_unknown)}"
            if self._request.config.getoption("--strict-unknown"):
                hard.extend(unexpected_unknown)
            else:
                warnings.warn(UnknownVerdictWarning(message), stacklevel=2)
        if hard:
            pytest.fail(outcome.summary(), pytrace=False)


def _experiment_from_marker(marker: pytest.Mark, config: pytest.Config, default_name: str) -> Experiment:
    kwargs = dict(marker.kwargs)
    workload_fields = {f.name for f in dataclasses.fields(WorkloadConfig)}
    workload_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in workload_fields}
    if config.getoption("--duration") is not None:
        workload_kwargs["duration"] = config.getoption("--duration")
    if config.getoption("--rate") is not None:
        workload_kwargs["rate"] = config.getoption("--rate")
    if config.getoption("--seed") is not None:
        workload_kwargs["seed"] = config.getoption("--seed")
    expected = {name: Validity(str(value).lower()) for name, value in (kwargs.pop("expected", {}) or {}).items()}
    name = kwargs.pop("name", default_name)
    try:
        return Experiment(
            name=name, workload=WorkloadConfig(**workload_kwargs), expected=expected, **kwargs
        )
    except TypeError as exc:
        raise pytest.UsageError(f"@pytest.mark.experiment on {default_name}: {exc}") from None


@pytest.fixture
def experiment(request: pytest.FixtureRequest, cluster: Cluster) -> ExperimentHandle:
    marker = request.node.get_closest_marker("experiment")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses the `experiment` fixture without @pytest.mark.experiment")
    default = request.node.module.__name__.rpartition(".")[2].removeprefix("test_").replace("_", "-")
    return ExperimentHandle(request, cluster, _experiment_from_marker(marker, request.config, default))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    outcomes = config.stash.get(OUTCOMES_KEY, [])
    if not outcomes:
        return
    terminalreporter.section("resilience verdicts")
    for outcome in outcomes:
        unknown = [r.name for r in outcome.results if r.name in outcome.unmet and r.valid is Validity.UNKNOWN]
        unexpected = [name for name in outcome.unmet if name not in unknown]
        known = [r.name for r in outcome.results if r.valid is Validity.FALSE and r.name not in outcome.unmet]
        parts = []
        if unexpected:
            parts.append(f"UNEXPECTED ({', '.join(unexpected)})")
        if known:
            parts.append(f"known findings ({', '.join(known)})")
        if unknown:
            parts.append(f"unknown ({', '.join(unknown)})")
        mark = "; ".join(parts) or "as expected"
        terminalreporter.write_line(
            f"{outcome.experiment.name:<28} {outcome.merged.value:<8} {mark:<30} {outcome.run_dir}"
        )
