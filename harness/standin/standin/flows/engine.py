"""The engine: runs a contact through flows, one sprint (start, resume, timeout) at a time.

It follows goflow's session loop (flows/engine/session.go at v0.198, mailroom v9): visit a node, run its
actions, then either wait for a message, enter a child flow, or let the router pick a category whose
exit leads on; a run with nowhere to go completes and hands control back to its parent run, whose
router then reads `@child.status`. Every uuid comes from the engine's uuid factory and every time from
the `now` the caller passes, so a seeded engine replays a conversation exactly.
"""

from __future__ import annotations

import dataclasses
import random
import uuid as uuidlib
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from .cases import CaseArgumentError, run_case
from .context import XObject, XValue, to_text
from .definition import (
    Category,
    EnterFlow,
    Exit,
    Flow,
    Node,
    SendMsg,
    SetContactField,
    SetContactName,
    SetRunResult,
    Wait,
)
from .errors import FlowError, SessionError
from .excellent.values import Environment, XArray, new_object
from .session import (
    ACTIVE,
    COMPLETED,
    FAILED,
    WAITING,
    Contact,
    Run,
    Session,
    Sprint,
    WaitState,
    format_time,
    require_aware,
)
from .templates import Resolver, evaluate, evaluate_value, parse_template, resolve_in
from .text import snakify, tokenize

# goflow's default engine limits
MAX_STEPS_PER_SPRINT = 100
MAX_SPRINTS_PER_SESSION = 500
MAX_RUNS_PER_SESSION = 500
MAX_FIELD_CHARS = 640

UuidFactory = Callable[[], str]

# the URN schemes goflow's `@urns` always lists (null when the contact has none)
_URN_SCHEMES = (
    "discord", "ext", "facebook", "fcm", "freshchat", "instagram", "jiochat", "line", "mailto", "rocketchat",
    "slack", "tel", "telegram", "twitter", "twitterid", "viber", "vk", "webchat", "wechat", "whatsapp",
)  # fmt: skip

_STATUS_WORDS = {ACTIVE: "active", WAITING: "waiting", COMPLETED: "completed", FAILED: "failed"}


def seeded_uuid_factory(seed: int) -> UuidFactory:
    """Version-4 uuids from a seeded generator: the same seed gives the same sequence."""
    generator = random.Random(seed)

    def next_uuid() -> str:
        return str(uuidlib.UUID(int=generator.getrandbits(128), version=4))

    return next_uuid


def _random_uuid() -> str:
    return str(uuidlib.uuid4())


