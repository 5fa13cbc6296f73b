"""`resilience list | run | demo`: the experiment catalogue from the command line.

`resilience run NAME` is `pytest experiments/test_NAME.py` with the same options, so a run from the CLI and
one from pytest are the same thing; `demo` brings everything up from nothing and runs the sample experiment.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resilience.cluster import DEFAULT_TOPOLOGY, ROOT
from resilience.exitcodes import ExitCode
from resilience.experiment import REPORTS_DIR, Experiment

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


def load_experiment(name: str, directory: Path = EXPERIMENTS_DIR) -> Experiment:
    """The Experiment a catalogue module's marker declares (its policy checked), as pytest builds it
    without command-line overrides: for tests and tools that judge histories by the catalogue's rules."""
    import importlib.util

    from resilience.pytest_plugin import experiment_from_marker

    module = name.removeprefix("test_").removesuffix(".py").replace("-", "_")
    path = directory / f"test_{module}.py"
    spec = importlib.util.spec_from_file_location(f"resilience_catalogue_{module}", path)
    if spec is None or spec.loader is None or not path.exists():
        raise ValueError(f"no experiment module {path}")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    for value in vars(loaded).values():
        for mark in getattr(value, "pytestmark", []):
            if mark.name == "experiment":
                return experiment_from_marker(mark, None, module.replace("_", "-"))
    raise ValueError(f"{path}: no @pytest.mark.experiment")


def _find(name: str) -> CatalogueEntry:
    wanted = name.removeprefix("test_").removesuffix(".py").replace("-", "_")
    entries = catalogue()
    for entry in entries:
        if wanted in (entry.module, entry.name.replace("-", "_")):
            return entry
    names = [e.name for e in entries]
    close = difflib.get_close_matches(wanted.replace("_", "-"), names, n=3, cutoff=0.6)
    if close:
        hint = f"did you mean {close[0] if len(close) == 1 else ', '.join(close[:-1]) + ' or ' + close[-1]}?"
    else:
        hint = "`resilience list` shows the catalogue"
    print(f"resilience run: no experiment {name!r}; {hint}", file=sys.stderr)
    raise SystemExit(ExitCode.BAD_INPUT)


def _list(_args: argparse.Namespace) -> int:
    for entry in catalogue():
        print(f"{entry.name:<28} {entry.description}")
    return 0


def _pytest_args(args: argparse.Namespace, paths: list[str]) -> list[str]:
    argv = [
        *paths, "-v", "-p", "no:cacheprovider",
        "--resilience-topology", args.topology, "--resilience-report-dir", args.report_dir,
    ]  # fmt: skip
    for option in ("seed", "duration", "rate"):
        value = getattr(args, option, None)
        if value is not None:
            argv += [f"--resilience-{option}", str(value)]
    if getattr(args, "keep_cluster", False):
        argv.append("--resilience-keep-cluster")
    if getattr(args, "target", None):
        argv += ["--resilience-target", args.target]
    return argv


class _Decisions:
    """A pytest plugin that keeps the session's experiment outcomes, so that the exit code can say what
    they decided rather than only that a test failed."""

    def __init__(self) -> None:
        self.outcomes: list[Any] = []
        self.interrupted = False

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    def pytest_sessionfinish(self, session: Any) -> None:
        from resilience.pytest_plugin import OUTCOMES_KEY

        self.outcomes = list(session.config.stash.get(OUTCOMES_KEY, []))


def exit_code_of(pytest_code: int, outcomes: list[Any], interrupted: bool = False) -> int:
    """pytest's exit code in the CLI's terms (resilience/exitcodes.py): 1 when any experiment's decision is
    invalid or another test failed, 2 when the only failures are undecided experiments, 3 when nothing
    could be judged (usage error, collection error, no test)."""
    from resilience.checks import Validity

    if pytest_code == 0:
        return ExitCode.VALID
    if pytest_code == 1:
        decisions = [o.decision.validity for o in outcomes]
        if Validity.FALSE in decisions:
            return ExitCode.INVALID
        failed_experiments = sum(v is not Validity.TRUE for v in decisions)
        if failed_experiments and all(v is not Validity.FALSE for v in decisions):
            return ExitCode.UNKNOWN
        return ExitCode.INVALID
    if pytest_code == 2:  # ^C / SIGTERM (faults reverted), or errors while collecting
        return ExitCode.INTERRUPTED if interrupted else ExitCode.BAD_INPUT
    return ExitCode.BAD_INPUT  # internal error, usage error, no tests collected


def _run(args: argparse.Namespace) -> int:
    import pytest

    paths = [str(_find(name).path) for name in args.experiments] if args.experiments else [str(EXPERIMENTS_DIR)]
    decisions = _Decisions()
    code = int(pytest.main(_pytest_args(args, paths), plugins=[decisions]))
    return exit_code_of(code, decisions.outcomes, decisions.interrupted)


def _demo(args: argparse.Namespace) -> int:
    import pytest

    from resilience import images

    images.build_all(log=lambda m: print(m, flush=True))
    entry = _find(DEMO_EXPERIMENT)
    print(f"running the sample experiment {entry.name}: {entry.description}", flush=True)
    decisions = _Decisions()
    pytest_code = int(pytest.main(_pytest_args(args, [str(entry.path)]), plugins=[decisions]))
    code = exit_code_of(pytest_code, decisions.outcomes, decisions.interrupted)
    latest = Path(args.report_dir) / "latest"
    report = latest / "report.html"
    if report.exists():
        print(f"\nreport: {report.resolve()}")
    else:
        print(f"\nno report was written under {args.report_dir}", file=sys.stderr)
        code = code or ExitCode.BAD_INPUT
    return code


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topology",
        default=str(DEFAULT_TOPOLOGY),
        metavar="FILE",
        help="the topology to bring up (default: standin-ha, the offline one)",
    )
    parser.add_argument("--seed", type=int, metavar="N", help="seed of every workload and generated fault schedule")
    parser.add_argument("--duration", type=float, metavar="S", help="override the workload duration (s)")
    parser.add_argument("--rate", type=float, metavar="R", help="override the MO rate (per second)")
    parser.add_argument(
        "--report-dir", default=str(REPORTS_DIR), metavar="DIR", help="where run directories go (default: reports/)"
    )
    parser.add_argument(
        "--keep-cluster", action="store_true", help="leave the cluster up at the end (then --reuse-cluster ID)"
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    listing = sub.add_parser("list", help="the experiment catalogue")
    listing.set_defaults(func=_list)

    run = sub.add_parser("run", help="run experiments (same as pytest on their modules); none = the whole catalogue")
    run.add_argument(
        "experiments",
        nargs="*",
        metavar="EXPERIMENT",
        help="an experiment's name as `resilience list` shows it (e.g. kill-courier); repeatable",
    )
    _common(run)
    run.add_argument(
        "--target",
        metavar="NAME",
        help="run on a deployment of yours (./targets/NAME.yaml or a file; docs/target.md) instead of Docker",
    )
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="build, bring the topology up, run the sample experiment, write a report")
    _common(demo)
    demo.set_defaults(func=_demo)
