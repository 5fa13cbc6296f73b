"""The CLI never shows a traceback for a problem of the host: one line on stderr, exit 3 (ExitCode.BAD_INPUT).

Most tests run without Docker: DOCKER_HOST points at a closed port on this machine.
"""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
from pathlib import Path

import docker.errors
import pytest

from resilience import cli, cli_cluster, images
from resilience.backends import engine
from resilience.cli import build_parser, main
from resilience.exitcodes import ExitCode
from resilience.history import History

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = ROOT / "harness" / "topologies" / "standin-ha.yaml"
NOWHERE = "tcp://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NOWHERE)
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _console(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resilience.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


DOCKER_COMMANDS = [
    ["status"],
    ["status", "--run", "0101000000abcd"],
    ["logs", "courier-1"],
    ["down"],
    ["down", "--run", "0101000000abcd"],
    ["cleanup"],
    ["cleanup", "--all"],
    ["cleanup", "--orphans"],
    ["smoke"],
    ["workload", "--duration", "1"],
    ["up", str(TOPOLOGY), "--no-build"],
    ["images", "build"],
    ["images", "derive", "resilience-upgrade:test"],
]


@pytest.mark.parametrize("argv", DOCKER_COMMANDS, ids=" ".join)
def test_no_engine_is_one_line_and_exit_3(argv: list[str], no_engine: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == ExitCode.BAD_INPUT
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"resilience {argv[0]}: cannot reach the Docker engine at {NOWHERE}")
    assert "DOCKER_HOST" in line and "systemctl start docker" in line


def test_no_engine_through_the_console_script() -> None:
    result = _console("status", env={"DOCKER_HOST": NOWHERE})
    assert result.returncode == ExitCode.BAD_INPUT
    assert "connection refused" in _one_line(result.stderr)


def test_missing_nsenter_is_one_line_before_docker_is_asked(
    monkeypatch: pytest.MonkeyPatch, no_engine: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH: no nsenter, no iptables
    assert main(["cleanup", "--faults", "--run", "0101000000abcd"]) == ExitCode.BAD_INPUT
    line = _one_line(capsys.readouterr().err)
    assert "`nsenter` is not installed" in line and "apt-get install util-linux" in line


def test_missing_iptables_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nsenter = tmp_path / "nsenter"
    nsenter.write_text("#!/bin/sh\n")
    nsenter.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(engine.EnvironmentProblem, match=r"`iptables` is not installed.*apt-get install iptables"):
        engine.require_network_tools()


def test_a_full_disk_in_a_build_step_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    failing = ["sh", "-c", "echo 'tar: ./usr/lib/x: Cannot write: No space left on device' >&2; exit 2"]
    with pytest.raises(
        engine.EnvironmentProblem, match=r"no space left on device during image build step 'debootstrap'"
    ):
        images._run("debootstrap", failing, log=lambda _m: None)


def test_a_full_disk_during_images_build_exits_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(**_kwargs: object) -> list[images.BuildResult]:
        raise OSError(errno.ENOSPC, "No space left on device", "/var/tmp/resilience-images/rootfs/x")

    monkeypatch.setattr(images, "build_all", full)
    assert main(["images", "build"]) == ExitCode.BAD_INPUT
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("resilience images: no space left on device during a write writing /var/tmp/")
    assert "docker system df" in line


def test_a_full_disk_in_docker_build_log_is_recognised() -> None:
    exc = docker.errors.BuildError(
        "failed", [{"stream": "Step 2/5 : COPY standin"}, {"error": "write /x: no space left on device"}]
    )
    assert "no space left on device" in (engine.explain(exc) or "")


def test_a_port_already_taken_at_up_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = docker.errors.APIError(
        "500 Server Error",
        explanation="driver failed programming external connectivity on endpoint rs-x-lb-1: "
        "Bind for 127.0.0.1:8404 failed: port is already allocated",
    )

    class Backend:
        def up(self, *_args: object, **_kwargs: object) -> None:
            raise taken

    monkeypatch.setattr(cli_cluster, "DockerBackend", Backend)
    assert main(["up", str(TOPOLOGY), "--no-build"]) == ExitCode.BAD_INPUT
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("resilience up: a port is already taken:") and "127.0.0.1:8404" in line
    assert "ss -ltnp" in line


def test_other_errors_still_raise() -> None:
    assert engine.explain(ValueError("a bug")) is None
    assert engine.explain(docker.errors.APIError("409 Conflict", explanation="name in use")) is None


def test_list_into_a_closed_pipe_has_no_broken_pipe_error() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "resilience.cli", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away at once, as `| head -0` would
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == cli.PIPE_CLOSED
    assert "BrokenPipeError" not in err and "Traceback" not in err and "Exception ignored" not in err


def test_list_into_head_through_a_shell() -> None:
    result = subprocess.run(
        f"{sys.executable} -m resilience.cli list | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1
    assert result.stderr == ""


def test_a_torn_history_is_one_clean_warning_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    history = History(path, run_id="run-1", seed=1)
    mo = history.invoke("contact-1", "mo", {"urn": "tel:+250788000001", "text": "hi", "expect": []})
    history.complete(mo, "ok", {"msg_uuid": "u-1", "status": 200})
    history.close()
    text = path.read_text()
    path.write_text(text[: len(text) - 10])  # the recorder died mid-write
    result = _console("check", str(tmp_path))
    warning = [line for line in result.stderr.splitlines() if "incomplete" in line]
    assert warning == [
        f"resilience: warning: {path}:3: last line is incomplete (the recorder stopped mid-write); ignored"
    ]
    assert "warnings.warn" not in result.stderr and "TruncatedHistoryWarning" not in result.stderr
    assert "Traceback" not in result.stderr


# -- the CLI reads well --------------------------------------------------------------------------------------


def test_help_starts_with_what_the_tool_does_and_ends_with_exit_codes() -> None:
    text = build_parser().format_help()
    description = text.split("\n\n", 2)[1]
    assert description.startswith("Prove that a highly available RapidPro keeps every message")
    assert "exit codes:" in text and "3  bad input or environment" in text


def _actions(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.extend(_actions(child, f"{path} {name}"))
        elif not isinstance(action, argparse._HelpAction):
            found.append((path, action))
    return found


def test_every_argument_of_every_command_has_a_help_line() -> None:
    actions = _actions(build_parser(), "resilience")
    assert len(actions) > 40
    missing = [f"{path} {action.option_strings or action.dest}" for path, action in actions if not action.help]
    assert missing == []


@pytest.mark.parametrize("group", ["images", "topology"])
def test_a_group_without_its_action_prints_its_own_help(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([group]) == ExitCode.BAD_INPUT  # a usage error is bad input: 2 means an unknown verdict
    err = capsys.readouterr().err
    assert err.startswith(f"usage: resilience {group} [-h] ACTION ...")
    assert "Traceback" not in err


def test_a_misspelled_experiment_gets_a_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["run", "kil-web"])
    assert stopped.value.code == ExitCode.BAD_INPUT
    assert _one_line(capsys.readouterr().err) == "resilience run: no experiment 'kil-web'; did you mean kill-web?"


def test_an_unknown_experiment_points_at_the_catalogue() -> None:
    result = _console("run", "zzzz")
    assert result.returncode == ExitCode.BAD_INPUT
    assert _one_line(result.stderr) == "resilience run: no experiment 'zzzz'; `resilience list` shows the catalogue"


def test_up_with_a_bad_topology_is_bad_input_not_an_unknown_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nservices:\n  courier:\n    role: courrier\n")
    assert main(["up", str(bad), "--no-build"]) == ExitCode.BAD_INPUT
    assert f"{bad}:5:" in capsys.readouterr().err


def test_images_that_will_not_build_are_bad_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(**_kwargs: object) -> list[images.BuildResult]:
        raise images.ImageBuildError("debootstrap is not installed")

    monkeypatch.setattr(images, "build_all", failing)
    assert main(["images", "build"]) == ExitCode.BAD_INPUT
    assert "debootstrap is not installed" in capsys.readouterr().err
