"""The External (EX) channel's outgoing request: config keys, body template and encodings as courier v9."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from .channels import Channel

CONTENT_URLENCODED = "urlencoded"
CONTENT_JSON = "json"
CONTENT_XML = "xml"

CONTENT_TYPE_HEADERS = {
    CONTENT_URLENCODED: "application/x-www-form-urlencoded",
    CONTENT_JSON: "application/json",
    CONTENT_XML: "text/xml; charset=utf-8",
}

# RapidPro's EX claim form fills this in when the user leaves the body empty
DEFAULT_BODY = (
    "id={{id}}&text={{text}}&to={{to}}&to_no_plus={{to_no_plus}}&from={{from}}"
    "&from_no_plus={{from_no_plus}}&channel={{channel}}"
)
DEFAULT_MAX_LENGTH = 160


@dataclass(frozen=True)
class SendRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    response_check: str


def split_text(text: str, max_length: int) -> list[str]:
    """Parts of at most `max_length` UTF-8 bytes, cut at a space near the end of a part when there is one."""
    if len(text.encode()) <= max_length:
        return [text]
    parts: list[str] = []
    current = ""
    size = 0
    for char in text:
        current += char
        size += len(char.encode())
        if size >= max_length or (size > max_length - 6 and char == " "):
            parts.append(current.strip())
            current, size = "", 0
    if current:
        parts.append(current.strip())
    return parts


def _go_json_string(value: str) -> str:
    # Go's encoding/json escapes HTML characters and the JS line separators
    encoded = json.dumps(value, ensure_ascii=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        encoded = encoded.replace(char, escape)
    return encoded


def _xml_text(value: str) -> str:
    replacements = {
        '"': "&#34;",
        "'": "&#39;",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "\t": "&#x9;",
        "\n": "&#xA;",
        "\r": "&#xD;",
    }
    return "".join(replacements.get(char, char) for char in value)


def encode_value(value: str, content_type: str) -> str:
    if content_type == CONTENT_JSON:
        return _go_json_string(value)
    if content_type == CONTENT_URLENCODED:
        return quote_plus(value, safe="")
    if content_type == CONTENT_XML:
        return _xml_text(value)
    return value


def _quick_replies(content_type: str, method: str) -> str:
    # the stand-in sends no quick replies; the empty value differs by encoding as in courier
    if method in ("POST", "PUT") and content_type == CONTENT_JSON:
        return "[]"
    return ""


def replace_variables(template: str, variables: dict[str, str]) -> str:
    for name, value in variables.items():
        template = template.replace("{{" + name + "}}", value)
    return template


def build_requests(channel: Channel, msg: dict[str, Any], user_agent: str) -> list[SendRequest]:
    """One HTTP request per text part of an outgoing message; ValueError when the channel has no send_url."""
    send_url = channel.string_config("send_url", "")
    if not send_url:
        raise ValueError("channel config invalid: no send_url")
    method = channel.string_config("method", "POST").upper()
    body_template = channel.string_config("body", DEFAULT_BODY)
    max_length = channel.int_config("max_length", DEFAULT_MAX_LENGTH)
    content_type = channel.string_config("content_type", CONTENT_URLENCODED)
    content_type_header = CONTENT_TYPE_HEADERS.get(content_type, content_type)
    response_check = channel.string_config("mt_response_check", "")
    authorization = channel.string_config("send_authorization", "")
    extra_headers = channel.config.get("headers") or {}

    urn = str(msg.get("urn", ""))
    to = urn.partition(":")[2].split("?", 1)[0]
    address = channel.address
    requests: list[SendRequest] = []
    for part in split_text(str(msg.get("text", "")), max_length):
        variables = {
            "id": str(msg.get("id", "")),
            "text": part,
            "to": to,
            "to_no_plus": to.removeprefix("+"),
            "from": address,
            "from_no_plus": address.removeprefix("+"),
            "channel": channel.uuid,
            "session_status": str(msg.get("session_status") or ""),
        }
        url_values = {k: encode_value(v, CONTENT_URLENCODED) for k, v in variables.items()}
        url_values["quick_replies"] = ""
        url = replace_variables(send_url, url_values)
        body: bytes | None = None
        if method in ("POST", "PUT"):
            body_values = {k: encode_value(v, content_type) for k, v in variables.items()}
            body_values["quick_replies"] = _quick_replies(content_type, method)
            body = replace_variables(body_template, body_values).encode()
        headers = {"Content-Type": content_type_header, "User-Agent": user_agent}
        if authorization:
            headers["Authorization"] = authorization
        if isinstance(extra_headers, dict):
            headers.update({str(k): str(v) for k, v in extra_headers.items()})
        requests.append(SendRequest(method, url, headers, body, response_check))
    return requests
