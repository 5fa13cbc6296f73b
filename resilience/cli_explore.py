"""`resilience explore`: play seeded random schedules within a budget until one fails, shrink it to the smallest
schedule that still fails the same way, and write it as a ready experiment (docs/explore.md)."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from pathlib import Path

from resilience.cluster import DEFAULT_TOPOLOGY, ROOT
from resilience.exitcodes import ExitCode
from resilience.experiment import REPORTS_DIR, Experiment, new_run_dir
from resilience.explore.found import found_module, write_found_module
from resilience.explore.record import journal, write_record
from resilience.explore.search import ExploreError, ExploreResult, ExploreSettings, explore
from resilience.faults.base import FAULT_KINDS
from resilience.faults.schedule import GeneratorSettings, ScheduleError
from resilience.interrupts import Terminated

FOUND_DIR = ROOT / "experiments" / "found"
BASE_EXPERIMENT = "nightly_mixed"
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")
_REPEAT = re.compile(r"(\d+)/(\d+)")


def parse_budget(text: str) -> float:
    """`90s`, `45m`, `1h`, `1h30m` or plain seconds, as seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"expected a duration like 900, 90s, 45m, 1h or 1h30m, got {text!r}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_repeat(text: str) -> tuple[int, int]:
    """`K/N`: a shrunk schedule still fails when K of N repetitions fail the same way."""
    match = _REPEAT.fullmatch(text.strip())
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise argparse.ArgumentTypeError(f"expected K/N with 1 ≤ K ≤ N, like 2/3, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_faults(words: list[str]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """`kill:courier,mailroom pg-failover:kill lb-cut`: the kinds to draw from, and what each may act on."""
    kinds: list[str] = []
    targets: dict[str, tuple[str, ...]] = {}
    for word in words:
        kind, colon, rest = word.partition(":")
        if kind not in FAULT_KINDS:
            raise ExploreError(f"--faults: unknown kind {kind!r} in {word!r}; expected: {', '.join(FAULT_KINDS)}")
        choices = tuple(c.strip() for c in rest.split(",") if c.strip())
        if colon and not choices:
            raise ExploreError(f"--faults: {word!r} names no target after the colon; expected e.g. kill:courier")
        if kind in kinds:
            raise ExploreError(f"--faults: {kind} is given twice; list its targets once, e.g. {kind}:a,b")
        kinds.append(kind)
        if choices:
            targets[kind] = choices
    return tuple(kinds), targets


def settings_from(args: argparse.Namespace, base: Experiment) -> ExploreSettings:
    """The base experiment's generator and workload, with the command line's overrides."""
    generator = dict(base.generator)
    if args.faults:
        kinds, targets = parse_faults(args.faults)
        generator["kinds"] = kinds
        generator["targets"] = targets
    if "targets" in generator:
        generator["targets"] = {str(k): tuple(v) for k, v in dict(generator["targets"]).items()}
    if args.max_concurrent is not None:
        generator["max_concurrent"] = args.max_concurrent
    for key in ("kinds", "allow_outage"):
        if key in generator:
            generator[key] = tuple(generator[key])
    for key in ("fault_seconds", "gap_seconds"):
        if key in generator:
            generator[key] = tuple(generator[key])
    try:
        generator_settings = GeneratorSettings(**generator)
        generator_settings.check()
    except (TypeError, ScheduleError) as exc:
        raise ExploreError(f"the generator settings of {base.name}: {exc}") from None
    workload = base.workload
    if args.rate is not None:
        workload = dataclasses.replace(workload, rate=args.rate)
    k, n = args.repeat
    return ExploreSettings(
        args.budget, args.seed, generator_settings, workload, k=k, n=n, chase=tuple(args.chase or ())
    )


def _explore(args: argparse.Namespace) -> int:
    from resilience.cli_experiments import load_experiment
    from resilience.cluster import attach_cluster, start_cluster
    from resilience.explore.trial import ClusterTrials, kinds_without_allowances, with_weak_spots
    from resilience.topology import load_topology

    try:
        base = load_experiment(args.experiment)
        settings = settings_from(args, base)
        extra_kinds = kinds_without_allowances(base, settings.generator.kinds)
        base = with_weak_spots(base, extra_kinds)
    except (ValueError, ExploreError) as exc:
        print(f"resilience explore: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    say = (lambda m: print(m, flush=True)) if not args.quiet else (lambda _m: None)
    record_dir = new_run_dir(Path(args.report_dir), "explore")
    result = ExploreResult(played=[])
    interrupted = ""
    cluster = None
    started = time.monotonic()
    try:
        if args.reuse_cluster:
            cluster = attach_cluster(args.reuse_cluster)
        else:
            cluster = start_cluster(load_topology(args.topology), keep=args.keep_cluster, log=say)
        trials = ClusterTrials(cluster, base, Path(args.report_dir))
        explore(settings, cluster.run.topology, trials, say=say, into=result)
    except ExploreError as exc:
        print(f"resilience explore: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except KeyboardInterrupt as exc:  # ^C or SIGTERM: the run in progress reverted its faults on the way out
        interrupted = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
    finally:
        result.seconds = result.seconds or time.monotonic() - started
        found = _write_found(args, settings, result, extra_kinds)
        data = journal(result, settings, base.name, record_dir, found_module=str(found or ""), interrupted=interrupted)
        page = write_record(record_dir, data)
        if cluster is not None and not args.reuse_cluster and not args.keep_cluster:
            from resilience.backends.docker import DockerBackend

            DockerBackend().down(cluster.run.run_id, log=lambda _m: None)
        _summary(result, page, found, interrupted)
    if interrupted:
        return ExitCode.TERMINATED if interrupted == "SIGTERM" else ExitCode.INTERRUPTED
    return ExitCode.INVALID if result.failing is not None else ExitCode.VALID


def _write_found(
    args: argparse.Namespace, settings: ExploreSettings, result: ExploreResult, extra_kinds: tuple[str, ...]
) -> Path | None:
    if result.minimal is None or result.target is None or result.failing is None:
        return None
    name, text = found_module(
        result.minimal,
        base=args.experiment,
        target=result.target,
        seed=settings.seed,
        original_faults=len(result.failing.episodes),
        runs=result.search_runs + result.shrink_runs,
        k=settings.k,
        n=settings.n,
        extra_kinds=extra_kinds,
    )
    return write_found_module(Path(args.found_dir), name, text)


def _summary(result: ExploreResult, page: Path, found: Path | None, interrupted: str) -> None:
    if result.failing is None:
        print(f"no schedule failed: {result.search_runs} schedule(s) in {result.seconds:.0f} s")
    else:
        faults = len(result.minimal.episodes) if result.minimal else len(result.failing.episodes)
        print(
            f"found {result.target} after {result.search_runs} schedule(s); shrunk to {faults} fault(s) "
            f"in {result.shrink_runs} run(s)"
        )
    if interrupted:
        print(f"interrupted ({interrupted}): what was played so far is recorded; every fault was reverted")
    if found is not None:
        print(f"experiment: {found}")
    print(f"record: {page}")


CHECKERS = ("inbound", "outbound", "continuity", "availability", "latency", "logs")


def chase_item(text: str) -> str:
    """A checker name or `checker.kind`; anything else is a usage error naming what is expected."""
    checker, _, kind = text.partition(".")
    if checker not in CHECKERS or (kind == "" and text.endswith(".")):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a checker ({', '.join(CHECKERS)}) or checker.kind, e.g. inbound.lost"
        )
    return text


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "explore",
        help="play seeded random schedules until one fails, then shrink it to a minimal ready experiment",
        description=__doc__,
    )
    parser.add_argument("--budget", type=parse_budget, default=parse_budget("60m"), help="wall-clock budget (60m)")
    parser.add_argument("--seed", type=int, default=1, help="the exploration's seed: same seed, same schedules")
    parser.add_argument(
        "--faults",
        nargs="+",
        metavar="KIND[:TARGETS]",
        help="fault kinds to draw from (default: the base's); KIND:a,b limits what it acts on: services for "
        "faults on nodes, lb-cut and rolling-restart (kill:courier), the method for pg-failover and search-loss "
        "(pg-failover:kill)",
    )
    parser.add_argument("--max-concurrent", type=int, metavar="N", help="faults active at once (default: the base's)")
    parser.add_argument(
        "--repeat", type=parse_repeat, default=(2, 3), metavar="K/N", help="still fails = K of N fail the same (2/3)"
    )
    parser.add_argument("--rate", type=float, help="the workload's MO rate (default: the base experiment's)")
    parser.add_argument(
        "--chase",
        nargs="+",
        metavar="CHECKER[.KIND]",
        type=chase_item,
        help="only these checkers' (inbound) or findings' (inbound.lost) refusals stop the search and are shrunk "
        "(default: all)",
    )
    parser.add_argument(
        "--experiment", default=BASE_EXPERIMENT, help="whose generator, workload and verdict policy (nightly_mixed)"
    )
    parser.add_argument("--topology", default=str(DEFAULT_TOPOLOGY), metavar="FILE", help="the topology to bring up")
    parser.add_argument("--reuse-cluster", metavar="RUN_ID", help="explore on a running cluster (resilience up)")
    parser.add_argument("--keep-cluster", action="store_true", help="leave the cluster up at the end")
    parser.add_argument("--report-dir", default=str(REPORTS_DIR), metavar="DIR", help="where runs go (reports/)")
    parser.add_argument("--found-dir", default=str(FOUND_DIR), metavar="DIR", help="where the found experiment goes")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=_explore)
