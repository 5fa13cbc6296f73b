"""Reading the fields of a courier send, whatever content type the channel's body template uses."""

from __future__ import annotations

import json
from urllib.parse import parse_qs
from xml.etree import ElementTree

FIELDS = ("id", "to", "from", "text", "channel")


def parse_send(content_type: str, body: bytes, query: dict[str, str]) -> dict[str, str]:
    """The send's fields: body values (urlencoded, JSON or XML) over query-string values."""
    values = {name: query[name] for name in FIELDS if name in query}
    if not body:
        return values
    kind = content_type.lower()
    text = body.decode("utf-8", errors="replace")
    if "json" in kind or text.lstrip().startswith("{"):
        document = json.loads(text)
        if isinstance(document, dict):
            values.update({k: _as_text(document[k]) for k in FIELDS if k in document})
    elif "xml" in kind or text.lstrip().startswith("<"):
        root = ElementTree.fromstring(text)
        for name in FIELDS:
            element = root if root.tag == name else root.find(f".//{name}")
            if element is not None:
                values[name] = element.text or ""
    else:
        parsed = parse_qs(text, keep_blank_values=True)
        values.update({k: parsed[k][0] for k in FIELDS if k in parsed})
    return values


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)
