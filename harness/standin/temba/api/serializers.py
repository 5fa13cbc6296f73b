"""API v2 shapes as RapidPro v9's temba/api/v2/serializers.py, for the endpoints the stand-in serves."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from temba.api.fields import ContactField, FlowField, NoGroupField, URNField
from temba.channels.models import Channel
from temba.contacts.models import Contact, ContactURN
from temba.flows.models import Flow, FlowRun, FlowStart
from temba.mailroom.client import get_client as mailroom_client
from temba.mailroom.queue import format_datetime
from temba.msgs.models import Msg

MAX_TEXT_LEN = 640  # RapidPro's MSG_FIELD_SIZE
MAX_URNS = 100
FLOW_START_PARAMS_SIZE = 256
INVALID_PARAM_KEY_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def dt(value: datetime | None) -> str | None:
    return format_datetime(value) if value else None


def ref(obj: Any) -> dict[str, Any] | None:
    return {"uuid": str(obj.uuid), "name": obj.name} if obj is not None else None


def urn_text(urn: ContactURN | None) -> str | None:
    return f"{urn.scheme}:{urn.path}" if urn is not None else None


class ReadSerializer(serializers.BaseSerializer):
    """Renders one object as a dict; the view prefetches what `render` touches."""

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return self.render(instance)

    def render(self, instance: Any) -> dict[str, Any]:
        raise NotImplementedError


class MsgReadSerializer(ReadSerializer):
    STATUSES = {
        Msg.STATUS_PENDING: "queued",
        Msg.STATUS_HANDLED: "handled",
        Msg.STATUS_INITIALIZING: "queued",
        Msg.STATUS_QUEUED: "queued",
        Msg.STATUS_WIRED: "wired",
        Msg.STATUS_SENT: "sent",
        Msg.STATUS_DELIVERED: "delivered",
        Msg.STATUS_ERRORED: "errored",
        Msg.STATUS_FAILED: "failed",
    }
    VISIBILITIES = {"V": "visible", "A": "archived"}
    TYPES = {"T": "text", "O": "optin", "V": "voice"}

    def render(self, msg: Msg) -> dict[str, Any]:
        return {
            "id": msg.id,
            "broadcast": None,
            "contact": ref(msg.contact),
            "urn": urn_text(msg.contact_urn),
            "channel": ref(msg.channel),
            "direction": "in" if msg.direction == Msg.DIRECTION_IN else "out",
            "type": self.TYPES.get(msg.msg_type),
            "status": self.STATUSES.get(msg.status),
            "archived": msg.visibility == "A",
            "visibility": self.VISIBILITIES.get(msg.visibility),
            "text": msg.text,
            "labels": [],
            "flow": ref(msg.flow),
            "attachments": [],
            "created_on": dt(msg.created_on),
            "sent_on": dt(msg.sent_on),
            "modified_on": dt(msg.modified_on),
            "media": None,
        }


class ContactReadSerializer(ReadSerializer):
    STATUSES = {"A": "active", "B": "blocked", "S": "stopped", "V": "archived"}

    def render(self, contact: Contact) -> dict[str, Any]:
        active = contact.is_active
        urns = sorted(contact.urns.all(), key=lambda u: (-u.priority, u.id)) if active else []
        return {
            "uuid": str(contact.uuid),
            "name": contact.name if active else None,
            "status": self.STATUSES.get(contact.status) if active else None,
            "language": contact.language if active else None,
            "urns": [urn_text(u) for u in urns],
            "groups": [],
            "fields": self.fields_of(contact) if active else {},
            "flow": ref(contact.current_flow),
            "created_on": dt(contact.created_on),
            "modified_on": dt(contact.modified_on),
            "last_seen_on": None,
            "blocked": contact.status == "B" if active else None,
            "stopped": contact.status == "S" if active else None,
        }

    @staticmethod
    def fields_of(contact: Contact) -> dict[str, Any]:
        # RapidPro keeps typed values ({"text": ..., "number": ...}); the API shows the text.
        values = contact.fields or {}
        return {k: (v.get("text") if isinstance(v, dict) else v) for k, v in values.items()}


class FlowReadSerializer(ReadSerializer):
    TYPES = {"M": "message", "V": "voice", "B": "background", "S": "survey"}

    def render(self, flow: Flow) -> dict[str, Any]:
        definition = flow.definition if isinstance(flow.definition, dict) else {}
        return {
            "uuid": str(flow.uuid),
            "name": flow.name,
            "type": self.TYPES.get(flow.flow_type),
            "archived": False,
            "labels": [],
            "expires": definition.get("expire_after_minutes"),
            "runs": self.context.get("run_counts", {}).get(flow.id, empty_run_counts()),
            "results": flow_results(definition),
            "parent_refs": [],
            "created_on": dt(flow.created_on),
            "modified_on": dt(flow.modified_on),
        }


def empty_run_counts() -> dict[str, int]:
    return {"active": 0, "waiting": 0, "completed": 0, "expired": 0, "interrupted": 0, "failed": 0}


RUN_STATUS_NAMES = {
    "A": "active",
    "W": "waiting",
    "C": "completed",
    "X": "expired",
    "I": "interrupted",
    "F": "failed",
}


def result_key(name: str) -> str:
    """goflow's snakify: the key under which a run stores the result named `name`."""
    return re.sub(r"[^\w]+", "_", name.strip().lower(), flags=re.UNICODE).strip("_")


