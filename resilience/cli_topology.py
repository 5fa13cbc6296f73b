"""`resilience topology validate | show`: check a topology file and list the nodes it describes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from resilience.exitcodes import ExitCode
from resilience.topology import Topology, TopologyError, is_hosts_file, load_hosts, load_topology, parse_param_options

EXIT_INVALID = ExitCode.BAD_INPUT
# Wide enough that a piped table keeps one node per line instead of wrapping at rich's default 80 columns.
PIPE_WIDTH = 200


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("topology", help="validate a topology file or show its nodes")
    actions = parser.add_subparsers(dest="topology_action", metavar="ACTION")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_INVALID

    parser.set_defaults(func=usage)

    validate = actions.add_parser("validate", help="check a topology file; print every mistake with its line")
    _add_common(validate)
    validate.set_defaults(func=_validate)

    show = actions.add_parser("show", help="a table of the nodes a topology file describes")
    _add_common(show)
    show.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TIER|ROLE|SERVICE,...",
        help="keep only these tiers (app, infra), roles or services; repeatable, comma-separated",
    )
    show.set_defaults(func=_show)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the topology YAML file")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a param of the file (typed like its default); repeatable",
    )


def _load(args: argparse.Namespace) -> Topology | None:
    try:
        if is_hosts_file(args.file):
            if args.param:
                raise TopologyError.single(str(args.file), "a hosts topology has no params; drop --param")
            topology = load_hosts(args.file).as_topology()
        else:
            topology = load_topology(args.file, parse_param_options(args.param))
        if getattr(args, "only", None):
            topology = topology.select(args.only)
    except TopologyError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return None
    return topology


def _validate(args: argparse.Namespace) -> int:
    topology = _load(args)
    if topology is None:
        return EXIT_INVALID
    print(f"{args.file}: valid ({len(topology.services)} services, {len(topology.nodes())} nodes)")
    return 0


def _show(args: argparse.Namespace) -> int:
    topology = _load(args)
    if topology is None:
        return EXIT_INVALID
    table = Table(title=f"{topology.name}: {len(topology.services)} services, {len(topology.nodes())} nodes")
    for column in ("node", "service", "role", "tier", "image", "ports", "depends_on"):
        table.add_column(column, no_wrap=column in ("node", "service", "image"))
    for spec in topology.nodes():
        service = topology.services[spec.service]
        table.add_row(
            spec.name,
            service.name,
            service.role.value,
            service.tier.value,
            service.image,
            " ".join(str(p.number) if p.protocol == "tcp" else str(p) for p in service.ports),
            " ".join(service.depends_on),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=PIPE_WIDTH)
    console.print(table)
    return 0
