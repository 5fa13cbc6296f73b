"""ProxyJump in a user's ssh_config becomes the ProxyCommand OpenSSH defines it as (paramiko knows only
ProxyCommand). The live test through a bastion is tests/test_hosts_ssh.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest

from resilience.backends.ssh_jump import PREFIX, JumpConfig, proxy_command


@pytest.mark.parametrize(
    ("jump", "tail"),
    [
        ("bastion", "-W %h:%p bastion"),
        ("ops@bastion:2222", "-W %h:%p -p 2222 ops@bastion"),
        ("[fd00::1]:2200", "-W %h:%p -p 2200 fd00::1"),
        ("outer, inner", "-J outer -W %h:%p inner"),
        ("a,b,c", "-J a,b -W %h:%p c"),
    ],
)
def test_proxy_command_is_openssh_own_definition_of_proxyjump(jump: str, tail: str) -> None:
    assert proxy_command("/home/u/.ssh/config", jump) == f"ssh -F /home/u/.ssh/config {tail}"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config"
    path.write_text(text)
    return path


def test_a_proxyjump_host_gets_a_proxycommand_that_paramiko_expands(tmp_path: Path) -> None:
    path = _config(tmp_path, "Host db-1\n    HostName 10.0.0.5\n    Port 2022\n    ProxyJump bastion\n")
    jump = JumpConfig("db-1", str(path))
    try:
        assert jump.translated and jump.path != str(path)
        assert Path(jump.path or "").parent == tmp_path, "beside the original, so relative Includes resolve"
        entry = paramiko.SSHConfig.from_path(jump.path or "").lookup("db-1")
        assert entry["proxycommand"] == f"ssh -F {path} -W 10.0.0.5:2022 bastion"
        assert entry["hostname"] == "10.0.0.5" and entry["port"] == "2022", "the user's settings still apply"
    finally:
        jump.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]


@pytest.mark.parametrize(
    "text",
    [
        "Host db-1\n    HostName 10.0.0.5\n",  # no jump
        "Host db-1\n    ProxyJump none\n",
        "Host db-1\n    ProxyCommand nc -X 5 -x proxy:1080 %h %p\n    ProxyJump bastion\n",  # theirs wins
        "Host other\n    ProxyJump bastion\n",  # another host's
    ],
)
def test_the_users_own_config_is_used_as_it_is_otherwise(tmp_path: Path, text: str) -> None:
    path = _config(tmp_path, text)
    jump = JumpConfig("db-1", str(path))
    assert not jump.translated and jump.path == str(path)


def test_no_config_at_all_is_no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert JumpConfig("db-1", None).path is None


def test_the_default_config_is_translated_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host db-1\n    ProxyJump bastion\n")
    jump = JumpConfig("db-1", None)
    try:
        assert jump.translated
        assert paramiko.SSHConfig.from_path(jump.path or "").lookup("db-1")["proxycommand"].endswith("bastion")
    finally:
        jump.close()


def test_a_copy_left_by_a_killed_harness_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    """close() never runs in a SIGKILLed harness: the next harness on the host removes its copy, and only
    copies whose writer is gone (this host's, by pid), never another live harness's or another host's."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    abandoned = tmp_path / f"{PREFIX}{host}-{dead.pid}-abc.config"
    live = tmp_path / f"{PREFIX}{host}-{os.getpid()}-def.config"
    elsewhere = tmp_path / f"{PREFIX}other-host-{dead.pid}-ghi.config"
    # A host whose name is this one's plus a dash and digits: its copy must not read as this host's.
    dashed = tmp_path / f"{PREFIX}{host}-{dead.pid}-{os.getpid()}-jkl.config"
    for path in (abandoned, live, elsewhere, dashed):
        path.write_text("Host x\n")
    path = _config(tmp_path, "Host db-1\n    ProxyJump bastion\n")

    jump = JumpConfig("db-1", str(path))
    try:
        assert not abandoned.exists()
        assert live.exists() and elsewhere.exists() and dashed.exists()
        assert Path(jump.path or "").name.startswith(f"{PREFIX}{host}-{os.getpid()}-")
    finally:
        jump.close()