class Engine:
    """Runs the flows of one org. `allowed_languages` are the org's languages: a contact whose
    language is one of them gets the flow's translations, everyone else the flow's base language."""

    def __init__(
        self,
        flows: Mapping[str, Flow],
        uuid_factory: UuidFactory | None = None,
        allowed_languages: Iterable[str] = (),
        globals_: Mapping[str, str] | None = None,
        timezone: tzinfo = UTC,
    ) -> None:
        self.flows: dict[str, Flow] = dict(flows)
        self.globals: dict[str, str] = dict(globals_ or {})
        self.timezone = timezone
        self.new_uuid: UuidFactory = uuid_factory or _random_uuid
        self.allowed_languages = frozenset(allowed_languages)
        self._check_enter_flow_targets()

    def _check_enter_flow_targets(self) -> None:
        for flow in self.flows.values():
            for node in flow.nodes:
                for action in node.actions:
                    if isinstance(action, EnterFlow) and action.flow_uuid not in self.flows:
                        raise FlowError(
                            f"{flow.where(node.uuid)}, action {action.uuid} (enter_flow): enters flow "
                            f"{action.flow_name!r} ({action.flow_uuid}), which is not among the engine's "
                            f"flows ({', '.join(sorted(repr(f.name) for f in self.flows.values()))})"
                        )

    def flow(self, flow_uuid: str) -> Flow:
        try:
            return self.flows[flow_uuid]
        except KeyError:
            raise FlowError(
                f"flow {flow_uuid} is not among the engine's flows "
                f"({', '.join(f'{f.name!r} {f.uuid}' for f in self.flows.values())})"
            ) from None

    def start(self, flow_uuid: str, contact: Contact, now: datetime, *, trigger_text: str | None = None) -> Sprint:
        """Start a new session in a flow. `trigger_text` is the message of a keyword trigger: it is the
        session's `@input`, and a wait at the very first node takes it as the answer (as goflow)."""
        flow = self.flow(flow_uuid)
        session = Session(uuid=self.new_uuid(), contact_uuid=contact.uuid, status=ACTIVE)
        sprinter = _Sprinter(self, session, contact, require_aware(now), trigger_text)
        return sprinter.start(flow)

    def resume(self, session_state: Mapping[str, Any], contact: Contact, text: str, now: datetime) -> Sprint:
        """Resume a waiting session with the text of an inbound message."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        session, run = self._waiting(session_state, contact)
        return _Sprinter(self, session, contact, require_aware(now), None).resume(run, text)

    def timeout(self, session_state: Mapping[str, Any], contact: Contact, now: datetime) -> Sprint:
        """The timeout of the session's wait fired: leave by the wait's timeout category."""
        session, run = self._waiting(session_state, contact)
        return _Sprinter(self, session, contact, require_aware(now), None).resume(run, None)

    def _waiting(self, session_state: Mapping[str, Any], contact: Contact) -> tuple[Session, Run]:
        session = Session.from_state(dict(session_state) if isinstance(session_state, Mapping) else session_state)
        if session.status != WAITING:
            raise SessionError(f"session {session.uuid} has status {session.status!r}: only a waiting (W) one resumes")
        if session.contact_uuid != contact.uuid:
            raise SessionError(f"session {session.uuid} belongs to contact {session.contact_uuid}, not {contact.uuid}")
        waiting = [run for run in session.runs if run.status == WAITING]
        if len(waiting) != 1 or session.wait is None or session.wait.run_uuid != waiting[0].uuid:
            raise SessionError(
                f"session {session.uuid} is waiting but has {len(waiting)} waiting run(s) and wait "
                f"{session.wait.run_uuid if session.wait else None}: the state is inconsistent"
            )
        return session, waiting[0]


class _Sprinter:
    """One sprint of one session: the mutable working state behind a start, resume or timeout."""

    def __init__(
        self, engine: Engine, session: Session, contact: Contact, now: datetime, trigger_text: str | None
    ) -> None:
        self.engine = engine
        self.session = session
        self.contact = dataclasses.replace(contact, fields=dict(contact.fields))
        self.now = now
        self.input_text = trigger_text
        self.trigger_has_msg = trigger_text is not None
        self.language = contact.language if contact.language in engine.allowed_languages else None
        self.events: list[dict[str, Any]] = []
        self.messages: list[str] = []
        self.pushed: tuple[Flow, Run | None, bool] | None = None

    # --- entry points -------------------------------------------------------------------------

    def start(self, flow: Flow) -> Sprint:
        self.pushed = (flow, None, False)
        self.continue_until_wait(None, None)
        return self.finish()

    def resume(self, run: Run, text: str | None) -> Sprint:
        is_timeout = text is None
        flow = self.engine.flows.get(run.flow_uuid)
        if flow is None:
            return self.fail_session(run, f"Can't resume run with missing flow asset {run.flow_uuid}")
        if self.session.sprints >= MAX_SPRINTS_PER_SESSION:
            return self.fail_session(run, f"Reached maximum number of sprints per session ({MAX_SPRINTS_PER_SESSION})")
        step = run.path[-1] if run.path else None
        node = flow.node(step["node_uuid"]) if step else None
        if step is None or node is None:
            return self.fail_session(run, "Unable to find resume location: the waiting node is not in the flow")
        wait = node.router.wait if node.router else None
        if wait is None:
            return self.fail_session(run, "Can't resume from node without a router or wait")
        if is_timeout and wait.timeout is None:
            raise SessionError(f"{flow.where(node.uuid)}: the wait has no timeout, so a timeout cannot resume it")

        self.session.status = ACTIVE
        self.session.wait = None
        if text is not None:
            self.input_text = text
            run.responded = True
            self.log("msg_received", run, step, msg={"text": text, "urn": self.contact.urn})
        else:
            self.log("wait_timed_out", run, step)
        run.status = ACTIVE
        run.modified_on = self.now
        exit_ = self.pick_exit(run, flow, node, step, is_timeout=is_timeout)
        self.continue_until_wait(run, exit_)
        return self.finish()

    def fail_session(self, run: Run, text: str) -> Sprint:
        self.log("failure", run, text=text)
        for item in self.session.runs:
            if item.status in (ACTIVE, WAITING):
                self.exit_run(item, FAILED)
        self.session.status = FAILED
        self.session.wait = None
        return self.finish()

    def finish(self) -> Sprint:
        self.session.sprints += 1
        wait = self.session.wait if self.session.status == WAITING else None
        waiting_run = self.session.run(wait.run_uuid) if wait else None
        return Sprint(
            session_state=self.session.to_state(),
            session_status=self.session.status,
            messages=list(self.messages),
            runs=[run.snapshot() for run in self.session.runs],
            contact=self.contact,
            wait_timeout_seconds=wait.timeout_seconds if wait else None,
            events=self.events,
            session_uuid=self.session.uuid,
            current_flow_uuid=waiting_run.flow_uuid if waiting_run else None,
            wait_started_on=wait.started_on if wait else None,
            timeout_on=wait.timeout_on if wait else None,
            wait_expires_on=wait.expires_on if wait else None,
        )

    # --- the session loop ---------------------------------------------------------------------

    def continue_until_wait(self, run: Run | None, exit_: Exit | None) -> None:
        steps = 0
        while True:
            destination: str | None
            if self.pushed is not None:
                flow, parent, terminal = self.pushed
                self.pushed = None
                if len(self.session.runs) >= MAX_RUNS_PER_SESSION and run is not None:
                    self.fail_run(run, None, f"Reached maximum number of runs per session ({MAX_RUNS_PER_SESSION})")
                    destination = None
                else:
                    if terminal:
                        for item in self.session.runs:
                            if item.status in (ACTIVE, WAITING):
                                self.exit_run(item, COMPLETED)
                    run = self.new_run(flow, parent, terminal)
                    destination = flow.nodes[0].uuid if flow.nodes else None
            elif exit_ is not None:
                destination = exit_.destination_uuid
                exit_ = None
            else:
                destination = None
            assert run is not None

            if destination is None:
                if run.exited_on is None:
                    self.exit_run(run, COMPLETED)
                parent = self.session.run(run.parent_uuid)
                if parent is not None and parent.status == ACTIVE:
                    child, run = run, parent
                    if child.status != FAILED:
                        exit_ = self.resume_parent(run)
                    else:
                        self.fail_run(run, None, None)
                    continue
                self.session.status = FAILED if run.status == FAILED else COMPLETED
                return

            steps += 1
            if steps > MAX_STEPS_PER_SPRINT:
                self.fail_run(run, None, f"Reached maximum number of steps per sprint ({MAX_STEPS_PER_SPRINT})")
                continue
            flow = self.engine.flows[run.flow_uuid]
            node = flow.node(destination)
            assert node is not None, "exit destinations are checked when the flow is loaded"
            exit_ = self.visit(run, flow, node)
            if self.session.status == WAITING:
                return

    def new_run(self, flow: Flow, parent: Run | None, terminal: bool) -> Run:
        run = Run(
            uuid=self.engine.new_uuid(),
            flow_uuid=flow.uuid,
            flow_name=flow.name,
            status=ACTIVE,
            parent_uuid=parent.uuid if parent else None,
            created_on=self.now,
            modified_on=self.now,
        )
        if not self.session.runs and self.trigger_has_msg:
            run.responded = True
        self.session.runs.append(run)
        self.log(
            "run_started",
            run,
            flow={"uuid": flow.uuid, "name": flow.name},
            parent_run_uuid=run.parent_uuid,
            terminal=terminal,
        )
        return run

    def resume_parent(self, run: Run) -> Exit | None:
        """The parent run's way on once its child ended: its current node's router decides."""
        step = run.path[-1] if run.path else None
        flow = self.engine.flows.get(run.flow_uuid)
        if flow is None:
            self.fail_run(run, None, f"Can't resume run with missing flow asset {run.flow_uuid}")
            return None
        node = flow.node(step["node_uuid"]) if step else None
        if step is None or node is None:
            self.fail_run(run, None, "Can't resume run as node no longer exists")
            return None
        return self.pick_exit(run, flow, node, step, is_timeout=False)

    def visit(self, run: Run, flow: Flow, node: Node) -> Exit | None:
        step = {
            "uuid": self.engine.new_uuid(),
            "node_uuid": node.uuid,
            "arrived_on": format_time(self.now),
            "exit_uuid": None,
        }
        run.path.append(step)
        run.modified_on = self.now
        for action in node.actions:
            self.execute(run, flow, step, action)
            if run.status == FAILED:
                return None
        if self.pushed is not None:
            return None
        wait = node.router.wait if node.router else None
        if wait is not None and self.begin_wait(run, flow, node, wait):
            return None
        return self.pick_exit(run, flow, node, step, is_timeout=False)

    def begin_wait(self, run: Run, flow: Flow, node: Node, wait: Wait) -> bool:
        # goflow: a flow started by a message whose first node is a wait takes that message as the answer
        if self.trigger_has_msg and len(self.session.runs) == 1 and len(run.path) == 1:
            return False
        timeout_seconds = wait.timeout.seconds if wait.timeout else None
        expires_on = self.now + timedelta(minutes=flow.expire_after_minutes)
        run.status = WAITING
        self.session.status = WAITING
        self.session.wait = WaitState(run.uuid, node.uuid, self.now, timeout_seconds, expires_on)
        self.log("msg_wait", run, run.path[-1], timeout_seconds=timeout_seconds, expires_on=format_time(expires_on))
        return True

    def pick_exit(self, run: Run, flow: Flow, node: Node, step: dict[str, Any], *, is_timeout: bool) -> Exit | None:
        exit_uuid: str | None
        if node.router is not None:
            category = self.timeout_category(run, flow, node, step) if is_timeout else self.route(run, flow, node, step)
            if category is None:
                self.fail_run(run, step, f"router on node[uuid={node.uuid}] failed to pick a category")
                return None
            exit_uuid = category.exit_uuid
        elif node.exits:
            exit_uuid = node.exits[0].uuid
        else:
            exit_uuid = None
        step["exit_uuid"] = exit_uuid
        run.modified_on = self.now
        return node.exit(exit_uuid) if exit_uuid else None

    def timeout_category(self, run: Run, flow: Flow, node: Node, step: dict[str, Any]) -> Category:
        router = node.router
        assert router is not None and router.wait is not None and router.wait.timeout is not None
        category = router.category(router.wait.timeout.category_uuid)
        if router.result_name:
            self.save_result(run, flow, step, router.result_name, "", category, "")
        return category

    def route(self, run: Run, flow: Flow, node: Node, step: dict[str, Any]) -> Category | None:
        router = node.router
        assert router is not None
        resolve = self.resolver(run)
        operand, errors = evaluate_value(router.operand, resolve)
        self.log_errors(run, step, errors)
        operand_text = to_text(operand)
        chosen: tuple[str, str] | None = None
        for case in router.cases:
            sources = self.translated(flow, case.uuid, "arguments", case.arguments)
            arguments: list[XValue] = []
            argument_errors: list[str] = []
            for source in sources:
                value, errors = evaluate_value(parse_template(source), resolve)
                arguments.append(value)
                argument_errors.extend(errors)
            if argument_errors:
                self.log_errors(run, step, argument_errors)
                continue
            try:
                outcome = run_case(case.type, operand, arguments, resolve.env)
            except CaseArgumentError as exc:
                self.log_errors(run, step, [f"error calling {case.type}: {exc}"])
                continue
            if outcome is not None:
                chosen = (outcome.match, case.category_uuid)
                break
        if chosen is None:
            if router.default_category_uuid is None:
                return None
            chosen = (operand_text, router.default_category_uuid)
        match, category_uuid = chosen
        category = router.category(category_uuid)
        if router.result_name:
            self.save_result(run, flow, step, router.result_name, match, category, operand_text)
        return category

    def save_result(
        self, run: Run, flow: Flow, step: dict[str, Any], name: str, value: str, category: Category, operand: str
    ) -> None:
        """A router's result: the category's name, translated for the contact when the flow has it."""
        localized = self.translated(flow, category.uuid, "name", (category.name,))[0]
        self.store_result(run, step, name, value, category.name, localized, operand)

    def store_result(
        self, run: Run, step: dict[str, Any], name: str, value: str, category: str, localized: str, operand: str
    ) -> None:
        result = {
            "name": name,
            "value": value,
            "category": category,
            "category_localized": localized or category,
            "input": operand,
            "node_uuid": step["node_uuid"],
            "created_on": format_time(self.now),
        }
        run.results[snakify(name)] = result
        run.modified_on = self.now
        self.log("run_result_changed", run, step, **{k: v for k, v in result.items() if k != "created_on"})

    # --- actions ------------------------------------------------------------------------------

    def execute(self, run: Run, flow: Flow, step: dict[str, Any], action: Any) -> None:
        if isinstance(action, SendMsg):
            source = self.translated(flow, action.uuid, "text", (action.text,))[0]
            text, errors = self.render(run, source)
            self.log_errors(run, step, errors)
            self.messages.append(text)
            self.log(
                "msg_created", run, step, msg={"uuid": self.engine.new_uuid(), "text": text, "urn": self.contact.urn}
            )
        elif isinstance(action, SetRunResult):
            value, errors = self.render(run, action.value)
            if errors:
                self.log_errors(run, step, errors)
                return
            localized = self.translated(flow, action.uuid, "category", (action.category,))[0]
            self.store_result(run, step, action.name, value, action.category, localized, "")
        elif isinstance(action, SetContactField):
            value, errors = self.render(run, action.value)
            if errors:
                self.log_errors(run, step, errors)
                return
            self.set_field(run, step, action, value.strip()[:MAX_FIELD_CHARS])
        elif isinstance(action, SetContactName):
            name, errors = self.render(run, action.name)
            if errors:
                self.log_errors(run, step, errors)
                return
            name = name.strip()[:MAX_FIELD_CHARS]
            if name != (self.contact.name or ""):
                self.contact.name = name
                self.log("contact_name_changed", run, step, name=name)
        elif isinstance(action, EnterFlow):
            target = self.engine.flows.get(action.flow_uuid)
            if target is None:
                self.fail_run(run, step, f"Unable to find flow '{action.flow_name}' ({action.flow_uuid})")
                return
            self.pushed = (target, run, action.terminal)
            self.log(
                "flow_entered", run, step, flow={"uuid": target.uuid, "name": target.name}, terminal=action.terminal
            )
        else:  # pragma: no cover - the loader admits only the types above
            raise AssertionError(f"unexpected action {action!r}")

    def set_field(self, run: Run, step: dict[str, Any], action: SetContactField, value: str) -> None:
        old = self.contact.fields.get(action.field_key)
        new = value or None
        if old == new:
            return
        if new is None:
            del self.contact.fields[action.field_key]
        else:
            self.contact.fields[action.field_key] = new
        self.log(
            "contact_field_changed",
            run,
            step,
            field={"key": action.field_key, "name": action.field_name},
            value={"text": new} if new is not None else None,
        )

    # --- helpers ------------------------------------------------------------------------------

    def translated(self, flow: Flow, item_uuid: str, key: str, base: tuple[str, ...]) -> tuple[str, ...]:
        translations = flow.translations(self.language, item_uuid, key)
        if translations is None or len(translations) != len(base):
            return base
        return translations

    def render(self, run: Run, source: str) -> tuple[str, list[str]]:
        return evaluate(parse_template(source), self.resolver(run))

    def resolver(self, run: Run) -> Resolver:
        env = Environment(timezone=self.engine.timezone, now=self.now)
        return resolve_in(self.context(run), env)

    def context(self, run: Run) -> XObject:
        """The run context as goflow exposes it (flows/runs/run.go RootContext), as far as modelled."""
        contact = self.contact_object()
        fields = contact.properties["fields"]
        parent = self.session.run(run.parent_uuid)
        child = next((item for item in reversed(self.session.runs) if item.parent_uuid == run.uuid), None)
        input_object = None
        if self.input_text is not None:
            input_object = XObject(
                default=self.input_text,
                properties={
                    "type": "msg",
                    "text": self.input_text,
                    "attachments": XArray(),
                    "urn": self.contact.urn,
                    "created_on": self.now,
                    "uuid": None,
                    "channel": None,
                    "external_id": None,
                },
            )
        return XObject(
            default="",
            properties={
                "input": input_object,
                "results": self.results_object(run),
                "contact": contact,
                "urns": contact.properties["urns_by_scheme"],
                "fields": fields,
                "run": self.run_object(run, contact),
                "parent": self.related_run_object(parent) if parent else None,
                "child": self.related_run_object(child) if child else None,
                "globals": new_object(dict(self.engine.globals)),
            },
        )

    def contact_object(self) -> XObject:
        contact = self.contact
        fields = XObject(default=None, properties=dict(contact.fields), missing_ok=True, has_default=False)
        urns = [urn for urn in (contact.urn,) if urn]
        by_scheme: dict[str, XValue] = dict.fromkeys(_URN_SCHEMES)
        for urn in urns:
            scheme = urn.split(":", 1)[0]
            by_scheme.setdefault(scheme, None)
            if by_scheme[scheme] is None:
                by_scheme[scheme] = urn
        urn_path = contact.urn.split(":", 1)[-1] if contact.urn else ""
        names = tokenize(contact.name or "")
        return XObject(
            default=contact.name or urn_path,
            properties={
                "uuid": contact.uuid,
                "id": None,
                "name": contact.name or "",
                "first_name": names[0] if names else None,
                "language": contact.language,
                "status": "active",
                "timezone": None,
                "created_on": None,
                "last_seen_on": None,
                "urn": contact.urn,
                "urns": XArray(tuple(urns)),
                "groups": XArray(),
                "tickets": XArray(),
                "channel": None,
                "fields": fields,
                "urns_by_scheme": new_object(by_scheme),
            },
        )

    def results_object(self, run: Run) -> XObject:
        lines = sorted(f"{result.get('name', key)}: {result.get('value', '')}" for key, result in run.results.items())
        return XObject(
            default="\n".join(lines),
            properties={
                key: XObject(default=result.get("value", ""), properties={"extra": None, **result})
                for key, result in run.results.items()
            },
        )

    def run_object(self, run: Run, contact: XObject) -> XObject:
        flow = self.engine.flows.get(run.flow_uuid)
        return new_object(
            {
                "uuid": run.uuid,
                "contact": contact,
                "flow": XObject(
                    default=run.flow_name,
                    properties={"uuid": run.flow_uuid, "name": run.flow_name, "revision": None},
                )
                if flow
                else None,
                "status": _STATUS_WORDS[run.status],
                "results": self.results_object(run),
                "created_on": run.created_on,
                "exited_on": run.exited_on,
            }
        )

    def related_run_object(self, related: Run) -> XObject:
        """A parent or child run (goflow's relatedRunContext): same contact in this engine."""
        contact = self.contact_object()
        status = _STATUS_WORDS[related.status]
        return XObject(
            default=related.uuid,
            properties={
                "uuid": related.uuid,
                "contact": contact,
                "flow": XObject(
                    default=related.flow_name,
                    properties={"uuid": related.flow_uuid, "name": related.flow_name, "revision": None},
                ),
                "fields": contact.properties["fields"],
                "urns": contact.properties["urns_by_scheme"],
                "results": self.results_object(related),
                "status": status,
                "run": XObject(None, {"status": status}),
            },
        )

    def log(self, kind: str, run: Run | None, step: dict[str, Any] | None = None, **data: Any) -> None:
        event: dict[str, Any] = {"type": kind, "created_on": format_time(self.now)}
        if run is not None:
            event["run_uuid"] = run.uuid
        if step is not None:
            event["step_uuid"] = step["uuid"]
            event["node_uuid"] = step["node_uuid"]
        event.update(data)
        self.events.append(event)

    def log_errors(self, run: Run, step: dict[str, Any] | None, errors: list[str]) -> None:
        for text in errors:
            self.log("error", run, step, text=text)

    def exit_run(self, run: Run, status: str) -> None:
        run.status = status
        run.exited_on = self.now
        run.modified_on = self.now
        self.log("run_ended", run, status=_STATUS_WORDS[status])

    def fail_run(self, run: Run, step: dict[str, Any] | None, text: str | None) -> None:
        if text:
            self.log("failure", run, step, text=text)
        self.exit_run(run, FAILED)
