"""Benchmark: check a 1,000,000-record history and its matching snapshot; print seconds and peak RSS.

    .venv/bin/python benchmarks/checkers.py [--records N] [--keep DIR]

The world is generated in a child process (so its memory does not count), then this process, pinned
to one core, reads both files and runs every checker. Budget: under 10 s and 2 GiB.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec

from resilience.checks import merge, run_all
from resilience.checks.synthetic import FAVORITES, WorldBuilder
from resilience.history import FAIL, INFO, read_history
from resilience.snapshot import Delivery, Snapshot, read_snapshot, write_snapshot

BUDGET_S = 10.0
BUDGET_RSS_MIB = 2048
CONTACTS_AT_ONCE = 200  # conversations in flight together
FAULT_EVERY = 20_000  # MOs between faults


def generate(directory: Path, records: int, seed: int, damage: bool) -> None:
    """About `records` history records: contacts walking the Favorites script in waves, with a fault
    (a few rejected and unknown MOs inside it) every FAULT_EVERY MOs; every other failover."""
    world = WorldBuilder(seed=seed, path=directory / "history.jsonl", keep_in_memory=False, request_s=0.01)
    written = 1  # the header
    contact = 0
    mos = 0
    faults = 0
    while written < records:
        wave = range(contact, contact + CONTACTS_AT_ONCE)
        contact += CONTACTS_AT_ONCE
        for number, step in enumerate(FAVORITES):
            for member in wave:
                if mos and mos % FAULT_EVERY == 0:
                    faults += 1
                    fault_id = f"f{faults}"
                    kind = "postgres-failover" if faults % 2 else "kill"
                    world.inject(kind, fault_id, ["courier-1"])
                    world.mo(f"tel:+2507{member:08d}", f"x [{fault_id}.a]", conversation=f"x{fault_id}",
                             step=0, expect=(), outcome=FAIL, accepted=False)  # fmt: skip
                    world.mo(f"tel:+2507{member:08d}", f"x [{fault_id}.b]", conversation=f"x{fault_id}",
                             step=1, expect=(), outcome=INFO, accepted=True)  # fmt: skip
                    world.recover(fault_id, kind)
                    written += 8
                world.mo(
                    f"tel:+2507{member:08d}",
                    f"{step.answer} [{member}.{number}]",
                    conversation=str(member),
                    step=number,
                    expect=step.replies,
                    final=number == len(FAVORITES) - 1,
                )
                written += 2
                mos += 1
                world.advance(0.001)
            world.advance(0.5)
    world.history.close()
    snapshot = world.snapshot()
    if damage:
        _damage(snapshot)
    write_snapshot(snapshot, directory / "snapshot.json")


def _damage(snapshot: Snapshot) -> None:
    """Plant problems in about 1% of conversations: a lost MO, a redelivered reply, two replies swapped."""
    inbound = [m for m in snapshot.msgs if m.direction == "I"]
    lost = {m.id for m in inbound[::400]}
    snapshot.msgs = [m for m in snapshot.msgs if m.id not in lost]
    deliveries = snapshot.aggregator
    last = deliveries[-1].seq
    for number, delivery in enumerate(deliveries[::400], start=1):
        deliveries.append(msgspec.structs.replace(delivery, seq=last + number))
    by_urn: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        by_urn.setdefault(delivery.to, []).append(delivery)
    for arrivals in list(by_urn.values())[::100]:
        if len(arrivals) >= 2:
            arrivals[0].seq, arrivals[1].seq = arrivals[1].seq, arrivals[0].seq


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="history records (invocations + completions)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the generated files here and keep them")
    parser.add_argument("--damage", action="store_true", help="plant losses, duplicates and reorderings")
    parser.add_argument("--generate-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate(args.generate_only, args.records, args.seed, args.damage)
        return 0

    with tempfile.TemporaryDirectory(prefix="checkers-bench-") as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--records", str(args.records), "--seed", str(args.seed),
             "--generate-only", str(directory), *(["--damage"] if args.damage else [])],
            check=True,
        )  # fmt: skip
        generated = time.perf_counter() - started
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

        # CPU time is what the budget is about; wall time is printed too (the machine may be shared).
        # The snapshot first: its decoder needs the whole file in memory at once, the history is
        # streamed line by line, so this order keeps the peak lower.
        cpu_started, started = time.process_time(), time.perf_counter()
        snapshot = read_snapshot(directory / "snapshot.json")
        read_s = time.perf_counter()
        history = read_history(directory / "history.jsonl")
        read_h = time.perf_counter()
        results = run_all(history, snapshot)
        checked = time.perf_counter()
        gc.collect()  # the collector was paused while records were built; its catch-up pass counts too

        total = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        rss = peak_rss_mib()
        sizes = {name: (directory / name).stat().st_size / 2**20 for name in ("history.jsonl", "snapshot.json")}
        print(
            f"history: {len(history.ops):,} records ({sizes['history.jsonl']:.0f} MiB), snapshot: "
            f"{len(snapshot.msgs):,} msgs, {len(snapshot.aggregator):,} deliveries, {len(snapshot.runs):,} runs "
            f"({sizes['snapshot.json']:.0f} MiB); generated in {generated:.1f} s"
        )
        print(f"read snapshot  {read_s - started:6.2f} s")
        print(f"read history   {read_h - read_s:6.2f} s")
        print(f"run checkers   {checked - read_h:6.2f} s")
        for result in results:
            print(f"  {result.name:13s} {result.valid.value:8s} {_headline(result.counts)}")
        print(
            f"total          {total:6.2f} s wall, {cpu:.2f} s CPU on one core (budget {BUDGET_S:.0f} s); "
            f"peak RSS {rss:.0f} MiB (budget {BUDGET_RSS_MIB} MiB); merged verdict: {merge(results).value}"
        )
        return 0 if cpu < BUDGET_S and rss < BUDGET_RSS_MIB else 1


def _headline(counts: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v}" for k, v in list(counts.items())[:6])


if __name__ == "__main__":
    sys.exit(main())
