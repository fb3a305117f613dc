"""The event catalogue: an AsyncAPI 3.0 document and a readable page, generated from the
registry and the slice policy, so code and documentation cannot drift apart.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from shared.departments import Department
from shared.events.compat import advance_published, load_published
from shared.events.envelope import Envelope
from shared.events.registry import REGISTRY, EventSpec
from shared.settings import SERVICES
from shared.slices import SlicePolicy, default_policy
from shared.slices.policy import SliceRule

#: The schemas consumers were promised, per event type; see ``shared/events/compat.py``.
PUBLISHED_SCHEMAS = "published-schemas.json"

CE_HEADERS = {
    "type": "object",
    "required": ["ce_specversion", "ce_id", "ce_type", "ce_source"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "description": "Unique per source; consumers dedupe by (source, id)."},
        "ce_type": {"type": "string"},
        "ce_source": {"type": "string", "description": "/oto/<service>"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string"},
        "content-type": {"type": "string", "const": "application/json"},
        "oto_correlation_id": {"type": "string", "description": "The HTTP request id that caused it."},
    },
}


def _specs() -> list[EventSpec]:
    return [spec for spec in REGISTRY if spec.service in SERVICES]


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """Resolve ``$ref`` to ``$defs`` in place, so every message schema stands alone."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node and node["$ref"].startswith("#/$defs/"):
                return resolve(copy.deepcopy(defs[node["$ref"].split("/")[-1]]))
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _project_schema(schema: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """The schema of a department slice: only the allowed (dotted) properties."""
    out: dict[str, Any] = {k: v for k, v in schema.items() if k not in {"properties", "required", "$id"}}
    out["properties"] = {}
    for path in paths:
        _copy_schema_path(schema, out, path.split("."))
    out["required"] = [r for r in schema.get("required", []) if r in out["properties"]]
    return out


def _copy_schema_path(source: dict[str, Any], target: dict[str, Any], path: list[str]) -> None:
    head, rest = path[0], path[1:]
    prop = source.get("properties", {}).get(head)
    if prop is None:
        return
    if not rest:
        target.setdefault("properties", {})[head] = prop
        return
    inner_source = prop.get("items", prop) if prop.get("type") == "array" else prop
    existing = target.setdefault("properties", {}).get(head)
    if existing is None:
        shell = {k: v for k, v in inner_source.items() if k not in {"properties", "required"}}
        existing = ({**{k: v for k, v in prop.items() if k != "items"}, "items": shell}
                    if prop.get("type") == "array" else shell)
        target["properties"][head] = existing
    _copy_schema_path(inner_source, existing.get("items", existing), rest)


def _message_key(spec: EventSpec, department: Department | None = None) -> str:
    base = f"{spec.service}.{spec.name}.v{spec.version}"
    return f"{department.value}.{base}" if department else base


def _example_envelope(spec: EventSpec, example: dict[str, Any]) -> Envelope:
    return Envelope(type=spec.type, source=f"/oto/{spec.service}", key="example", data=example)


def _message(spec: EventSpec, schema_key: str, examples: list[dict[str, Any]],
             reason: str | None = None) -> dict[str, Any]:
    description = spec.model.__doc__ or ""
    if reason:
        description += f"\n\nWhy this department receives it: {reason}"
    return {
        "name": spec.type,
        "title": spec.model.__name__,
        "summary": spec.summary,
        "description": description.strip(),
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
        "payload": {"$ref": f"#/components/schemas/{schema_key}"},
        "examples": [{"name": f"example{i + 1}", "payload": ex} for i, ex in enumerate(examples)],
        "bindings": {"kafka": {"key": {"type": "string", "description": "family_id or aggregate id"},
                               "bindingVersion": "0.5.0"}},
    }


def asyncapi_document(policy: SlicePolicy | None = None, namespace: str = "oto") -> dict[str, Any]:
    """The whole catalogue: domain topics, department topics, message schemas, examples."""
    policy = policy or default_policy()
    schemas: dict[str, Any] = {"CloudEventsHeaders": CE_HEADERS}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for service in SERVICES:
        specs = [s for s in _specs() if s.service == service]
        channel_id = f"{service}Events"
        channel_messages = {}
        for spec in specs:
            key = _message_key(spec)
            schemas[key] = _inline(spec.json_schema())
            messages[key] = _message(spec, key, spec.examples())
            channel_messages[key] = {"$ref": f"#/components/messages/{key}"}
        channels[channel_id] = {
            "address": f"{namespace}.{service}.events",
            "title": f"{service} domain events",
            "description": f"Every event of the {service} service, in full. Read by the other services.",
            "messages": channel_messages,
        }
        operations[f"publish{service.title()}Events"] = _operation("send", channel_id, channel_messages)
    for department in Department:
        channel_id = f"department.{department.value}"
        channel_messages = {}
        for spec in _specs():
            rule = _rule(policy, department, spec)
            if rule is None:
                continue
            key = _message_key(spec, department)
            schemas[key] = _project_schema(_inline(spec.json_schema()), policy.allowed_fields(
                department, spec.type))
            examples = [rule.project(ex) for ex in spec.examples() if rule.applies_to(ex)]
            messages[key] = _message(spec, key, examples or [rule.project(spec.examples()[0])],
                                     rule.reason)
            channel_messages[key] = {"$ref": f"#/components/messages/{key}"}
        channels[channel_id] = {
            "address": f"{namespace}.department.{department.value}",
            "title": department.danish_name,
            "description": f"The slice of {department.danish_name}: only the events and fields "
                           "the slice policy allows it.",
            "messages": channel_messages,
        }
        operations[f"receive.{department.value}"] = _operation("receive", channel_id, channel_messages)
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Opgang til Opgang events", "version": "1.0.0",
                 "description": "CloudEvents 1.0 in Kafka binary mode. Domain topics carry full "
                                "events; department topics carry each department's slice."},
        "defaultContentType": "application/json",
        "servers": {
            "production": {"host": "kafka:9092", "protocol": "kafka",
                           "description": "Apache Kafka (compose), SASL/SCRAM per user"},
            "embedded": {"host": "127.0.0.1:9092", "protocol": "kafka",
                         "description": "The local broker started by ./run.sh"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _rule(policy: SlicePolicy, department: Department, spec: EventSpec) -> SliceRule | None:
    return next((r for r in policy.rules_for(spec.type) if r.department is department), None)


def _operation(action: str, channel_id: str, channel_messages: dict[str, Any]) -> dict[str, Any]:
    return {"action": action, "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{key}"} for key in channel_messages]}


