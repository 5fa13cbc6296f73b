"""The shell command lines the hosts backend runs on a node's host, per way of control (systemd, supervisor,
a container on that host). Pure functions of the node and the operation, so that `resilience plan` can
print exactly what a run would do, and tests can read them without a host.

Every line is run through `sh -c` on the host, as the SSH user or under sudo (ssh.py).
"""

from __future__ import annotations

import base64
import posixpath
import shlex
from collections.abc import Sequence

from resilience.backends.base import BackendError
from resilience.topology.hosts import ControlKind, HostNode, LogKind

q = shlex.quote
# Exit status of our scripts for "the node has no process": the caller turns it into a clear BackendError.
NOT_RUNNING = 3
# A log read with neither `tail` nor `since` is bounded all the same: a journal can hold years.
MAX_LOG_LINES = 20000
# What one `sh -c` argument may hold (Linux's MAX_ARG_STRLEN is 128 KiB); base64 chunks are a multiple of 4.
_CHUNK = 60000

# Prints pid=, proc_state= (R S D T ...), proc_start= (clock ticks since boot) and exe= of process $1, if any.
# /proc/PID/stat's second field is the command in parentheses, which may hold spaces: cut after the last ")".
_PROC = (
    'proc() { echo "pid=${1:-0}"; '
    'if [ "${1:-0}" -gt 0 ] 2>/dev/null && [ -r "/proc/$1/stat" ]; then '
    'rest=$(sed "s/^.*) //" "/proc/$1/stat"); echo "proc_state=${rest%% *}"; '
    'echo "proc_start=$(echo "$rest" | cut -d" " -f20)"; '
    'echo "exe=$(readlink "/proc/$1/exe")@$(stat -L -c %Y "/proc/$1/exe" 2>/dev/null)"; fi; }; '
)


def main_pid(node: HostNode) -> str:
    """A command that prints the node's main PID (0 or nothing when it has none)."""
    name = q(node.control.name)
    if node.control.kind is ControlKind.SYSTEMD:
        return f"systemctl show -p MainPID --value {name}"
    if node.control.kind is ControlKind.SUPERVISOR:
        return f"supervisorctl pid {name}"
    return f"docker inspect -f '{{{{.State.Pid}}}}' {name}"


def _with_pid(node: HostNode, then: str) -> str:
    return (
        f'pid=$({main_pid(node)} 2>/dev/null); [ "${{pid:-0}}" -gt 0 ] 2>/dev/null '
        f'|| {{ echo "{node.control} has no running process" >&2; exit {NOT_RUNNING}; }}; {then}'
    )


def facts(node: HostNode) -> str:
    """KEY=VALUE lines: the supervisor's view of the node (sd_*, sv_status, ct) and its main process's."""
    name = q(node.control.name)
    if node.control.kind is ControlKind.SYSTEMD:
        return (
            _PROC + f"systemctl show -p LoadState -p ActiveState -p SubState -p NRestarts -p Restart {name} "
            f"| sed 's/^/sd_/'; proc \"$(systemctl show -p MainPID --value {name})\""
        )
    if node.control.kind is ControlKind.SUPERVISOR:
        return (
            # One supervisorctl (a Python start-up each): its status line holds the pid while it runs.
            _PROC + f's=$(supervisorctl status {name} 2>&1 | head -n 1); echo "sv_status=$s"; '
            'proc "$(echo "$s" | sed -n "s/.* pid \\([0-9]*\\),.*/\\1/p")"'
        )
    template = (
        "ct={{.State.Status}} {{.State.Pid}} {{.State.StartedAt}} {{.RestartCount}} {{.Image}} "
        "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
    )
    return f"docker inspect -f {q(template)} {name} 2>/dev/null || echo ct=missing"


def signal(node: HostNode, sig: str) -> str:
    """The signal to the main process, as `kill` would send it; its supervisor then does what it does."""
    if node.control.kind is ControlKind.CONTAINER:
        return f"docker kill -s {q(sig)} {q(node.control.name)}"
    return _with_pid(node, f'kill -s {q(sig.removeprefix("SIG"))} "$pid"')


def crash(node: HostNode) -> str:
    """SIGKILL the main process behind its supervisor's back: its restart policy acts as after a crash. A
    supervisor program's whole process group dies (supervisord makes each program its own group), as a
    container's processes do with its init: a wrapper's children (a postmaster under a start script) must
    not live on holding the port; systemd clears a unit's cgroup itself when its main process dies."""
    if node.control.kind is ControlKind.SUPERVISOR:
        return _with_pid(node, 'kill -s KILL -- "-$pid"')
    return _with_pid(node, 'kill -KILL "$pid"')  # a container's init, as the Docker backend's crash does


