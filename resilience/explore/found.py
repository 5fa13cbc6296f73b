"""A found failure as a ready experiment module: `experiments/found/test_<name>.py`.

The module declares the minimal schedule, its seed and workload, and keeps the explored experiment's
verdict policy by loading it at collection (`load_experiment`), so it judges exactly as the exploration
did. It fails while the bug is there, with the finding named in its expectations; mark the test
`@pytest.mark.xfail(strict=True)` to keep a pipeline green until the fix lands, then drop the mark.
"""

from __future__ import annotations

import re
from pathlib import Path

from resilience.explore.shrink import Candidate

_TEMPLATE = '''"""Found by `resilience explore --seed {seed}` from `{base}`: {target}.

Shrunk from {original_faults} faults to {faults} in {runs} runs; it reproduced in {k} of {n} repetitions.
It fails while the bug is there; see docs/explore.md for turning it into a regression test.
"""

import pytest

from resilience.cli_experiments import load_experiment
from resilience.verdict.by_kind import allowances_for

BASE = load_experiment({base!r})  # the explored experiment: its allowances, bounds and unknowns judge this one
EXTRA_KINDS = {extra_kinds!r}  # kinds explored beyond the base's, judged by their documented weak spots

SCHEDULE = """\\
{schedule}"""


@pytest.mark.experiment(
    name={name!r},
    description={description!r},
    expectations={expectations!r},
    schedule=SCHEDULE,
    rate={rate!r},
    duration={duration!r},
    seed={workload_seed!r},
    reply_timeout={reply_timeout!r},
    resend_attempts={resend_attempts!r},
    quiesce_timeout=BASE.quiesce_timeout,
    allowances=[*BASE.allowances, *allowances_for(EXTRA_KINDS)],
    bounds=BASE.bounds,
    unknown=BASE.unknown,
    checker_options=BASE.checker_options,
    aggregator=BASE.aggregator,
)
def test_{function}(experiment):
    experiment.run()
'''


def found_name(base: str, target: str, seed: int) -> str:
    """`found-<checker>-<kind>-<seed>`, safe as a file and function name once dashes become underscores."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{target}-{seed}".lower()).strip("-")
    return f"found-{slug}"


def found_module(
    candidate: Candidate,
    *,
    base: str,
    target: str,
    seed: int,
    original_faults: int,
    runs: int,
    k: int,
    n: int,
    extra_kinds: tuple[str, ...] = (),
) -> tuple[str, str]:
    """The module's file name and text."""
    name = found_name(base, target, seed)
    function = name.replace("-", "_")
    workload = candidate.workload
    text = _TEMPLATE.format(
        seed=seed,
        base=base,
        target=target,
        original_faults=original_faults,
        faults=len(candidate.episodes),
        runs=runs,
        k=k,
        n=n,
        schedule=candidate.schedule().to_text(),
        name=name,
        description=f"minimal reproduction of {target}, found by exploring {base}",
        expectations=(
            f"Reproduces {target}: this schedule makes the run fail with that finding (the explored experiment's "
            f"rule refuses it). It passes once the bug is fixed."
        ),
        rate=workload.rate,
        duration=workload.duration,
        workload_seed=workload.seed,
        reply_timeout=workload.reply_timeout,
        resend_attempts=workload.resend_attempts,
        function=function,
        extra_kinds=extra_kinds,
    )
    return f"test_{function}.py", text


def write_found_module(directory: Path, file_name: str, text: str) -> Path:
    """Write it without overwriting another: a second find of the same name gets a numbered suffix."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    number = 1
    while path.exists() and path.read_text() != text:
        number += 1
        path = directory / file_name.replace(".py", f"_{number}.py")
    path.write_text(text)
    return path
