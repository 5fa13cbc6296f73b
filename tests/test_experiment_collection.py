"""An experiment's policy is checked when pytest collects it: a mistake is a collection error naming the
file and line and what is expected, before any cluster is started."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

GOOD = '''
import pytest
from resilience.verdict import Allowance


@pytest.mark.experiment(
    name="x",
    schedule="at 8 kill courier-1; recover at 20",
    allowances=[Allowance("inbound.duplicated", fault="kill courier-1", max=2, why="documented")],
)
def test_x(experiment):
    experiment.run()
'''


def test_a_good_policy_collects(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_good=GOOD)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes()
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*test_good.py::test_x*"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('"inbound.duplicated"', "*test_bad.py:8: * reports no kind 'duplicate_rows'; its kinds: *"),
        ('"nonsense.lost"', "*test_bad.py:8: * no checker 'nonsense'; the checkers are *"),
    ],
)
def test_an_unknown_kind_or_checker_is_a_located_collection_error(
    pytester: pytest.Pytester, change: str, message: str
) -> None:
    replacement = '"inbound.duplicate_rows"' if "duplicated" in change else change
    pytester.makepyfile(test_bad=GOOD.replace('"inbound.duplicated"', replacement))
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 2
    result.stdout.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str()


def test_the_old_known_mapping_is_a_located_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_old='''
import pytest


@pytest.mark.experiment(name="x", known={"inbound.lost": "why"})
def test_x(experiment):
    experiment.run()
'''
    )
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*test_old.py:4: `known=` is gone*Allowance(*"])