def kill(node: HostNode) -> str:
    """SIGKILL the main process as its operator: then tell the supervisor to leave it down (a restart it
    may have begun meanwhile is stopped), as Docker does with a container killed through its API."""
    name = q(node.control.name)
    if node.control.kind is ControlKind.SYSTEMD:
        return _with_pid(node, f'kill -KILL "$pid"; systemctl stop {name}')
    if node.control.kind is ControlKind.SUPERVISOR:
        # `stop` answers "ERROR (not running)" when supervisor saw the death and gave up: down, as wanted.
        return _with_pid(node, f'kill -s KILL -- "-$pid"; supervisorctl stop {name} >/dev/null 2>&1; true')
    return f"docker kill {name}"


def stop(node: HostNode, timeout: int) -> str:
    """systemd and supervisor stop with the unit's own stop timeout (TimeoutStopSec, stopwaitsecs)."""
    name = q(node.control.name)
    if node.control.kind is ControlKind.SYSTEMD:
        return f"systemctl stop {name}"
    if node.control.kind is ControlKind.SUPERVISOR:
        return f"supervisorctl stop {name} | grep -v 'ERROR (not running)'; true"
    return f"docker stop -t {int(timeout)} {name}"


def start(node: HostNode) -> str:
    name = q(node.control.name)
    if node.control.kind is ControlKind.SYSTEMD:
        return f"systemctl start {name}"
    if node.control.kind is ControlKind.SUPERVISOR:
        # Non-zero for "already started", which is what start wants; any other ERROR is a failure.
        return (
            f'out=$(supervisorctl start {name} 2>&1); echo "$out"; '
            "! echo \"$out\" | grep ERROR | grep -qv 'already started'"
        )
    return f"docker start {name}"


def restart(node: HostNode, timeout: int) -> str:
    name = q(node.control.name)
    if node.control.kind is ControlKind.SYSTEMD:
        return f"systemctl restart {name}"
    if node.control.kind is ControlKind.SUPERVISOR:
        return f"supervisorctl restart {name}"
    return f"docker restart -t {int(timeout)} {name}"


def pause(node: HostNode, resume: bool = False) -> str:
    """SIGSTOP (SIGCONT) every process of the node: systemd signals the unit's whole cgroup; a supervisor
    program is its own process group (supervisord calls setpgrp for each child); a container is frozen."""
    sig = "SIGCONT" if resume else "SIGSTOP"
    name = q(node.control.name)
    if node.control.kind is ControlKind.SYSTEMD:
        return f"systemctl kill --signal={sig} {name}"
    if node.control.kind is ControlKind.SUPERVISOR:
        return _with_pid(node, f'kill -s {sig.removeprefix("SIG")} -- "-$pid"')
    if resume:
        return f"[ \"$(docker inspect -f '{{{{.State.Paused}}}}' {name})\" != true ] || docker unpause {name}"
    return f"docker pause {name}"


def exec_(node: HostNode, cmd: Sequence[str], user: str | None) -> str:
    """The argv on the node: on the host for systemd and supervisor nodes (as `user` through runuser, which
    needs root), inside the container for a container node."""
    argv = shlex.join(cmd)
    if node.control.kind is ControlKind.CONTAINER:
        as_user = f"-u {q(user)} " if user else ""
        return f"docker exec {as_user}{q(node.control.name)} {argv}"
    return f"runuser -u {q(user)} -- {argv}" if user else argv


def put_file(node: HostNode, path: str, content: bytes, mode: int) -> list[str]:
    """Commands that write the file atomically (a temporary beside it, then a rename), in chunks that fit
    one command line each."""
    if not path.startswith("/"):
        raise BackendError(f"{node.name}: put_file needs an absolute path; got {path!r}")
    encoded = base64.b64encode(content).decode()
    tmp = f"{path}.resilience-tmp"
    steps = [f"mkdir -p {q(posixpath.dirname(path))} && : > {q(tmp)}"]
    steps += [f"printf %s {q(encoded[i : i + _CHUNK])} | base64 -d >> {q(tmp)}" for i in range(0, len(encoded), _CHUNK)]
    steps.append(f"chmod {mode:o} {q(tmp)} && mv -f {q(tmp)} {q(path)}")
    if node.control.kind is ControlKind.CONTAINER:
        return [f"docker exec {q(node.control.name)} sh -c {q(step)}" for step in steps]
    return steps


def logs(node: HostNode, tail: int | None, since: float | None) -> str:
    """The node's log lines (a tail of them, or those since `since`); hosts_logs.py reads the output."""
    source = node.logs
    count = tail if tail is not None else MAX_LOG_LINES
    if source.kind is LogKind.JOURNALD:
        window = f" --since @{int(since)}" if since is not None else ""
        return f"journalctl -u {q(source.name)} --no-pager -o json --output-fields=MESSAGE -n {count}{window}"
    if source.kind is LogKind.FILE:
        return f"tail -n {count} {q(source.name)}"
    if source.kind is LogKind.SUPERVISOR:
        # supervisorctl tails bytes of the program's stdout log; declare `logs: {file: ...}` for stderr.
        return f"supervisorctl tail -{min(count, MAX_LOG_LINES) * 200} {q(source.name)}"
    window = f" --since {int(since)}" if since is not None else ""
    tail_option = f" --tail {tail}" if tail is not None else ""
    return f"docker logs -t{tail_option}{window} {q(source.name)} 2>&1"