def flow_results(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The flow's result fields as RapidPro's metadata lists them: one per router with a result name."""
    results: dict[str, dict[str, Any]] = {}
    for node in definition.get("nodes") or []:
        router = node.get("router") if isinstance(node, dict) else None
        if not isinstance(router, dict) or not router.get("result_name"):
            continue
        key = result_key(router["result_name"])
        entry = results.setdefault(
            key, {"key": key, "name": router["result_name"], "categories": [], "node_uuids": []}
        )
        for category in router.get("categories") or []:
            if category.get("name") not in entry["categories"]:
                entry["categories"].append(category.get("name"))
        entry["node_uuids"].append(node.get("uuid"))
    return list(results.values())


class FlowRunReadSerializer(ReadSerializer):
    EXIT_TYPES = {"C": "completed", "I": "interrupted", "X": "expired", "F": "failed"}

    def render(self, run: FlowRun) -> dict[str, Any]:
        contact = run.contact
        urns = sorted(contact.urns.all(), key=lambda u: (-u.priority, u.id))
        return {
            "id": run.id,
            "uuid": str(run.uuid),
            "flow": ref(run.flow),
            "contact": {
                **(ref(contact) or {}),
                "urn": urn_text(urns[0]) if urns else None,
                "urn_display": urns[0].path if urns else None,
            },
            "start": None,
            "responded": run.responded,
            "path": [self.step(s) for s in run.path or []]
            if self.context.get("include_paths", True)
            else None,
            "values": {k: self.result(r) for k, r in (run.results or {}).items() if isinstance(r, dict)},
            "created_on": dt(run.created_on),
            "modified_on": dt(run.modified_on),
            "exited_on": dt(run.exited_on),
            "exit_type": self.EXIT_TYPES.get(run.status),
        }

    @staticmethod
    def step(step: Any) -> dict[str, Any]:
        step = step if isinstance(step, dict) else {}
        return {
            "node": step.get("node_uuid", step.get("node")),
            "time": step.get("arrived_on", step.get("time")),
        }

    @staticmethod
    def result(result: dict[str, Any]) -> dict[str, Any]:
        return {
            "value": result.get("value"),
            "category": result.get("category"),
            "node": result.get("node_uuid"),
            "time": result.get("created_on"),
            "input": result.get("input"),
            "name": result.get("name"),
        }


class FlowStartReadSerializer(ReadSerializer):
    STATUSES = {"P": "pending", "S": "starting", "C": "complete", "F": "failed"}

    def render(self, start: FlowStart) -> dict[str, Any]:
        contacts_by_uuid = self.context.get("start_contacts", {})
        contacts = [contacts_by_uuid.get(u) or {"uuid": u, "name": None} for u in start.contact_uuids or []]
        return {
            "id": start.id,
            "uuid": str(start.uuid),
            "flow": ref(start.flow),
            "status": self.STATUSES.get(start.status),
            "groups": [],
            "contacts": contacts,
            "params": start.params or {},
            "created_on": dt(start.created_on),
            "modified_on": dt(start.modified_on),
            "extra": start.params or {},
            "restart_participants": start.restart_participants,
            "exclude_active": False,
        }


class WriteSerializer(serializers.Serializer):
    """RapidPro's base: the body must be one JSON object."""

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                detail={"non_field_errors": ["Request body should be a single JSON object"]}
            )
        return super().run_validation(data)

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - the views call their own save
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