def catalogue_markdown(policy: SlicePolicy | None = None) -> str:
    """The human-readable page, from the same source as the AsyncAPI document."""
    policy = policy or default_policy()
    lines = ["# Event catalogue", "",
             "Generated by `oto catalogue` from the event registry and the slice policy; do not edit.",
             "", "| event type | service | summary | " + " | ".join(d.value for d in Department) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in Department) + " |"]
    for spec in _specs():
        cells = []
        for department in Department:
            rule = _rule(policy, department, spec)
            cells.append("—" if rule is None else ", ".join(rule.fields) or "(ids only)")
        lines.append(f"| `{spec.type}` | {spec.service} | {spec.summary} | " + " | ".join(cells) + " |")
    lines += ["", "## Why each department receives what it receives", ""]
    for department in Department:
        lines.append(f"### {department.danish_name} (`oto.department.{department.value}`)")
        lines.append("")
        rules = [r for r in policy.rules if r.department is department and
                 r.event.event_type.split(".")[3] in SERVICES]
        for rule in sorted(rules, key=lambda r: r.event.event_type):
            condition = ""
            if rule.when:
                condition = " when " + ", ".join(f"{k} ∈ {sorted(v)}" for k, v in rule.when.items())
            lines.append(f"- `{rule.event.event_type}`{condition}: {rule.reason}")
        lines.append("")
    return "\n".join(lines)


def published_schemas() -> dict[str, dict[str, Any]]:
    """The current payload schema of every event type, standing alone, as consumers rely on it."""
    return {spec.type: _inline(spec.json_schema()) for spec in _specs()}


def write_catalogue(docs_dir: Path) -> list[Path]:
    """Write the AsyncAPI document, the page and the published schemas (refusing breaking changes)."""
    target = docs_dir / "events"
    target.mkdir(parents=True, exist_ok=True)
    published = target / PUBLISHED_SCHEMAS
    advanced = advance_published(load_published(published), published_schemas())
    published.write_text(json.dumps(advanced, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    asyncapi = target / "asyncapi.json"
    asyncapi.write_text(json.dumps(asyncapi_document(), indent=2, ensure_ascii=False) + "\n")
    page = target / "catalogue.md"
    page.write_text(catalogue_markdown() + "\n")
    return [asyncapi, page, published]
