"""The stand-in mailroom's flow engine: RapidPro flow spec 13 exports, run with goflow's semantics.

    flows = load_export(path_or_dict)                  # dict[flow_uuid, Flow]
    engine = Engine(flows, uuid_factory=seeded_uuid_factory(1))
    sprint = engine.start(flow_uuid, contact, now)
    sprint = engine.resume(sprint.session_state, sprint.contact, "red", now)
    sprint = engine.timeout(sprint.session_state, sprint.contact, now)

See docs/flows.md for what is supported and how it maps onto goflow.
"""

from .definition import Flow, load_export, load_flow
from .engine import Engine, UuidFactory, seeded_uuid_factory
from .errors import FlowError, SessionError
from .session import Contact, RunState, Sprint
from .triggers import KeywordTrigger, load_triggers, match_keyword_trigger

__all__ = [
    "Contact",
    "Engine",
    "Flow",
    "FlowError",
    "KeywordTrigger",
    "RunState",
    "SessionError",
    "Sprint",
    "UuidFactory",
    "load_export",
    "load_flow",
    "load_triggers",
    "match_keyword_trigger",
    "seeded_uuid_factory",
]
