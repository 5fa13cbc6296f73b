"""The nemesis: applies and removes faults, recording each as operations of process "nemesis".

For each fault: resolve what depends on the run (e.g. today's primary), register it, record the
`inject` invocation, act, then complete it `ok` with the facts the fault returned, or `info` if it
raised (it may have taken effect in part). Recovery likewise records `recover`; only an ok recovery
releases the fault from the registry, so anything else is still found by `resilience cleanup`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from resilience.faults.base import BaseFault, Facts, Fault, FaultError
from resilience.faults.registry import Registry
from resilience.history import INFO, INJECT, NEMESIS, OK, RECOVER, History

if TYPE_CHECKING:
    from resilience.backends.base import Backend

Log = Callable[[str], None]


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, RuntimeError | ValueError) else str(exc)


class Nemesis:
    def __init__(
        self, run: Backend, history: History, registry: Registry | None = None, log: Log | None = None
    ) -> None:
        self.run = run
        self.history = history
        self.registry = registry if registry is not None else Registry(run.run_id)
        self.log = log or (lambda _line: None)
        self._active: dict[str, Fault] = {}
        self._used_ids: set[str] = set()
        self._lock = threading.Lock()

    def _value(self, fault: Fault, with_parameters: bool) -> dict[str, Any]:
        value: dict[str, Any] = {"fault": fault.kind, "id": fault.id, "targets": fault.targets()}
        if with_parameters:
            parameters = fault.parameters() if isinstance(fault, BaseFault) else fault.describe()
            value.update({k: v for k, v in parameters.items() if k not in ("kind", "id", "fault", "targets")})
        return value

    def inject(self, fault: Fault) -> Facts:
        """Apply `fault`. Raises what the fault raised, after recording it; the fault then stays active
        (registered, and recovered by recover_all) because it may have taken effect in part."""
        with self._lock:
            if fault.id in self._used_ids:
                # The checkers pair inject and recover by id: one id, one fault window per history.
                raise FaultError(f"fault id {fault.id} was already used in this history; give each fault its own id")
            self._used_ids.add(fault.id)
        try:
            if isinstance(fault, BaseFault):
                fault.resolve(self.run)
        except BaseException as exc:
            # Nothing was applied: the attempt is recorded as failed and nothing is registered.
            op = self.history.invoke(NEMESIS, INJECT, self._value(fault, True))
            self.history.complete(op, "fail", {"fault": fault.kind, "id": fault.id, "error": _error(exc)})
            raise
        self.registry.register(fault)
        with self._lock:
            self._active[fault.id] = fault
        op = self.history.invoke(NEMESIS, INJECT, self._value(fault, True))
        self.log(f"inject {fault.kind} {fault.id} on {', '.join(fault.targets()) or '-'}")
        try:
            facts = fault.inject(self.run)
        except BaseException as exc:
            self.history.complete(op, INFO, {"fault": fault.kind, "id": fault.id, "error": _error(exc)})
            self.log(f"inject {fault.id} failed: {_error(exc)}")
            self.registry.update(fault, applied=False)
            raise
        self.history.complete(op, OK, {"fault": fault.kind, "id": fault.id, "targets": fault.targets(), **facts})
        self.registry.update(fault)
        return facts

    def recover(self, fault: Fault) -> Facts:
        """Remove `fault`. On failure the history keeps its window open and the registry keeps it."""
        op = self.history.invoke(NEMESIS, RECOVER, self._value(fault, False))
        self.log(f"recover {fault.kind} {fault.id}")
        try:
            facts = fault.recover(self.run)
        except BaseException as exc:
            self.history.complete(op, INFO, {"fault": fault.kind, "id": fault.id, "error": _error(exc)})
            self.log(f"recover {fault.id} failed: {_error(exc)}")
            raise
        self.history.complete(op, OK, {"fault": fault.kind, "id": fault.id, **facts})
        self.registry.release(fault.id)
        with self._lock:
            self._active.pop(fault.id, None)
        return facts

    @contextmanager
    def applied(self, fault: Fault) -> Iterator[Facts]:
        """`with nemesis.applied(fault) as facts:` — recovered on leaving, whatever happened (even ^C)."""
        try:
            yield self.inject(fault)
        finally:
            self.recover(fault)

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._active.values())

    def recover_all(self) -> list[str]:
        """Recover every fault this nemesis still holds, newest first; return the errors (empty when all went)."""
        errors = []
        for fault in reversed(self.active()):
            try:
                self.recover(fault)
            except Exception as exc:  # keep going: every other fault must still be removed
                errors.append(f"{fault.kind} {fault.id}: {_error(exc)}")
        return errors
