"""The pytest plugin: options, the `experiment` marker, and the fixtures experiments use.

    @pytest.mark.experiment(name="kill-courier", schedule="at 8 kill courier-1; recover at 20", rate=4)
    def test_kill_courier(experiment):
        experiment.run()

`cluster` is session-scoped: one topology serves every experiment of a pytest run (and is removed at the
end unless --resilience-keep-cluster). The test passes when the experiment's decision is valid: every
finding inside one of its allowances, every recovery bound met (resilience.verdict). A finding outside
its allowance fails the test with the decision's summary (which finding broke which rule); an undeclared
unknown fails it too, unless --resilience-lenient-unknown turns that into a warning. The marker's policy
(allowances, unknown, bounds, expected) is checked when pytest collects the experiment: a mistake is a
collection error with the file and line.

A good neighbour in every pytest session of the environment (it is an entry point): its options are all
`--resilience-*` (the unprefixed spellings are deprecated aliases, for one release), its SIGTERM handler
is installed only in sessions that collect experiments or use the cluster, and `resilience_topology`,
`resilience_switches` and `resilience_workload_scripts` are fixtures a conftest.py may override
(docs/writing-experiments.md, "Overriding fixtures").
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from resilience.checks import Validity
from resilience.cluster import DEFAULT_TOPOLOGY, Cluster, attach_cluster, start_cluster
from resilience.experiment import (
    DECISION_WORDS,
    REPORTS_DIR,
    Experiment,
    Outcome,
    SteadyStateError,
    new_run_dir,
    run_experiment,
)
from resilience.history import History
from resilience.interrupts import terminate_gracefully
from resilience.verdict.allowances import PolicyError
from resilience.verdict.decision import NEW
from resilience.verdict.power import SOAK_RATE, messages_needed
from resilience.workload.runner import WorkloadConfig

if TYPE_CHECKING:
    from resilience.topology import Topology
    from resilience.workload.script import Script

OUTCOMES_KEY = pytest.StashKey[list[Outcome]]()


class UnknownVerdictWarning(UserWarning):
    """An experiment's verdict was unknown: the history could not decide (e.g. the system never drained)."""


# The options every pytest session of the environment sees (the plugin is an entry point): prefixed, so
# that no other plugin's option can collide. The old spellings stay for one release, then go.
DEPRECATED_SPELLINGS = (
    "topology",
    "seed",
    "duration",
    "rate",
    "keep-cluster",
    "reuse-cluster",
    "report-dir",
    "strict-unknown",
    "lenient-unknown",
    "soak",
)