class NoSuchObjectField(serializers.Field):
    """A reference to a kind of object the stand-in has none of (media, tickets)."""

    def to_internal_value(self, data: Any) -> Any:
        raise serializers.ValidationError(f"No such object: {data}")

    def to_representation(self, value: Any) -> Any:  # pragma: no cover - write only
        return value


class MsgWriteSerializer(WriteSerializer):
    contact = ContactField()
    text = serializers.CharField(required=False, max_length=MAX_TEXT_LEN)
    attachments = serializers.ListField(child=NoSuchObjectField(), required=False, max_length=10)
    ticket = NoSuchObjectField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs.get("text") or attrs.get("attachments")):
            raise serializers.ValidationError("Must provide either text or attachments.")
        return attrs

    def save(self, **kwargs: Any) -> Msg:
        """As RapidPro v9.2.5: mailroom creates and queues the message; the answer is built from mailroom's
        reply without reading the database back. Mailroom's errors are not caught (a 500 for the caller)."""
        org = self.context["org"]
        contact = self.validated_data["contact"]
        reply = mailroom_client().msg_send(
            org.id, self.context["user"].id, contact.id, self.validated_data.get("text") or "", [], None
        )
        return msg_from_send_reply(org, reply)


def msg_from_send_reply(org: Any, reply: dict[str, Any]) -> Msg:
    """A transient (unsaved) message from mailroom's `msg/send` answer, for MsgReadSerializer."""
    sent_channel = reply.get("channel")
    channel = Channel(uuid=sent_channel["uuid"], name=sent_channel["name"]) if sent_channel else None
    contact = Contact(uuid=reply["contact"]["uuid"], name=reply["contact"]["name"])
    contact_urn = None
    if reply.get("urn"):
        # mailroom's URN carries its id as a query (tel:+250...?id=12); the API shows scheme:path
        scheme, _, path = str(reply["urn"]).split("#", 1)[0].split("?", 1)[0].partition(":")
        contact_urn = ContactURN(scheme=scheme, path=path)
    return Msg(
        id=reply["id"],
        org=org,
        contact=contact,
        contact_urn=contact_urn,
        channel=channel,
        direction=Msg.DIRECTION_OUT,
        msg_type=Msg.TYPE_TEXT,
        status=reply["status"],
        visibility=Msg.VISIBILITY_VISIBLE,
        text=reply.get("text") or "",
        created_on=parse_datetime(reply["created_on"]),
        modified_on=parse_datetime(reply["modified_on"]),
    )


def normalize_params(value: Any) -> dict[str, Any]:
    """RapidPro's normalize_extra: keys made safe, strings cut at 640, at most 256 values in all."""
    count = 0

    def walk(item: Any) -> Any:
        nonlocal count
        count += 1
        if isinstance(item, str):
            return item[:640]
        if isinstance(item, bool | int | float):
            return item
        if item is None:
            return ""
        pairs = item.items() if isinstance(item, dict) else ((str(i), v) for i, v in enumerate(item))
        out: dict[str, Any] = {}
        for key, sub in pairs:
            out[INVALID_PARAM_KEY_CHARS.sub("_", str(key))[:255]] = walk(sub)
            if count >= FLOW_START_PARAMS_SIZE:
                break
        return out

    return walk(value)


class FlowStartWriteSerializer(WriteSerializer):
    flow = FlowField()
    contacts = serializers.ListField(child=ContactField(), required=False, max_length=100)
    groups = serializers.ListField(child=NoGroupField(), required=False, max_length=100)
    urns = serializers.ListField(child=URNField(), required=False, max_length=MAX_URNS)
    restart_participants = serializers.BooleanField(required=False)
    exclude_active = serializers.BooleanField(required=False)
    extra = serializers.JSONField(required=False)
    params = serializers.JSONField(required=False)

    def validate_extra(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a valid JSON object")
        return normalize_params(value)

    def validate_params(self, value: Any) -> dict[str, Any]:
        return self.validate_extra(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs.get("groups") or attrs.get("contacts") or attrs.get("urns")):
            raise serializers.ValidationError("Must specify at least one group, contact or URN")
        return attrs
