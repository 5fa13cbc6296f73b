"""The pytest plugin is a good neighbour in every session of the environment: prefixed options (the old
spellings still work, with a deprecation warning), a bad --resilience-topology is one located usage error
(exit 4), the SIGTERM handler only where experiments run, and fixtures a conftest.py may override."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

NO_CACHE = ("-p", "no:cacheprovider")


def test_every_option_is_prefixed_and_the_old_spellings_are_aliases(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for name in ("topology", "seed", "duration", "rate", "keep-cluster", "reuse-cluster", "report-dir", "soak"):
        result.stdout.fnmatch_lines([f"*--resilience-{name}*--{name}*"])
    for name in ("lenient-unknown", "strict-unknown"):
        result.stdout.fnmatch_lines([f"*--resilience-{name}, --{name}*"])


def test_an_old_spelling_still_works_and_says_it_is_deprecated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_options(request):
            assert request.config.getoption("resilience_seed") == 5
            assert request.config.getoption("resilience_rate") == 2.5
        """
    )
    result = pytester.runpytest("--seed", "5", "--resilience-rate=2.5", *NO_CACHE)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*--seed: deprecated spelling, use --resilience-seed*"])
    assert "--rate" not in result.stdout.str().split("deprecated spelling")[0].rsplit("\n", 1)[-1]


@pytest.mark.parametrize("spelling", ["--resilience-topology", "--topology"])
def test_a_bad_topology_is_one_located_usage_error(pytester: pytest.Pytester, spelling: str) -> None:
    pytester.makefile(".yaml", bad="services:\n  web:\n    role: wbe\n    image: resilience-node\n")
    pytester.makepyfile(
        """
        def test_one(): pass
        def test_two(): pass
        """
    )
    result = pytester.runpytest_subprocess(spelling, "bad.yaml", *NO_CACHE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if "bad.yaml" in line]
    assert errors and errors[0].startswith("ERROR: --resilience-topology: "), result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert "passed" not in result.stdout.str()  # stopped before any test ran


SIGTERM_STATE = """
import signal
import pytest


def test_handler():
    handler = signal.getsignal(signal.SIGTERM)
    print("SIGTERM handler:", "resilience" if handler not in (signal.SIG_DFL, None) else "default")
"""


def test_the_sigterm_handler_is_left_alone_where_no_experiment_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=SIGTERM_STATE)
    result = pytester.runpytest_subprocess("-s", *NO_CACHE)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SIGTERM handler: default*"])


def test_the_sigterm_handler_is_installed_where_an_experiment_is_collected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain=SIGTERM_STATE,
        test_experiment="""
        import pytest

        @pytest.mark.experiment(name="x", schedule="at 8 kill courier-1; recover at 20")
        def test_x():
            pass
        """,
    )
    result = pytester.runpytest_subprocess("-s", *NO_CACHE)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*SIGTERM handler: resilience*"])


def test_the_topology_and_switches_fixtures_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from resilience.cluster import DEFAULT_TOPOLOGY
        from resilience.topology import load_topology

        @pytest.fixture(scope="session")
        def resilience_switches():
            return {"aggregator": {"error_rate": 0.1}}

        @pytest.fixture(scope="session")
        def small_topology():
            return load_topology(DEFAULT_TOPOLOGY).select(["infra"])
        """
    )
    pytester.makepyfile(
        """
        def test_switches_reach_the_default_topology(resilience_topology):
            assert resilience_topology.services["aggregator"].switches["error_rate"] == 0.1

        def test_scripts_default_to_the_catalogue(resilience_workload_scripts):
            assert resilience_workload_scripts
        """,
        test_override="""
        import pytest

        @pytest.fixture(scope="session")
        def resilience_topology(small_topology):
            return small_topology

        def test_a_module_may_bring_its_own_topology(resilience_topology):
            assert "aggregator" not in resilience_topology.services
        """,
    )
    result = pytester.runpytest(*NO_CACHE)
    result.assert_outcomes(passed=3)


def test_a_bad_switch_override_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def resilience_switches():
            return {"agregator": {"error_rate": 0.1}}
        """
    )
    pytester.makepyfile("def test_t(resilience_topology): pass\ndef test_u(resilience_topology): pass")
    result = pytester.runpytest(*NO_CACHE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stdout.str().count("resilience_switches: ") == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*resilience_switches: *agregator*"])
