"""Reversible faults (one per module), the registry that makes them crash-safe, the nemesis that records
them in a history, and schedules that drive them. See docs/faults.md."""

from resilience.faults.base import FAULT_KINDS, BaseFault, Fault, FaultError, FaultSpecError, fault_from_description
from resilience.faults.crash import CrashFault
from resilience.faults.isolate import IsolateFault
from resilience.faults.kill import KillFault
from resilience.faults.lb_cut import LbCutFault
from resilience.faults.leftovers import find_leftovers
from resilience.faults.loss import PacketLossFault
from resilience.faults.nemesis import Nemesis
from resilience.faults.partition import PartitionFault
from resilience.faults.pause import PauseFault
from resilience.faults.pg_failover import PgFailoverFault
from resilience.faults.redis_failover import RedisFailoverFault
from resilience.faults.registry import Registry, revert_leftovers
from resilience.faults.restart import RestartFault
from resilience.faults.rolling_restart import RollingRestartFault
from resilience.faults.rolling_upgrade import RollingUpgradeFault
from resilience.faults.schedule import (
    GeneratorSettings,
    Schedule,
    ScheduleError,
    ScheduleRunner,
    generate_schedule,
    parse_schedule,
    run_schedule,
)
from resilience.faults.search_loss import SearchLossFault
from resilience.faults.stop import StopFault
from resilience.faults.toxic import ToxicFault

__all__ = [
    "FAULT_KINDS",
    "BaseFault",
    "CrashFault",
    "Fault",
    "FaultError",
    "FaultSpecError",
    "GeneratorSettings",
    "IsolateFault",
    "KillFault",
    "LbCutFault",
    "Nemesis",
    "PacketLossFault",
    "PartitionFault",
    "PauseFault",
    "PgFailoverFault",
    "RedisFailoverFault",
    "Registry",
    "RestartFault",
    "RollingRestartFault",
    "RollingUpgradeFault",
    "Schedule",
    "ScheduleError",
    "ScheduleRunner",
    "SearchLossFault",
    "StopFault",
    "ToxicFault",
    "fault_from_description",
    "find_leftovers",
    "generate_schedule",
    "parse_schedule",
    "revert_leftovers",
    "run_schedule",
]
