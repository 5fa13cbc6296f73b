"""Keyword triggers from an export's "triggers" array, and mailroom's rule for matching them.

Which keyword starts which flow is seed data that travels with the flows, as in RapidPro exports.
Matching follows mailroom v9 (FindMatchingMsgTrigger): the keyword is the first word of the message
(goflow's tokenizer, case-insensitive); a "only word" (O) trigger needs the message to be that word.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .definition import _read_source
from .errors import FlowError
from .text import collate_equals, tokenize

MATCH_FIRST_WORD = "F"
MATCH_ONLY_WORD = "O"


@dataclass(frozen=True)
class KeywordTrigger:
    keywords: tuple[str, ...]
    match_type: str  # F first word, O only word
    flow_uuid: str
    flow_name: str


def load_triggers(source: str | Path | Mapping[str, Any]) -> list[KeywordTrigger]:
    """The keyword triggers of an export (other trigger types are not the flow engine's business).

    Reads RapidPro's current form (`keywords` + `match_type`) and the older single `keyword`.
    """
    data, where = _read_source(source)
    if not isinstance(data, dict):
        raise FlowError(f"{where}: expected a JSON object (an export), found {type(data).__name__}")
    items = data.get("triggers", [])
    if not isinstance(items, list):
        raise FlowError(f"{where}: 'triggers' must be a list, found {type(items).__name__}")
    triggers = []
    for index, item in enumerate(items):
        at = f"{where}: triggers[{index}]"
        if not isinstance(item, dict):
            raise FlowError(f"{at}: expected an object, found {type(item).__name__}")
        if item.get("trigger_type") != "K":
            continue
        keywords = item.get("keywords")
        if keywords is None and isinstance(item.get("keyword"), str):
            keywords = [item["keyword"]]
        if not isinstance(keywords, list) or not keywords or not all(isinstance(k, str) and k for k in keywords):
            raise FlowError(f"{at}: a keyword trigger needs 'keywords', a non-empty list of words, found {keywords!r}")
        match_type = item.get("match_type") or MATCH_FIRST_WORD
        if match_type not in (MATCH_FIRST_WORD, MATCH_ONLY_WORD):
            raise FlowError(f"{at}: 'match_type' must be 'F' or 'O', found {match_type!r}")
        flow = item.get("flow")
        if not isinstance(flow, dict) or not isinstance(flow.get("uuid"), str):
            raise FlowError(f"{at}: 'flow' must be an object with the flow's 'uuid', found {flow!r}")
        triggers.append(KeywordTrigger(tuple(keywords), match_type, flow["uuid"], str(flow.get("name", ""))))
    return triggers


def match_keyword_trigger(triggers: Iterable[KeywordTrigger], text: str) -> KeywordTrigger | None:
    """The trigger an inbound message fires, or None (the message then goes to a waiting session)."""
    words = tokenize(text)
    if not words:
        return None
    keyword, only = words[0], len(words) == 1
    for trigger in triggers:
        if trigger.match_type == MATCH_ONLY_WORD and not only:
            continue
        if any(collate_equals(candidate, keyword) for candidate in trigger.keywords):
            return trigger
    return None
