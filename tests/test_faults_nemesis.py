"""The nemesis: each fault registered before it acts, recorded as invoke then ok/info/fail, recovered in
`finally` even after ^C, and kept registered while its recovery has not succeeded.

The faults here are small test faults that act on nothing: what is under test is the bookkeeping.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import BaseFault, FaultError, Nemesis, Registry
from resilience.history import NEMESIS, History

NO_RUN = cast(DockerRun, None)  # these faults never touch the run


@dataclasses.dataclass(kw_only=True)
class ProbeFault(BaseFault):
    """Records what the nemesis had done by the time it acted; fails where told to."""

    node: str = "courier-1"
    fail_in: str = ""  # "resolve", "inject" or "recover"
    seen: dict[str, Any] = dataclasses.field(default_factory=dict)
    registry: Registry | None = None
    history: History | None = None

    def targets(self) -> list[str]:
        return [self.node]

    def resolve(self, run: DockerRun) -> None:
        if self.fail_in == "resolve":
            raise FaultError("no primary to fail over")

    def inject(self, run: DockerRun) -> dict[str, Any]:
        assert self.registry is not None and self.history is not None
        self.seen["registered_before_inject"] = self.id in self.registry.entries()
        self.seen["invoked_before_inject"] = [op.f for op in self.history.pending]
        if self.fail_in == "inject":
            raise FaultError("docker refused")
        return {"learned": "x"}

    def recover(self, run: DockerRun) -> dict[str, Any]:
        if self.fail_in == "recover":
            raise FaultError("node gone")
        return {"removed": True}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "node": self.node}


ProbeFault.kind = "probe"  # set after the class is made, so the catalogue of real kinds stays as it is


@pytest.fixture
def nemesis(tmp_path: Path) -> Nemesis:
    return Nemesis(NO_RUN, History(None, run_id="r1"), Registry("r1", tmp_path))


def _probe(nemesis: Nemesis, **kw: Any) -> ProbeFault:
    return ProbeFault(registry=nemesis.registry, history=nemesis.history, **kw)


def _records(nemesis: Nemesis) -> list[tuple[str, str, str, Any]]:
    return [(op.process, op.type, op.f, op.value) for op in nemesis.history.recorded().ops]


def test_inject_registers_then_records_then_acts(nemesis: Nemesis) -> None:
    fault = _probe(nemesis, id="p1")
    facts = nemesis.inject(fault)
    assert facts == {"learned": "x"}
    assert fault.seen == {"registered_before_inject": True, "invoked_before_inject": ["inject"]}
    nemesis.recover(fault)
    assert _records(nemesis) == [
        (NEMESIS, "invoke", "inject", {"fault": "probe", "id": "p1", "targets": ["courier-1"], "node": "courier-1"}),
        (NEMESIS, "ok", "inject", {"fault": "probe", "id": "p1", "targets": ["courier-1"], "learned": "x"}),
        (NEMESIS, "invoke", "recover", {"fault": "probe", "id": "p1", "targets": ["courier-1"]}),
        (NEMESIS, "ok", "recover", {"fault": "probe", "id": "p1", "removed": True}),
    ]
    assert nemesis.registry.entries() == {} and nemesis.active() == []


def test_a_failed_inject_is_info_and_stays_active(nemesis: Nemesis) -> None:
    fault = _probe(nemesis, id="p2", fail_in="inject")
    with pytest.raises(FaultError, match="docker refused"):
        nemesis.inject(fault)
    assert _records(nemesis)[-1] == (
        NEMESIS,
        "info",
        "inject",
        {"fault": "probe", "id": "p2", "error": "docker refused"},
    )
    # It may have half-happened: still registered (applied: false) and recovered by recover_all.
    assert nemesis.registry.entries()["p2"]["applied"] is False
    assert nemesis.recover_all() == []
    assert nemesis.registry.entries() == {}


def test_a_fault_that_cannot_resolve_is_a_plain_fail(nemesis: Nemesis) -> None:
    with pytest.raises(FaultError, match="no primary"):
        nemesis.inject(_probe(nemesis, id="p3", fail_in="resolve"))
    assert [(t, f) for _, t, f, _ in _records(nemesis)] == [("invoke", "inject"), ("fail", "inject")]
    assert nemesis.registry.entries() == {} and nemesis.active() == []


def test_a_failed_recovery_keeps_the_window_open_and_the_record(nemesis: Nemesis) -> None:
    fault = _probe(nemesis, id="p4", fail_in="recover")
    nemesis.inject(fault)
    with pytest.raises(FaultError, match="node gone"):
        nemesis.recover(fault)
    assert _records(nemesis)[-1][1:3] == ("info", "recover")
    assert list(nemesis.registry.entries()) == ["p4"]
    assert nemesis.recover_all() == ["probe p4: node gone"]
    fault.fail_in = ""
    assert nemesis.recover_all() == []
    assert nemesis.registry.entries() == {}


def test_applied_recovers_even_after_keyboard_interrupt(nemesis: Nemesis) -> None:
    fault = _probe(nemesis, id="p5")
    with pytest.raises(KeyboardInterrupt), nemesis.applied(fault):
        raise KeyboardInterrupt
    assert [(t, f) for _, t, f, _ in _records(nemesis)][-1] == ("ok", "recover")
    assert nemesis.registry.entries() == {}


def test_applied_recovers_after_an_inject_that_raised(nemesis: Nemesis) -> None:
    fault = _probe(nemesis, id="p6", fail_in="inject")
    with pytest.raises(FaultError), nemesis.applied(fault):
        pytest.fail("the body must not run when the inject raised")
    assert [(t, f) for _, t, f, _ in _records(nemesis)][-2:] == [("invoke", "recover"), ("ok", "recover")]


def test_an_id_is_used_once_per_history(nemesis: Nemesis) -> None:
    fault = _probe(nemesis, id="p7")
    with nemesis.applied(fault):
        pass
    with pytest.raises(FaultError, match="fault id p7 was already used in this history"):
        nemesis.inject(_probe(nemesis, id="p7"))
    assert len(_records(nemesis)) == 4  # the refused one left no record