def _option(group: pytest.OptionGroup, name: str, **kwargs: Any) -> None:
    """`--resilience-NAME`, with `--NAME` as its deprecated alias (same destination)."""
    group.addoption(f"--resilience-{name}", f"--{name}", dest=f"resilience_{name.replace('-', '_')}", **kwargs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience", "resilience experiments (each also as --NAME, deprecated)")
    _option(group, "topology", default=str(DEFAULT_TOPOLOGY), help="topology file for the `cluster` fixture")
    _option(group, "seed", type=int, default=None, help="seed for workloads and generated schedules")
    _option(group, "duration", type=float, default=None, help="override every experiment's workload duration (s)")
    _option(group, "rate", type=float, default=None, help="override every experiment's MO rate (per second)")
    _option(group, "keep-cluster", action="store_true", help="leave the cluster up after the run")
    _option(group, "reuse-cluster", default=None, metavar="RUN_ID", help="run against an existing run")
    group.addoption(
        "--resilience-target",
        dest="resilience_target",
        default=None,
        metavar="NAME",
        help="run against a deployment we did not create: a target (./targets/NAME.yaml, $RESILIENCE_TARGETS), "
        "its nodes over SSH through its hosts file (docs/hosts.md); no Docker cluster is brought up",
    )
    _option(group, "report-dir", default=str(REPORTS_DIR), help="where run directories are written")
    _option(
        group,
        "lenient-unknown",
        action="store_true",
        help="an undeclared unknown decision is a warning, not a failure (by default it fails)",
    )
    _option(
        group,
        "strict-unknown",
        action="store_true",
        help="(the default now; kept so older command lines still work)",
    )
    _option(
        group,
        "soak",
        action="store_true",
        help=f"lengthen every workload so that a clean run detects a {SOAK_RATE * 100:.1f} %% per-message loss "
        "or duplication rate with 95%% confidence (nightly use: several minutes per experiment)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "experiment(**kw): a resilience experiment (docs/writing-experiments.md)")
    config.stash[OUTCOMES_KEY] = []
    old = sorted(
        {
            f"--{n}"
            for a in config.invocation_params.args
            for n in DEPRECATED_SPELLINGS
            if str(a).split("=")[0] == f"--{n}"
        }
    )
    if old:
        new = ", ".join(f"--resilience-{o[2:]}" for o in old)
        config.issue_config_time_warning(
            pytest.PytestDeprecationWarning(f"{', '.join(old)}: deprecated spelling, use {new}"), stacklevel=2
        )
    if config.getoption("resilience_target"):
        _load_target(config.getoption("resilience_target"))
    if config.getoption("resilience_topology") != str(DEFAULT_TOPOLOGY):
        # Named on the command line: a mistake in it is a usage error, said once, before any test runs.
        _load_topology(config.getoption("resilience_topology"))


def _load_topology(path: str) -> Topology:
    from resilience.topology import TopologyError, load_topology

    try:
        return load_topology(Path(path))
    except TopologyError as exc:
        raise pytest.UsageError(f"--resilience-topology: {exc}") from None


def _load_target(name: str) -> Any:
    from resilience.target import TargetError, load_target

    try:
        return load_target(name)
    except TargetError as exc:
        raise pytest.UsageError(f"--resilience-target: {exc}") from None


def target_cluster(name: str) -> tuple[Cluster, Any]:
    """The cluster of target NAME: its nodes through a HostsRun on its hosts file (None without one), whose
    faults the registry records with the target (`resilience cleanup --target NAME` finds them); the run too,
    for closing."""
    from resilience.backends.hosts_target import open_target

    return open_target(_load_target(name))


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # A cancelled CI job (SIGTERM) unwinds like ^C, so that fault reverts and the cluster's teardown run;
    # only in sessions that run experiments or use a cluster: any other session keeps Python's default.
    if any(_uses_cluster(item) for item in items):
        terminate_gracefully()


def _uses_cluster(item: pytest.Item) -> bool:
    if item.get_closest_marker("experiment") is not None:
        return True
    return bool({"cluster", "experiment", "nemesis", "workload"} & set(getattr(item, "fixturenames", ())))


# ---------------------------------------------------------------------------- fixtures users may override
@pytest.fixture(scope="session")
def resilience_switches() -> dict[str, dict[str, Any]]:
    """Stand-in switches applied over the topology's own, e.g. `{"aggregator": {"error_rate": 0.1}}` for an
    aggregator that fails a tenth of its sends (docs/standin.md). Override it in a conftest.py."""
    return {}


@pytest.fixture(scope="session")
def resilience_topology(request: pytest.FixtureRequest, resilience_switches: dict[str, dict[str, Any]]) -> Topology:
    """The topology the `cluster` fixture brings up: --resilience-topology with `resilience_switches`.
    Override it to build one in code (e.g. `load_topology(path, params).select([...])`)."""
    try:
        topology = _load_topology(request.config.getoption("resilience_topology"))
    except pytest.UsageError as exc:
        _stop(str(exc))
    if resilience_switches:
        from resilience.topology import TopologyError

        try:
            topology = topology.with_switches(resilience_switches)
        except TopologyError as exc:
            _stop(f"resilience_switches: {exc}")
    return topology


def _stop(message: str) -> NoReturn:
    """A usage mistake found while setting up: said once, and the session stops (not one error per test)."""
    pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="session")
def resilience_workload_scripts() -> list[Script]:
    """The conversation scripts the `workload` fixture draws from (default: fixtures/conversations)."""
    from resilience.experiment import SCRIPTS_DIR
    from resilience.workload.script import load_scripts

    return list(load_scripts(SCRIPTS_DIR).values())


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The topology (`resilience_topology`), up, healthy and seeded; shared by every test of the session."""
    config = request.config
    reuse = config.getoption("resilience_reuse_cluster") or os.environ.get("RESILIENCE_REUSE_CLUSTER")
    if config.getoption("resilience_target"):
        if reuse:
            _stop("--resilience-target and --resilience-reuse-cluster: give one of them")
        from resilience.cluster import ClusterError

        try:
            cluster, hosts_run = target_cluster(config.getoption("resilience_target"))
        except (ClusterError, pytest.UsageError) as exc:
            _stop(f"--resilience-target {config.getoption('resilience_target')}: {exc}")
        try:
            yield cluster
        finally:
            if hosts_run is not None:
                from resilience.faults.registry import Registry, revert_recorded

                # As the Docker teardown's revert_leftovers: whatever a test left registered is recovered.
                revert_recorded(hosts_run, Registry(hosts_run.run_id), lambda _line: None)
                hosts_run.close()
        return
    if reuse:
        yield attach_cluster(reuse)
        return
    keep = bool(config.getoption("resilience_keep_cluster"))
    topology = request.getfixturevalue("resilience_topology")
    cluster = start_cluster(topology, keep=keep, log=lambda _m: None)
    try:
        yield cluster
    finally:
        if not keep:
            from resilience.backends.docker import DockerBackend
            from resilience.faults.registry import revert_leftovers

            revert_leftovers(DockerBackend(), cluster.run.run_id)
            DockerBackend().down(cluster.run.run_id, log=lambda _m: None)


@pytest.fixture
def history(request: pytest.FixtureRequest) -> Iterator[History]:
    """A fresh history in its own run directory, for tests that drive workload and nemesis by hand."""
    root = Path(request.config.getoption("resilience_report_dir"))
    run_dir = new_run_dir(root, request.node.name.replace("[", "-").replace("]", ""))
    with History(run_dir / "history.jsonl", run_id=run_dir.name, seed=request.config.getoption("resilience_seed")) as h:
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
def workload(
    cluster: Cluster, history: History, request: pytest.FixtureRequest, resilience_workload_scripts: list[Script]
) -> Any:
    """A factory: `stats = workload(rate=4, duration=10)` runs conversations (`resilience_workload_scripts`)
    recorded in `history`."""
    import asyncio

    from resilience.experiment.phases import open_workload

    def run(**overrides: Any) -> Any:
        config = dataclasses.replace(WorkloadConfig(seed=request.config.getoption("resilience_seed") or 1), **overrides)
        # The same setup as an experiment's workload (resilience/experiment/phases.py).
        session = open_workload(cluster, history, list(resilience_workload_scripts), config)
        try:
            return asyncio.run(session.drive())
        finally:
            session.close()

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

        try:
            outcome = run_experiment(
                self.cluster, self.definition, Path(config.getoption("resilience_report_dir")), progress=progress
            )
        except SteadyStateError as exc:
            pytest.fail(f"{self.definition.name}: {exc}", pytrace=False)
        config.stash[OUTCOMES_KEY].append(outcome)
        properties = self._request.node.user_properties
        properties.append(("verdict", outcome.merged.value))
        properties.append(("decision", outcome.decision.validity.value))
        properties.append(("report", str(outcome.run_dir)))
        for hop, figures in outcome.decision.power.items():
            properties.append((f"detectable_rate_{hop}", str(figures["detectable_rate"])))
            properties.append((f"messages_{hop}", str(figures["messages"])))
        if check:
            self.assert_expected(outcome)
        return outcome

    def assert_expected(self, outcome: Outcome) -> None:
        validity = outcome.decision.validity
        if validity is Validity.TRUE:
            return
        if validity is Validity.UNKNOWN and self._request.config.getoption("resilience_lenient_unknown"):
            warnings.warn(UnknownVerdictWarning(outcome.summary()), stacklevel=2)
            return
        pytest.fail(outcome.summary(), pytrace=False)


class ExperimentMarkerError(ValueError):
    """An @pytest.mark.experiment whose arguments cannot make an experiment."""


def experiment_from_marker(marker: pytest.Mark, config: pytest.Config | None, default_name: str) -> Experiment:
    """The marker's Experiment, its policy checked; ExperimentMarkerError says what is wrong."""
    kwargs = dict(marker.kwargs)
    if "known" in kwargs:
        raise ExperimentMarkerError(
            "`known=` is gone: a finding is excused only by an allowance bounded to its fault, e.g. "
            "allowances=[Allowance('inbound.duplicated', fault='kill courier-1', max=2, why='...')] "
            "(docs/writing-experiments.md)"
        )
    workload_fields = {f.name for f in dataclasses.fields(WorkloadConfig)}
    workload_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in workload_fields}
    if config is not None:
        for option in ("duration", "rate", "seed"):
            if config.getoption(f"resilience_{option}") is not None:
                workload_kwargs[option] = config.getoption(f"resilience_{option}")
        if config.getoption("resilience_soak"):
            rate = float(workload_kwargs.get("rate", WorkloadConfig.rate))
            # Acknowledged MOs are what a hop's power counts; leave a fifth for those a fault refuses.
            needed = messages_needed(SOAK_RATE) * 1.2 / rate
            workload_kwargs["duration"] = max(float(workload_kwargs.get("duration", WorkloadConfig.duration)), needed)
    allowances = kwargs.pop("allowances", ())
    name = kwargs.pop("name", default_name)
    try:
        experiment = Experiment(
            name=name, workload=WorkloadConfig(**workload_kwargs), allowances=tuple(allowances or ()), **kwargs
        )
        experiment.policy  # noqa: B018 - checked here, so that a mistake is found at collection
    except TypeError as exc:
        raise ExperimentMarkerError(str(exc)) from None
    except PolicyError as exc:
        raise ExperimentMarkerError(str(exc)) from None
    return experiment


