"""`resilience list | run | demo`: the experiment catalogue from the command line.

`resilience run NAME` is `pytest experiments/test_NAME.py` with the same options, so a run from the CLI and
one from pytest are the same thing; `demo` brings everything up from nothing and runs the sample experiment.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

from resilience.cluster import DEFAULT_TOPOLOGY, ROOT
from resilience.experiment import REPORTS_DIR

EXPERIMENTS_DIR = ROOT / "experiments"
DEMO_EXPERIMENT = "kill_courier"


@dataclass(frozen=True)
class CatalogueEntry:
    module: str  # e.g. kill_courier
    name: str  # the experiment's name (from its marker)
    description: str
    path: Path


def _marker_kwargs(tree: ast.Module) -> dict[str, str]:
    """The literal name/description of the first @pytest.mark.experiment(...) in a module, without importing it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "experiment":
            found: dict[str, str] = {}
            for keyword in node.keywords:
                if keyword.arg in ("name", "description") and isinstance(keyword.value, ast.Constant):
                    found[keyword.arg] = str(keyword.value.value)
            return found
    return {}


def catalogue(directory: Path = EXPERIMENTS_DIR) -> list[CatalogueEntry]:
    entries = []
    for path in sorted(directory.glob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        kwargs = _marker_kwargs(tree)
        module = path.stem.removeprefix("test_")
        doc = (ast.get_docstring(tree) or "").strip().splitlines()
        entries.append(
            CatalogueEntry(
                module=module,
                name=kwargs.get("name", module.replace("_", "-")),
                description=kwargs.get("description", doc[0] if doc else ""),
                path=path,
            )
        )
    return entries


def _find(name: str) -> CatalogueEntry:
    wanted = name.removeprefix("test_").removesuffix(".py").replace("-", "_")
    for entry in catalogue():
        if wanted in (entry.module, entry.name.replace("-", "_")):
            return entry
    known = ", ".join(e.name for e in catalogue())
    raise SystemExit(f"resilience run: no experiment {name!r}; the catalogue has: {known}")


def _list(_args: argparse.Namespace) -> int:
    for entry in catalogue():
        print(f"{entry.name:<28} {entry.description}")
    return 0


def _pytest_args(args: argparse.Namespace, paths: list[str]) -> list[str]:
    argv = [*paths, "-v", "-p", "no:cacheprovider", "--topology", args.topology, "--report-dir", args.report_dir]
    for option in ("seed", "duration", "rate"):
        value = getattr(args, option, None)
        if value is not None:
            argv += [f"--{option}", str(value)]
    if getattr(args, "keep_cluster", False):
        argv.append("--keep-cluster")
    return argv


def _run(args: argparse.Namespace) -> int:
    import pytest

    paths = [str(_find(name).path) for name in args.experiments] if args.experiments else [str(EXPERIMENTS_DIR)]
    return int(pytest.main(_pytest_args(args, paths)))


def _demo(args: argparse.Namespace) -> int:
    import pytest

    from resilience import images

    images.build_all(log=lambda m: print(m, flush=True))
    entry = _find(DEMO_EXPERIMENT)
    print(f"running the sample experiment {entry.name}: {entry.description}", flush=True)
    code = int(pytest.main(_pytest_args(args, [str(entry.path)])))
    latest = Path(args.report_dir) / "latest"
    report = latest / "report.html"
    if report.exists():
        print(f"\nreport: {report.resolve()}")
    else:
        print(f"\nno report was written under {args.report_dir}", file=sys.stderr)
        code = code or 1
    return code


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topology", default=str(DEFAULT_TOPOLOGY))
    parser.add_argument("--seed", type=int)
    parser.add_argument("--duration", type=float, help="override the workload duration (s)")
    parser.add_argument("--rate", type=float, help="override the MO rate (per second)")
    parser.add_argument("--report-dir", default=str(REPORTS_DIR))
    parser.add_argument("--keep-cluster", action="store_true")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    listing = sub.add_parser("list", help="the experiment catalogue")
    listing.set_defaults(func=_list)

    run = sub.add_parser("run", help="run experiments (same as pytest on their modules); none = the whole catalogue")
    run.add_argument("experiments", nargs="*", metavar="EXPERIMENT")
    _common(run)
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="build, bring the topology up, run the sample experiment, write a report")
    _common(demo)
    demo.set_defaults(func=_demo)
