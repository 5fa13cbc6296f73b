"""Courier's JSON answers: {"message": ..., "data": [...]}."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .inbound import IncomingMsg
from .statuses import StatusUpdate
from .timefmt import rfc3339


def go_json(value: object) -> str:
    """JSON as Go's json.Encoder writes it: compact, UTF-8, HTML characters escaped, a final newline."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text + "\n"


def data_response(status: int, message: str, data: list[dict[str, Any]]) -> web.Response:
    return web.Response(
        text=go_json({"message": message, "data": data}), status=status, content_type="application/json"
    )


def error_response(*errors: str) -> web.Response:
    """Every handler error is a 400 with the error text(s)."""
    return data_response(400, "Error", [{"type": "error", "error": text} for text in errors])


def msg_accepted(msg: IncomingMsg) -> web.Response:
    item: dict[str, Any] = {
        "type": "msg",
        "channel_uuid": msg.channel.uuid,
        "msg_uuid": msg.uuid,
        "text": msg.text,
        "urn": msg.urn.identity,
    }
    if msg.attachments:
        item["attachments"] = msg.attachments
    if msg.external_id:
        item["external_id"] = msg.external_id
    if msg.received_on is not None:
        item["received_on"] = rfc3339(msg.received_on)
    return data_response(200, "Message Accepted", [item])


def status_accepted(update: StatusUpdate) -> web.Response:
    item: dict[str, Any] = {"type": "status", "channel_uuid": update.channel_uuid, "status": update.status}
    if update.msg_id:
        item["msg_id"] = update.msg_id
    return data_response(200, "Status Update Accepted", [item])