def iptables(node: HostNode, args: Sequence[str]) -> str:
    """iptables in the node's network namespace: the host's own for systemd and supervisor nodes, the
    container's (entered from the host) for a container node."""
    command = f"iptables -w 5 {shlex.join(args)}"
    if node.control.kind is ControlKind.CONTAINER:
        return _with_pid(node, f'nsenter -t "$pid" -n {command}')
    return command


def in_netns(node: HostNode, command: str) -> str:
    """A command line in the node's network namespace: its host's own, or its container's (as iptables)."""
    if node.control.kind is ControlKind.CONTAINER:
        return _with_pid(node, f'nsenter -t "$pid" -n sh -c {q(command)}')
    return command


def declared(argv: Sequence[str]) -> str:
    """A command the hosts file declares (placeholders already filled in), as one shell line."""
    return shlex.join(argv)


def haproxy_runtime(socket_path: str, line: str) -> str:
    """One line to HAProxy's runtime API on its UNIX socket (socat, else netcat's -U); the answer on stdout."""
    payload = f"printf '%s\\n' {q(line)}"
    return (
        f"if command -v socat >/dev/null 2>&1; then {payload} | socat stdio {q('UNIX-CONNECT:' + socket_path)}; "
        f"elif command -v nc >/dev/null 2>&1; then {payload} | nc -U {q(socket_path)}; "
        'else echo "neither socat nor nc is installed: the HAProxy socket cannot be reached" >&2; exit 127; fi'
    )


# Exit statuses of netem_add: the kernel refused netem itself (no sch_netem), or tc is not installed.
NETEM_UNAVAILABLE = 4
NETEM_UNAVAILABLE_MARK = "netem unavailable"
TC_MISSING = 127


def route_device(peer: str) -> str:
    """Prints the network device a host sends to `peer` (a name or an address) through."""
    return (
        f"a=$(getent ahostsv4 {q(peer)} 2>/dev/null | awk 'NR == 1 {{print $1}}'); "
        f'ip -o route get "${{a:-{peer}}}" | sed -n "s/.* dev \\([^ ]*\\).*/\\1/p"'
    )


def netem_add(device: str, handle: int, port: int, delay_ms: int, jitter_ms: int, rate_kbit: int) -> str:
    """Delay (or throttle) what the host sends from TCP `port` on `device`, and nothing else: a prio root
    qdisc of our `handle` whose fourth band (which no priority maps to) holds netem, and a filter that sends
    the port's packets there. `add`, never `replace`: a root qdisc someone configured is left alone (tc
    refuses).

    First a probe: a netem that delays nothing, added to loopback and removed at once, tells a kernel
    without sch_netem (exit NETEM_UNAVAILABLE) from any other failure. Should a later step fail, the prio
    qdisc just added is removed again, so a failed attempt leaves the device as it was."""
    h = f"{handle:x}"
    shape = []
    if delay_ms:
        shape.append(f"delay {int(delay_ms)}ms" + (f" {int(jitter_ms)}ms" if jitter_ms else ""))
    if rate_kbit:
        shape.append(f"rate {int(rate_kbit)}kbit")
    dev = q(device)
    undo = f"tc qdisc del dev {dev} root handle {h}: 2>/dev/null"
    return (
        f'command -v tc >/dev/null 2>&1 || {{ echo "tc (iproute2) is not installed" >&2; exit {TC_MISSING}; }}; '
        f"if out=$(tc qdisc add dev lo root handle {h}: netem delay 0ms 2>&1); then "
        f"tc qdisc del dev lo root handle {h}:; else case $out in "
        f'*"kind is unknown"*|*"No such file or directory"*) '
        f'echo "{NETEM_UNAVAILABLE_MARK}: $out" >&2; exit {NETEM_UNAVAILABLE};; esac; fi; '
        f"tc qdisc add dev {dev} root handle {h}: prio bands 4 || exit 1; "
        f"tc qdisc add dev {dev} parent {h}:4 netem {' '.join(shape) or 'delay 0ms'} || {{ {undo}; exit 1; }}; "
        f"tc filter add dev {dev} parent {h}: protocol ip prio 1 u32 match ip sport {int(port)} 0xffff "
        f"flowid {h}:4 || {{ {undo}; exit 1; }}"
    )


def netem_remove(device: str, handle: int) -> str:
    """Remove the root qdisc of our `handle` (with its netem and filter), only if it is still the root; prints
    `removed` or `absent`."""
    h = f"{handle:x}"
    dev = q(device)
    return (
        f'if tc qdisc show dev {dev} root 2>/dev/null | grep -q "^qdisc prio {h}: root"; then '
        f"tc qdisc del dev {dev} root handle {h}: && echo removed; else echo absent; fi"
    )
