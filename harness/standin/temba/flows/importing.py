"""Reading RapidPro flow exports (spec 13) and importing their flows and keyword triggers into an org."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from temba.flows.models import Flow
from temba.orgs.models import Org
from temba.triggers.models import Trigger

MIN_EXPORT_VERSION = (
    13  # goflow's spec 13: older exports need RapidPro's migrations, which the stand-in lacks
)
FLOW_TYPES = {"messaging": "M", "voice": "V", "messaging_background": "B", "messaging_offline": "S"}
TRIGGER_TYPES = {"K": Trigger.TYPE_KEYWORD, "C": Trigger.TYPE_CATCH_ALL}
MATCH_TYPES = {"F", "O"}
MAX_KEYWORD_LEN = 16
MAX_FLOW_NAME_LEN = 64


class FlowExportError(ValueError):
    """An export file that is not a usable RapidPro flow export; the message names the file and the place."""


@dataclass(frozen=True)
class ExportedTrigger:
    trigger_type: str
    keywords: list[str]
    match_type: str | None
    flow_uuid: str


@dataclass
class FlowExport:
    path: Path
    flows: list[dict[str, Any]] = field(default_factory=list)
    triggers: list[ExportedTrigger] = field(default_factory=list)


def export_files(sources: list[Path]) -> list[Path]:
    """Each source is a file, or a directory whose *.json files are taken in name order."""
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            found = sorted(source.glob("*.json"))
            if not found:
                raise FlowExportError(f"{source}: directory holds no *.json flow export")
            files.extend(found)
        elif source.is_file():
            files.append(source)
        else:
            raise FlowExportError(f"{source}: no such file or directory")
    return files


def _require(condition: bool, path: Path, where: str, expected: str) -> None:
    if not condition:
        raise FlowExportError(f"{path}: {where}: expected {expected}")


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def read_export(path: Path) -> FlowExport:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FlowExportError(
            f"{path}: line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowExportError(f"{path}: cannot be read ({exc})") from None
    _require(isinstance(document, dict), path, "top level", 'a JSON object with "version" and "flows"')
    version = str(document.get("version", ""))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = -1
    _require(
        major >= MIN_EXPORT_VERSION,
        path,
        '"version"',
        f"an export version >= {MIN_EXPORT_VERSION}, got {version!r}",
    )
    flows = document.get("flows")
    _require(isinstance(flows, list) and bool(flows), path, '"flows"', "a non-empty list of flow objects")
    export = FlowExport(path=path)
    for index, flow in enumerate(flows):
        where = f"flows[{index}]"
        _require(isinstance(flow, dict), path, where, "a flow object")
        _require(_is_uuid(flow.get("uuid")), path, f"{where}.uuid", "a UUID string")
        name = flow.get("name")
        _require(
            isinstance(name, str) and 0 < len(name) <= MAX_FLOW_NAME_LEN,
            path,
            f"{where}.name",
            f"a name of 1 to {MAX_FLOW_NAME_LEN} characters",
        )
        _require(
            isinstance(flow.get("spec_version"), str), path, f"{where}.spec_version", 'a string like "13.0.0"'
        )
        _require(
            flow.get("type", "messaging") in FLOW_TYPES, path, f"{where}.type", f"one of {sorted(FLOW_TYPES)}"
        )
        nodes = flow.get("nodes")
        _require(isinstance(nodes, list) and bool(nodes), path, f"{where}.nodes", "a non-empty list of nodes")
        for node_index, node in enumerate(nodes):
            _require(
                isinstance(node, dict) and _is_uuid(node.get("uuid")),
                path,
                f"{where}.nodes[{node_index}]",
                "a node object with a UUID",
            )
        export.flows.append(flow)
    flow_uuids = {f["uuid"] for f in export.flows}
    for index, trigger in enumerate(document.get("triggers") or []):
        export.triggers.append(_read_trigger(path, f"triggers[{index}]", trigger, flow_uuids))
    return export


def _read_trigger(path: Path, where: str, trigger: Any, flow_uuids: set[str]) -> ExportedTrigger:
    _require(isinstance(trigger, dict), path, where, "a trigger object")
    trigger_type = trigger.get("trigger_type")
    flow_uuid = (trigger.get("flow") or {}).get("uuid")
    _require(flow_uuid in flow_uuids, path, f"{where}.flow.uuid", "the UUID of a flow in the same export")
    if trigger_type not in TRIGGER_TYPES:
        # other trigger kinds (schedules, missed calls, …) have no part in the stand-in: keep them out
        return ExportedTrigger(
            trigger_type=str(trigger_type), keywords=[], match_type=None, flow_uuid=flow_uuid
        )
    keywords: list[str] = []
    if trigger_type == "K":
        raw = trigger.get("keywords") or ([trigger["keyword"]] if trigger.get("keyword") else [])
        _require(
            bool(raw) and all(isinstance(k, str) and 0 < len(k) <= MAX_KEYWORD_LEN for k in raw),
            path,
            f"{where}.keyword",
            f"keywords of 1 to {MAX_KEYWORD_LEN} characters",
        )
        keywords = [k.lower() for k in raw]
    match_type = trigger.get("match_type") or ("F" if trigger_type == "K" else None)
    _require(match_type is None or match_type in MATCH_TYPES, path, f"{where}.match_type", "F or O")
    return ExportedTrigger(trigger_type, keywords, match_type, flow_uuid)


@transaction.atomic
def import_export(org: Org, export: FlowExport) -> dict[str, str]:
    """Create or update the export's flows and keyword/catch-all triggers in `org`; returns {name: uuid}."""
    imported: dict[str, str] = {}
    flows_by_uuid: dict[str, Flow] = {}
    now = timezone.now()
    for definition in export.flows:
        existing = Flow.objects.filter(uuid=definition["uuid"]).first()
        if existing is not None and existing.org_id != org.id:
            raise FlowExportError(
                f"{export.path}: flow {definition['name']!r} ({definition['uuid']}) "
                "already belongs to another org"
            )
        flow, _ = Flow.objects.update_or_create(
            uuid=definition["uuid"],
            defaults={
                "org": org,
                "name": definition["name"],
                "flow_type": FLOW_TYPES[definition.get("type", "messaging")],
                "spec_version": definition["spec_version"],
                "definition": definition,
                "is_active": True,
                "modified_on": now,
            },
        )
        flows_by_uuid[definition["uuid"]] = flow
        imported[flow.name] = str(flow.uuid)
    for trigger in export.triggers:
        if trigger.trigger_type not in TRIGGER_TYPES:
            continue
        flow = flows_by_uuid[trigger.flow_uuid]
        Trigger.objects.get_or_create(
            org=org,
            trigger_type=TRIGGER_TYPES[trigger.trigger_type],
            keywords=trigger.keywords or None,
            match_type=trigger.match_type,
            flow=flow,
            defaults={"is_active": True},
        )
    return imported
