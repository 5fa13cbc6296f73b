"""`resilience target check | show NAME`: verify a target (the user's RapidPro) before any fault; print it."""

from __future__ import annotations

import argparse
import sys

from resilience.exitcodes import ExitCode
from resilience.target import Target, TargetError, load_target, mask_secret, mask_url_password
from resilience.target.check import CheckResult, all_passed, run_checks

NAME_HELP = "a target NAME (./targets/NAME.yaml, then $RESILIENCE_TARGETS/NAME.yaml) or a path ending in .yaml"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("target", help="check or show a target: your own staging RapidPro (docs/target.md)")
    actions = parser.add_subparsers(dest="target_action", metavar="ACTION")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return ExitCode.BAD_INPUT

    parser.set_defaults(func=usage)

    check = actions.add_parser(
        "check",
        help="verify, before any fault, each thing the harness needs of the target, and say what to fix",
        description="One line per check (ok / FAIL with what to fix / skip when a check it needs failed). "
        "Exit 0 when every check passes, 1 when one fails, 3 when the target file is wrong.",
    )
    check.add_argument("target", help=NAME_HELP)
    check.add_argument(
        "--round-trip",
        action="store_true",
        help="last, send one MO (keyword info) and wait for its reply at the aggregator: proves that the "
        "deployment reaches aggregator.send_url; writes a contact and two messages in the org",
    )
    check.set_defaults(func=_check)

    show = actions.add_parser("show", help="the target as resolved (secrets masked)")
    show.add_argument("target", help=NAME_HELP)
    show.set_defaults(func=_show)


def _load(name: str) -> Target | None:
    try:
        return load_target(name)
    except TargetError as exc:
        print(exc, file=sys.stderr)
        return None


def _check(args: argparse.Namespace) -> int:
    target = _load(args.target)
    if target is None:
        return ExitCode.BAD_INPUT
    print(f"target {target.name} ({target.path})", flush=True)

    def report(result: CheckResult) -> None:
        print(result.line(), flush=True)

    results = run_checks(target, report=report, round_trip=args.round_trip)
    if all_passed(results):
        print(f"target {target.name}: ready")
        return ExitCode.VALID
    failed = [r.name for r in results if r.outcome.value == "FAIL"]
    print(f"target {target.name}: not ready ({', '.join(failed)} failed; see docs/target.md)")
    return ExitCode.INVALID


def _show(args: argparse.Namespace) -> int:
    target = _load(args.target)
    if target is None:
        return ExitCode.BAD_INPUT

    def source(field: str) -> str:
        origin = target.secret_sources.get(field, "")
        return f"  (from {origin})" if origin else ""

    rows = [
        ("name", target.name),
        ("file", str(target.path)),
        ("hosts", str(target.hosts_file) if target.hosts_file else "none (no faults, no logs)"),
        ("lb_url", target.lb_url),
        ("api_token", mask_secret(target.api_token) + source("api_token")),
        ("channel_uuid", target.channel_uuid),
        ("aggregator.url", target.aggregator_url),
        ("aggregator.send_url", target.aggregator_send_url),
        ("database", mask_url_password(target.database_dsn) + source("database")),
        ("redis", mask_url_password(target.redis_url) + source("redis") if target.redis_url else "none"),
    ]
    if target.description:
        rows.insert(1, ("description", target.description))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("flows")
    for name, uuid in target.flows.items():
        print(f"  {name}: {uuid or '(found by name through the API)'}")
    return ExitCode.VALID
