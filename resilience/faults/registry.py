"""The record of active faults, kept on disk so that a killed harness can still be cleaned up after.

Each fault is registered (its `describe()` written) BEFORE it is applied, updated once its inject has
learned more (e.g. which node was the primary), and released only after a successful recover. The
file, one per run (`<state dir>/<run id>.json`; the state dir is $RESILIENCE_STATE_DIR or
~/.cache/resilience/faults), is replaced atomically under a lock, so it is never half-written and
several processes may share it.

`revert_leftovers(backend, run_id)` (for `resilience cleanup`) re-creates every recorded fault from its
description and recovers it, then scans the run for anything fault-made that no record mentions.

A run that is not a Docker run of ours (the hosts backend, on a deployment we did not create) cannot be
found again by its id: its file also keeps the run's origin (`remember_origin`: which target or hosts
file), from which `resilience cleanup --target NAME` rebuilds the run (`revert_recorded`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resilience.backends import labels
from resilience.backends.base import BackendError
from resilience.faults.base import Fault, FaultError, FaultSpecError, fault_from_description
from resilience.faults.leftovers import remove_leftovers

if TYPE_CHECKING:
    from resilience.backends.base import Backend, RunFinder

FORMAT_VERSION = 1
STATE_DIR_ENV = "RESILIENCE_STATE_DIR"
Log = Callable[[str], None]


# run id -> where the run is (e.g. {"backend": "hosts", "hosts_file": ..., "target": ...}), for this process's runs
_ORIGINS: dict[str, dict[str, Any]] = {}
# run id -> the ID of the Docker engine the run is on, for this process's Docker runs
_ENGINES: dict[str, str] = {}


def remember_engine(run_id: str, engine_id: str) -> None:
    """Record, with every fault this process registers for the Docker run `run_id`, which engine holds it: the
    state dir is the user's, shared by every engine they use, and only that engine can say the run is gone."""
    if engine_id:
        _ENGINES[run_id] = engine_id


def remember_origin(run_id: str, origin: dict[str, Any]) -> None:
    """Record, with every fault this process registers for `run_id`, what a later process needs to find the
    run again (JSON-able)."""
    _ORIGINS[run_id] = dict(origin)


def default_state_dir() -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "resilience" / "faults"


class RegistryError(FaultError):
    """The registry file is unreadable or refuses an operation; the message names the file."""


