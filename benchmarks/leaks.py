"""Benchmark: does anything of a run outlive its harness, however the harness ends?

    .venv/bin/python benchmarks/leaks.py [--runs N] [--seed S] [--bound SECONDS]

N short runs (default 100), each a harness process that brings up the two Redis nodes of standin-ha,
partitions them for a moment, recovers and takes its run down. A third run to the end, a third get
SIGINT and a third SIGKILL, each at a seeded random moment of the harness's life (a phase it
announces, then a random 0-1 s: bring-up, fault, recovery or teardown). After each, the engine is
polled (bounded by --bound) until nothing labelled with that run remains; what remains then is a leak.
Printed: one line per run, the totals (the goal is 0 leaks) and the wall time. Fault-registry records
a SIGKILLed harness leaves on the host are counted apart: they are host files that the next
`resilience cleanup` forgets, not anything on the engine.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from resilience.backends import labels
from resilience.backends.docker import DockerBackend, iter_labelled
from resilience.faults import Registry

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = ROOT / "harness" / "topologies" / "standin-ha.yaml"
# A kill point is a phase the harness announces, then 0-1 s more (seeded): during its imports or
# bring-up ("start"), its fault ("up": injecting; "fault": applied), its recovery and its teardown.
PHASES = ("start", "up", "fault", "recovered")

HARNESS = """
import signal, sys, time
# ^C raises KeyboardInterrupt even when this benchmark runs in the background (where SIGINT is ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
from pathlib import Path
from resilience.backends.docker import DockerBackend
from resilience.faults import Nemesis, PartitionFault, Registry
from resilience.history import History
from resilience.topology import load_topology

run_id, state_dir, topology = sys.argv[1:4]
backend = DockerBackend()
try:
    run = backend.up(load_topology(Path(topology)).select(["redis"]), run_id=run_id, log=lambda m: None)
    print("up", flush=True)
    nemesis = Nemesis(run, History(None, run_id=run_id), Registry(run_id, state_dir))
    with nemesis.applied(PartitionFault(groups=[["redis-1"], ["redis-2"]])):
        print("fault", flush=True)
        time.sleep(1.0)
    print("recovered", flush=True)
finally:
    backend.down(run_id, log=lambda m: None)
    print("down", flush=True)
"""


def one_run(
    index: int, how: str, phase: str, delay: float, state_dir: Path, backend: DockerBackend, bound: float
) -> tuple[str, int]:
    """One harness, ended `how` (`end`, SIGINT, SIGKILL) `delay` seconds after it reached `phase`."""
    run_id = labels.new_run_id()
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, run_id, str(state_dir), str(TOPOLOGY)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert harness.stdout is not None
    reached = "start"
    if how != "end":
        while reached != phase:
            line = harness.stdout.readline()  # bounded: the harness's own life, ~4 s here
            if not line:
                break
            reached = line.strip()
        if reached == phase:
            time.sleep(delay)
            harness.send_signal(signal.SIGINT if how == "SIGINT" else signal.SIGKILL)
    try:
        out, _ = harness.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        harness.kill()
        out, _ = harness.communicate()
    last = (out.split() or [reached])[-1]
    ended = time.monotonic()
    left = list(iter_labelled(backend.client, run_id))
    while left and time.monotonic() - ended < bound:
        time.sleep(0.2)
        left = list(iter_labelled(backend.client, run_id))
    gone = time.monotonic() - ended
    records = len(Registry(run_id, state_dir).entries())
    where = f"{delay:3.1f} s after {phase:<9}" if how != "end" else " " * 21
    line = (
        f"{index:4d}  {how:<7} {where}  last phase {last:<9} exit {harness.returncode:4d}  "
        f"gone {gone:5.1f} s after exit  leftovers {len(left)}  registry records {records}"
    )
    if left:
        line += f"  ({', '.join(left)}); removing them"
        backend.down(run_id, log=lambda _m: None)
    return line, len(left)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="how many runs (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the endings and kill points (default 1)")
    parser.add_argument(
        "--bound", type=float, default=60.0, help="seconds after the harness ends before a remainder is a leak"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    endings = [("end", "SIGINT", "SIGKILL")[i % 3] for i in range(args.runs)]
    rng.shuffle(endings)
    backend = DockerBackend()
    started = time.monotonic()
    leaks = 0
    by_ending: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="leaks-") as state_dir:
        for index, how in enumerate(endings, 1):
            phase, delay = rng.choice(PHASES), rng.uniform(0.0, 1.0)
            line, left = one_run(index, how, phase, delay, Path(state_dir), backend, args.bound)
            print(line, flush=True)
            leaks += left
            by_ending[how] = by_ending.get(how, 0) + left
    wall = time.monotonic() - started
    per = ", ".join(f"{how} {n}" for how, n in sorted(by_ending.items()))
    print(f"total leftovers: {leaks} ({per}) over {args.runs} runs")
    print(f"wall time {wall:.0f} s ({wall / args.runs:.1f} s a run)")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