def _experiment_from_marker(marker: pytest.Mark, config: pytest.Config, default_name: str) -> Experiment:
    try:
        return experiment_from_marker(marker, config, default_name)
    except ExperimentMarkerError as exc:
        raise pytest.UsageError(f"@pytest.mark.experiment on {default_name}: {exc}") from None


def _marker_line(function: Any, words: list[str]) -> int:
    """The source line of the first of `words` found in the decorators above `function` (else the line of
    the decorator itself)."""
    import inspect

    try:
        lines, first = inspect.getsourcelines(function)
    except (OSError, TypeError):
        return 0
    for word in words:
        for offset, line in enumerate(lines):
            if word and word in line:
                return first + offset
    return first


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    """Check each experiment's marker while collecting: a bad allowance, bound or declared unknown is a
    collection error naming the file and line, before any cluster is started."""
    items = yield
    for item in items if isinstance(items, list) else [items] if items is not None else []:
        marker = item.get_closest_marker("experiment") if isinstance(item, pytest.Function) else None
        if marker is None:
            continue
        default = item.module.__name__.rpartition(".")[2].removeprefix("test_").replace("_", "-")
        try:
            experiment_from_marker(marker, None, default)
        except ExperimentMarkerError as exc:
            message = str(exc)
            # The names the message quotes (a kind, a checker, a key) locate the offending entry.
            quoted = [part for part in message.split("'")[1::2] if part and " " not in part]
            line = _marker_line(item.function, ["known=" if "`known=`" in message else "", *quoted])
            raise collector.CollectError(f"{item.path}:{line}: {message}") from None
    return items


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
        decision = outcome.decision
        new = decision.new
        violations = sorted({j.finding.key for j in new if j.finding.severity is Validity.FALSE} | set(decision.unmet))
        undecided = sorted({j.finding.key for j in new if j.finding.severity is Validity.UNKNOWN})
        allowed = sorted({j.finding.key for j in decision.judgements if j.status not in NEW})
        parts = []
        if violations:
            parts.append(f"NOT EXCUSED ({', '.join(violations)})")
        if undecided:
            parts.append(f"undeclared unknown ({', '.join(undecided)})")
        if allowed:
            parts.append(f"allowed ({', '.join(allowed)})")
        mark = "; ".join(parts) or "clean"
        terminalreporter.write_line(
            f"{outcome.experiment.name:<28} {DECISION_WORDS[decision.validity]:<8} {mark}  {outcome.run_dir}"
        )