class Registry:
    """Active faults of one run. Thread-safe; processes coordinate through a lock file."""

    def __init__(self, run_id: str, state_dir: Path | str | None = None) -> None:
        self.run_id = run_id
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.path = self.state_dir / f"{run_id}.json"
        self._lock = threading.Lock()

    # -- the file ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.state_dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {"version": FORMAT_VERSION, "run_id": self.run_id, "faults": {}}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{self.path}:{exc.lineno}: not JSON ({exc.msg})") from None
        if not isinstance(data, dict) or not isinstance(data.get("faults"), dict):
            raise RegistryError(f"{self.path}: expected an object with a 'faults' object")
        if data.get("run_id") != self.run_id:
            raise RegistryError(f"{self.path}: belongs to run {data.get('run_id')!r}, not {self.run_id!r}")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        if not data["faults"]:
            self.path.unlink(missing_ok=True)
            return
        # Write beside, flush to disk, then rename over: a reader sees the old file or the new one.
        handle, temporary = tempfile.mkstemp(dir=self.state_dir, prefix=f".{self.run_id}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(data, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(self.state_dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    # -- operations ----------------------------------------------------------------------------------
    def register(self, fault: Fault) -> None:
        """Record a fault that is about to be applied. Refuses an id that is still active."""
        with self._locked():
            data = self._read()
            if fault.id in data["faults"]:
                raise RegistryError(
                    f"fault id {fault.id} is still registered as active for run {self.run_id} ({self.path}); "
                    f"a crashed run may have left it: `resilience cleanup` reverts it"
                )
            if self.run_id in _ORIGINS:
                data["origin"] = _ORIGINS[self.run_id]
            if self.run_id in _ENGINES:
                data["engine"] = _ENGINES[self.run_id]
            data["faults"][fault.id] = {
                "registered": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "owner": f"{socket.gethostname()}:{os.getpid()}",
                "applied": False,
                "description": fault.describe(),
            }
            self._write(data)
        # Outside the lock: on a kept run nothing removes the run, so a watcher reverts our faults if we die.
        from resilience.reaper import watch_faults

        watch_faults(self.run_id, self.state_dir)

    def update(self, fault: Fault, applied: bool = True) -> None:
        """Store what the fault learned while it was injected."""
        with self._locked():
            data = self._read()
            entry = data["faults"].get(fault.id)
            if entry is None:
                raise RegistryError(f"fault {fault.id} is not registered for run {self.run_id}")
            entry["description"] = fault.describe()
            entry["applied"] = applied
            self._write(data)

    def release(self, fault_id: str) -> None:
        """Forget a fault once it is recovered (a no-op when it is not registered)."""
        with self._locked():
            data = self._read()
            if data["faults"].pop(fault_id, None) is not None:
                self._write(data)

    def entries(self) -> dict[str, dict[str, Any]]:
        """id -> {"registered", "owner", "applied", "description"} for every active fault."""
        with self._locked():
            return dict(self._read()["faults"])

    def origin(self) -> dict[str, Any] | None:
        """Where the run is, as `remember_origin` said when its faults were registered (None: a Docker run)."""
        with self._locked():
            origin = self._read().get("origin")
        return origin if isinstance(origin, dict) else None

    def discard(self) -> None:
        with self._locked():
            self.path.unlink(missing_ok=True)


def recorded_runs(state_dir: Path | str | None = None) -> list[str]:
    """The ids of every run with a registry file (active faults) in the state dir, oldest file first."""
    directory = Path(state_dir) if state_dir is not None else default_state_dir()
    dated: list[tuple[float, str]] = []
    for path in directory.glob("*.json") if directory.is_dir() else []:
        try:
            dated.append((path.stat().st_mtime, path.stem))
        except FileNotFoundError:  # released meanwhile by its harness: its last fault was recovered
            continue
    return [stem for _, stem in sorted(dated) if not stem.startswith(".")]


def revert_recorded(run: Backend, registry: Registry, note: Log) -> list[str]:
    """Re-create and recover, newest first, every fault `registry` holds, on `run` (already rebuilt by the
    caller); release those recovered. Returns the nodes the recorded faults acted on (a later scan may start
    those still down). A fault whose recovery fails stays registered, so a later cleanup tries again."""
    try:
        entries = registry.entries()
    except RegistryError as exc:
        note(f"registry unreadable, left in place: {exc}")
        return []
    touched: list[str] = []
    for fault_id, entry in reversed(list(entries.items())):
        try:
            fault = fault_from_description(entry["description"], where=f"{registry.path}: fault {fault_id}")
        except FaultSpecError as exc:
            note(f"fault {fault_id}: cannot be re-created, kept registered: {exc}")
            continue
        touched.extend(n for n in fault.targets() if n not in touched)
        try:
            facts = fault.recover(run)
        except Exception as exc:  # the backend or a client library: report and carry on with the rest
            note(f"fault {fault_id}: recovery failed, kept registered: {type(exc).__name__}: {exc}")
            continue
        registry.release(fault_id)
        note(f"fault {fault_id} ({fault.kind} {', '.join(fault.targets())}): recovered {json.dumps(facts)}")
    return touched


def revert_owned(backend: RunFinder, run_id: str, owner: str, state_dir: Path | str | None = None) -> list[str]:
    """Recover, newest first, the faults registered for `run_id` by one owner process (`<host>:<pid>`),
    and only those: others may be injecting on the same run. One line per action or problem."""
    registry = Registry(run_id, state_dir)
    try:
        entries = {k: v for k, v in registry.entries().items() if v.get("owner") == owner}
    except RegistryError as exc:
        return [f"registry unreadable, left in place: {exc}"]
    if not entries:
        return []
    try:
        run = backend.attach(run_id)
    except BackendError as exc:
        return [f"run {run_id} cannot be attached ({exc}); {len(entries)} fault(s) left registered"]
    report = []
    for fault_id, entry in reversed(list(entries.items())):
        try:
            fault = fault_from_description(entry["description"], where=f"{registry.path}: fault {fault_id}")
            facts = fault.recover(run)
        except Exception as exc:  # report and carry on: the rest may still be recoverable
            report.append(f"fault {fault_id}: recovery failed, kept registered: {type(exc).__name__}: {exc}")
            continue
        registry.release(fault_id)
        report.append(f"fault {fault_id} ({fault.kind} {', '.join(fault.targets())}): recovered {json.dumps(facts)}")
    return report


def _owner_gone(owner: object) -> bool:
    """An entry's owner (`host:pid`) is a process of this host that no longer runs."""
    return isinstance(owner, str) and owner.rpartition(":")[2].isdigit() and not labels.owner_alive(owner)


def forget_vanished_runs(
    existing: set[str],
    engine_id: str,
    state_dir: Path | str | None = None,
    grace_s: float = 120.0,
    log: Log | None = None,
) -> list[str]:
    """Forget the registry files of Docker runs that are gone: a run the reaper removed after its harness was
    SIGKILLed leaves its file, since the reaper cannot reach this host. A file is removed only when all hold:
    it names engine `engine_id` (so a run on another engine of this user is never judged by this one), its
    run is not among `existing` (that engine's runs), it has no hosts origin, every fault's owner is a dead
    process of this host, and it was last written `grace_s` ago or more (the reaper and watcher's time)."""
    directory = Path(state_dir) if state_dir is not None else default_state_dir()
    forgotten: list[str] = []
    if not engine_id:
        return forgotten
    for run_id in recorded_runs(directory):
        if run_id in existing:
            continue
        registry = Registry(run_id, directory)
        try:
            with registry._locked():
                if time.time() - registry.path.stat().st_mtime < grace_s:
                    continue
                data = registry._read()
                entries = data["faults"].values()
                if data.get("engine") != engine_id or data.get("origin") is not None or not entries:
                    continue
                if not all(_owner_gone(entry.get("owner")) for entry in entries):
                    continue
                registry.path.unlink()
        except (OSError, RegistryError):
            continue
        forgotten.append(run_id)
        if log is not None:
            log(f"forgot the fault registry of run {run_id}: the run is gone and so is its harness")
    return forgotten


def revert_leftovers(
    backend: RunFinder, run_id: str, state_dir: Path | str | None = None, log: Log | None = None
) -> list[str]:
    """Recover every fault registered for `run_id`, then remove whatever fault-made state remains.

    Returns one line per action or problem. A fault whose recovery fails stays registered, so a
    later cleanup tries again. Never raises for a missing run: there is then nothing to revert.
    """
    registry = Registry(run_id, state_dir)
    report: list[str] = []

    def note(line: str) -> None:
        report.append(line)
        if log is not None:
            log(line)

    try:
        entries = registry.entries()
    except RegistryError as exc:
        entries = {}
        note(f"registry unreadable, left in place: {exc}")
    try:
        origin = registry.origin()
    except RegistryError:
        origin = None
    if origin is not None:
        # Not a run this backend can attach: its record is kept for `resilience cleanup --target`.
        note(f"run {run_id} is on {origin.get('target') or origin.get('hosts_file')}: left for cleanup --target")
        return report
    try:
        run = backend.attach(run_id)
    except BackendError as exc:
        if entries:
            registry.discard()
            note(f"run {run_id} is gone ({exc}); forgot {len(entries)} registered fault(s)")
        return report
    # Newest first: a later fault may depend on an earlier one (e.g. a toxic on a node since killed).
    for fault_id, entry in reversed(list(entries.items())):
        try:
            fault = fault_from_description(entry["description"], where=f"{registry.path}: fault {fault_id}")
            facts = fault.recover(run)
        except (FaultError, FaultSpecError) as exc:
            note(f"fault {fault_id}: recovery failed, kept registered: {exc}")
            continue
        except Exception as exc:  # the backend or a client library: report and carry on with the rest
            note(f"fault {fault_id}: recovery failed, kept registered: {type(exc).__name__}: {exc}")
            continue
        registry.release(fault_id)
        note(f"fault {fault_id} ({fault.kind} {', '.join(fault.targets())}): recovered {json.dumps(facts)}")
    for line in remove_leftovers(run):
        note(line)
    return report
