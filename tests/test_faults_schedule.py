"""Schedules: the text form (and its errors), generation from a seed (deterministic, blast radius
bounded), and playing one against real Docker with monotonic timing, cancellation and final recovery."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import KillFault, Nemesis, PartitionFault, ToxicFault
from resilience.faults.leftovers import find_leftovers
from resilience.faults.schedule import (
    GeneratorSettings,
    ScheduleError,
    ScheduleRunner,
    down_at,
    generate_schedule,
    parse_schedule,
    parse_time,
    run_schedule,
)
from resilience.history import History
from resilience.topology import Topology, load_topology

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(ROOT / "harness" / "topologies" / "standin-ha.yaml")


# ------------------------------------------------------------------------------------------- text form


def test_the_text_form(topology: Topology) -> None:
    schedule = parse_schedule(
        """
        at 10 kill courier-1; recover at 25
        at 30 partition courier-1 | postgres one_way=true as cut   # a service stands for its nodes
        at 32s toxic redis latency latency=500 jitter=50 for 8
        recover cut at 0.75m
        at 50 pg-failover method=partition
        at 52 recover
        """,
        topology,
    )
    steps = [(s.at, s.action, s.fault.id) for s in schedule.steps]
    assert steps == [
        (10, "inject", "kill-1"),
        (25, "recover", "kill-1"),
        (30, "inject", "cut"),
        (32, "inject", "toxic-3"),
        (40, "recover", "toxic-3"),
        (45, "recover", "cut"),
        (50, "inject", "pg-failover-4"),
        (52, "recover", "pg-failover-4"),
    ]
    faults = schedule.faults()
    assert faults[0] == KillFault(node="courier-1", id="kill-1")
    assert faults[1] == PartitionFault(groups=[["courier-1"], ["postgres-1", "postgres-2"]], one_way=True, id="cut")
    assert faults[2] == ToxicFault(
        proxy="redis", type="latency", attributes={"latency": 500, "jitter": 50}, id="toxic-3"
    )
    assert schedule.seed is None


def test_to_text_reads_back_as_the_same_schedule(topology: Topology) -> None:
    schedule = generate_schedule(topology, 7, GeneratorSettings(duration=200, max_concurrent=2))
    again = parse_schedule(schedule.to_text(), topology)
    assert again.describe()["steps"] == schedule.describe()["steps"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("at x kill courier-1", "<s>:1: `at x kill courier-1`: expected a time like 10, 2.5s, 500ms or 1m, got 'x'"),
        ("at 1 kil courier-1", "unknown fault kind 'kil' (did you mean kill?)"),
        ("at 1 kill courir-1", "<s>:1: 'courir-1' is not a node of topology standin-ha (did you mean courier-1?)"),
        ("at 1 kill", "kill: missing parameter node"),
        ("at 1 kill courier-1 courier-2", "kill: too many arguments 'courier-1 courier-2'; expected <node>"),
        ("at 1 loss courier-1 probability=2", "loss: probability must be in (0, 1], got 2.0"),
        ("at 1 toxic redis latency latency=slow", "toxic: expected `int`, got `str`"),
        ("at 1 stop courier-1 timeout=soon", "stop: expected `int`, got `str` (parameter timeout)"),
        ("at 1 kill courier-1 colour=red", "kill has no parameter 'colour'"),
        ("at 1 partition courier-1", "partition: separate the groups with '|'"),
        ("recover at 5", "there is no fault left to recover"),
        (
            "at 9 kill courier-1\nrecover at 5",
            "<s>:2: `recover at 5`: recovers kill-1 at 5 s, before it is injected at 9 s",
        ),
        ("at 1 kill courier-1 as k\nrecover kk at 2", "no fault is named 'kk' (did you mean k?)"),
        ("at 1 kill courier-1 for 2\nrecover at 3", "no fault left to recover"),
        ("at 1 kill courier-1 as a; at 2 pause courier-2 as a", "the name a is already used"),
        ("kill courier-1 at 10", "expected `at TIME KIND [ARGS...] [as NAME] [for DURATION]`"),
        ("# nothing but a comment", "the schedule is empty"),
    ],
)
def test_bad_text_is_a_clear_error(topology: Topology, text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text, topology, source="<s>")
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once(topology: Topology) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule("at 1 kil courier-1\nat 2 pause courier-2\nat y stop courier-1", topology, source="exp")
    assert [p.split(":")[1] for p in caught.value.problems] == ["1", "3"]


def test_times() -> None:
    assert [parse_time(t) for t in ("10", "2.5s", "500ms", "1m", ".5")] == [10, 2.5, 0.5, 60, 0.5]


# ------------------------------------------------------------------------------------------- generation


def test_the_same_seed_gives_the_same_schedule(topology: Topology) -> None:
    settings = GeneratorSettings(duration=300, max_concurrent=2)
    first = generate_schedule(topology, 1234, settings)
    assert first.seed == 1234 and first.describe()["seed"] == 1234
    assert generate_schedule(topology, 1234, settings).describe() == first.describe()
    assert generate_schedule(topology, 1235, settings).describe()["steps"] != first.describe()["steps"]


@pytest.mark.parametrize("max_concurrent", [1, 3])
def test_the_blast_radius_is_bounded(topology: Topology, max_concurrent: int) -> None:
    settings = GeneratorSettings(duration=400, max_concurrent=max_concurrent, gap_seconds=(1, 4))
    most_at_once = 0
    for seed in range(25):
        schedule = generate_schedule(topology, seed, settings)
        kinds = {f.kind for f in schedule.faults()}
        assert kinds <= set(settings.kinds)
        for step in schedule.steps:
            down = down_at(schedule, topology, step.at)
            for service, count in down.items():
                assert count <= 1, (seed, step.at, service, count)
                assert count < topology.services[service].replicas, (seed, step.at, service)
            active = [
                s.fault
                for s in schedule.steps
                if s.action == "inject"
                and s.at <= step.at < next(r.at for r in schedule.steps if r.action == "recover" and r.fault is s.fault)
            ]
            most_at_once = max(most_at_once, len(active))
            assert len(active) <= max_concurrent
            for a, b in itertools.combinations(active, 2):
                assert not set(a.targets()) & set(b.targets()), (seed, a.id, b.id)
    assert most_at_once == max_concurrent  # the bound is reached, not merely respected by doing little


def test_a_whole_service_goes_down_only_when_allowed(topology: Topology) -> None:
    with pytest.raises(ScheduleError, match="no fault of kinds search-loss fits topology standin-ha"):
        generate_schedule(topology, 1, GeneratorSettings(kinds=("search-loss",)))
    allowed = generate_schedule(topology, 1, GeneratorSettings(kinds=("search-loss",), allow_outage=("search",)))
    assert {f.kind for f in allowed.faults()} == {"search-loss"}
    with pytest.raises(ScheduleError, match="allow_outage: topology standin-ha has no service serch"):
        generate_schedule(topology, 1, GeneratorSettings(allow_outage=("serch",)))


def test_targets_aim_a_kind_at_the_services_or_method_named(topology: Topology) -> None:
    # Exploration aimed at a combination (a courier killed while Postgres fails over by kill) draws only it.
    settings = GeneratorSettings(
        duration=300, kinds=("kill", "pg-failover"), targets={"kill": ("courier",), "pg-failover": ("kill",)}
    )
    for seed in range(10):
        faults = generate_schedule(topology, seed, settings).faults()
        kills = [f for f in faults if f.kind == "kill"]
        assert kills and all(topology.node(n).service == "courier" for f in kills for n in f.targets())
        assert all(f.method == "kill" for f in faults if f.kind == "pg-failover")  # type: ignore[attr-defined]
    # Without targets, the same seed gives the schedule it always gave: targets draw nothing extra.
    plain = GeneratorSettings(duration=300, kinds=("kill", "pg-failover"))
    assert generate_schedule(topology, 5, plain).describe()["steps"] == generate_schedule(
        topology, 5, GeneratorSettings(duration=300, kinds=("kill", "pg-failover"), targets={})
    ).describe()["steps"]


@pytest.mark.parametrize(
    ("targets", "fragment"),
    [
        ({"kill": ("couriers",)}, "kill: topology standin-ha has no service couriers; it has"),
        ({"pg-failover": ("promote",)}, "pg-failover: no method promote; expected: kill, partition"),
        ({"toxic": ("redis",)}, "toxic takes no target"),
        ({"stop": ("web",)}, "targets for stop, which is not among the kinds drawn"),
    ],
)
def test_targets_that_cannot_be_aimed_are_refused(topology: Topology, targets: dict, fragment: str) -> None:
    settings = GeneratorSettings(kinds=("kill", "pg-failover", "toxic"), targets=targets)
    with pytest.raises(ScheduleError, match=fragment):
        generate_schedule(topology, 1, settings)


def test_redis_failovers_respect_sentinels_cooldown(topology: Topology) -> None:
    schedule = generate_schedule(topology, 3, GeneratorSettings(kinds=("redis-failover",), duration=300))
    spans = [
        (s.at, next(r.at for r in schedule.steps if r.action == "recover" and r.fault is s.fault))
        for s in schedule.steps
        if s.action == "inject"
    ]
    assert len(spans) >= 3
    assert all(later[0] >= earlier[1] + 15 for earlier, later in itertools.pairwise(spans))


def test_bad_settings_are_refused(topology: Topology) -> None:
    with pytest.raises(ScheduleError, match="unknown fault kind"):
        generate_schedule(topology, 1, GeneratorSettings(kinds=("explode",)))
    with pytest.raises(ScheduleError, match="fault_seconds: expected 0 ≤ low ≤ high"):
        generate_schedule(topology, 1, GeneratorSettings(fault_seconds=(10, 5)))


# ------------------------------------------------------------------------------------------- playing


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


@pytest.mark.docker
def test_a_schedule_plays_on_time_and_recovers_what_is_left(infra_run: DockerRun, nemesis: Nemesis) -> None:
    schedule = parse_schedule(
        "at 0 pause sentinel-3 for 1.5\nat 0.5 toxic redis latency latency=50 as slow\nat 1 toxic mysql latency",
        infra_run.topology,
    )
    started = time.monotonic()
    outcome = run_schedule(nemesis, schedule)
    elapsed = time.monotonic() - started
    planned = [(r.at, r.action, r.fault_id, r.ok) for r in outcome.results]
    assert planned == [
        (0, "inject", "pause-1", True),
        (0.5, "inject", "slow", True),
        (1, "inject", "toxic-3", False),  # a failed step is recorded and the schedule goes on
        (1.5, "recover", "pause-1", True),
    ]
    assert "no proxy 'mysql'" in outcome.results[2].error
    assert all(abs(r.started - r.at) < 0.5 for r in outcome.results)
    assert 1.5 <= elapsed < 5
    assert not outcome.cancelled and outcome.cleanup_errors == []
    ops = [(op.type, op.f, op.value["id"]) for op in nemesis.history.recorded().ops]
    assert ("ok", "recover", "slow") in ops  # never recovered by the schedule: recovered at the end
    assert find_leftovers(infra_run) == []
    assert schedule.faults()[0].id == "pause-1" and nemesis.registry.entries() == {}


@pytest.mark.docker
def test_stopping_a_schedule_recovers_at_once(infra_run: DockerRun, nemesis: Nemesis) -> None:
    schedule = parse_schedule("at 0 pause sentinel-3; recover at 60\nat 30 kill sentinel-2", infra_run.topology)
    with ScheduleRunner(nemesis, schedule) as runner:
        time.sleep(0.5)
        assert infra_run.state("sentinel-3") == "paused"
        started = time.monotonic()
    outcome = runner.stop()
    assert time.monotonic() - started < 3
    assert outcome.cancelled and [r.fault_id for r in outcome.results] == ["pause-1"]
    assert infra_run.state("sentinel-3") == "running" and infra_run.state("sentinel-2") == "running"
    assert find_leftovers(infra_run) == []
