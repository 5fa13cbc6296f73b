"""Benchmark: how long the offline stack takes to build, come up and go away, and what the infra tier weighs.

    .venv/bin/python benchmarks/bringup.py [--skip-cold] [--json FILE]

Measures, in order:
- cold image build: `resilience images build --force` (debootstrap, packages, wheels, docker import, node
  image; cargo's target directory stays, so the Toxiproxy server is not recompiled). It replaces the
  image tags, so skip it with --skip-cold on a machine where that is unwelcome;
- warm build: the same command when the images exist (a no-op that checks the content hashes);
- the infra tier of standin-ha (Postgres pair, Redis + Sentinel, HAProxy, Toxiproxy, S3, search) from
  nothing to every node healthy; its memory (the docker stats API, summed over its containers); its removal;
- the whole topology (23 nodes) from nothing to healthy, its memory, and its removal.

Every run it creates carries this process as owner and is removed before it exits, whatever happened.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from resilience import images
from resilience.backends.docker import DockerBackend, DockerRun
from resilience.cluster import DEFAULT_TOPOLOGY
from resilience.topology import Topology, load_topology

T = TypeVar("T")
MIB = 1024 * 1024


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    value = action()
    return value, time.monotonic() - started


@dataclass(frozen=True)
class Memory:
    containers: int
    usage_mib: float  # what `docker stats` shows: usage less the page cache the kernel may drop
    rss_mib: float  # anonymous memory (cgroup v2 "anon", v1 "rss"): the processes' own


def _memory_of(container: Any) -> tuple[float, float]:
    stats = container.stats(stream=False, one_shot=True)
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    usage = float(memory.get("usage") or 0)
    cache = float(detail.get("inactive_file", detail.get("total_inactive_file", 0)) or 0)
    rss = float(detail.get("anon", detail.get("rss", 0)) or 0)
    return usage - cache, rss


def memory(backend: DockerBackend, run: DockerRun) -> Memory:
    containers = backend.client.containers.list(filters={"label": f"resilience.run={run.run_id}"})
    with ThreadPoolExecutor(max_workers=8) as pool:
        samples = list(pool.map(_memory_of, containers))
    return Memory(
        containers=len(containers),
        usage_mib=sum(s[0] for s in samples) / MIB,
        rss_mib=sum(s[1] for s in samples) / MIB,
    )


def remove_run(backend: DockerBackend, run_id: str, say: Callable[[str], None]) -> float:
    """`down`, timed; what it could not remove it says (Docker 20.10 may keep an empty network, moby#17217)."""
    started = time.monotonic()
    backend.down(run_id, log=lambda message: say(message) if "not removed" in message or "refused" in message else None)
    return time.monotonic() - started


def up_and_down(backend: DockerBackend, topology: Topology, label: str, say: Callable[[str], None]) -> dict[str, Any]:
    say(f"{label}: up ({len(topology.nodes())} nodes)")
    # `up` removes what it created when it fails; from here on the run is ours to remove.
    run, up_s = timed(lambda: backend.up(topology, log=lambda _m: None))
    try:
        weight = memory(backend, run)
        say(f"{label}: healthy in {up_s:.1f} s; {weight.usage_mib:.0f} MiB used, {weight.rss_mib:.0f} MiB RSS")
    finally:
        down_s = remove_run(backend, run.run_id, say)
        say(f"{label}: removed in {down_s:.1f} s")
    return {
        "nodes": len(topology.nodes()),
        "up_to_healthy_s": round(up_s, 2),
        "down_s": round(down_s, 2),
        "containers": weight.containers,
        "memory_usage_mib": round(weight.usage_mib, 1),
        "memory_rss_mib": round(weight.rss_mib, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-cold", action="store_true", help="do not force a rebuild of the images")
    parser.add_argument("--topology", type=Path, default=DEFAULT_TOPOLOGY)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    figures: dict[str, Any] = {}
    if not args.skip_cold:
        say("cold build: resilience images build --force")
        _, figures["cold_build_s"] = timed(lambda: images.build_all(log=lambda _m: None, force=True))
        say(f"cold build: {figures['cold_build_s']:.1f} s")
    say("warm build: resilience images build")
    _, figures["warm_build_s"] = timed(lambda: images.build_all(log=lambda _m: None))

    backend = DockerBackend()
    full = load_topology(args.topology)
    figures["infra"] = up_and_down(backend, full.select(["infra"]), "infra tier", say)
    figures["full"] = up_and_down(backend, full, "full topology", say)

    rows = [
        ("cold image build", f"{figures['cold_build_s']:.1f} s" if "cold_build_s" in figures else "skipped"),
        ("warm image build (no-op)", f"{figures['warm_build_s']:.2f} s"),
    ]
    for key, label in (("infra", "infra tier"), ("full", "full topology")):
        tier = figures[key]
        rows += [
            (f"{label} ({tier['nodes']} nodes) up to healthy", f"{tier['up_to_healthy_s']:.1f} s"),
            (f"{label} memory (docker stats, {tier['containers']} containers)", f"{tier['memory_usage_mib']:.0f} MiB"),
            (f"{label} RSS (anon)", f"{tier['memory_rss_mib']:.0f} MiB"),
            (f"{label} down", f"{tier['down_s']:.1f} s"),
        ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
