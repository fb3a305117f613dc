"""Schema evolution guard: is an event's current JSON Schema compatible with the published one?

Consumers read a topic from the beginning, so within one major version every event ever
published must still validate, and every field a consumer was promised must still come. The
rules (checked recursively through objects and array items):

- adding an optional field is compatible (payload models ignore unknown fields);
- removing a field, making a field required that was not, or changing a field's type, format,
  constant or allowed values (other than adding values to an enum) is a breaking change, which
  needs a new major event type (``.v2``) instead.

Published schemas are kept in ``docs/events/published-schemas.json``; ``oto catalogue`` adds new
types and advances compatible ones, and refuses a breaking change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Keywords whose value must not change between published and current versions.
_FIXED = ("type", "format", "const", "pattern", "anyOf", "oneOf", "allOf")


def incompatibilities(published: dict[str, Any], current: dict[str, Any], path: str = "") -> list[str]:
    """Every way ``current`` breaks consumers of ``published``; empty when compatible."""
    problems: list[str] = []
    where = path or "(payload)"
    for keyword in _FIXED:
        if keyword in published and _strip(published.get(keyword)) != _strip(current.get(keyword)):
            problems.append(f"{where}: '{keyword}' changed")
    if "enum" in published:
        removed = [v for v in published["enum"] if v not in current.get("enum", published["enum"])]
        if removed or "enum" not in current:
            problems.append(f"{where}: enum values removed: {removed or 'all'}")
    old_props, new_props = published.get("properties", {}), current.get("properties", {})
    for name, old in old_props.items():
        child = f"{path}.{name}" if path else name
        if name not in new_props:
            problems.append(f"{child}: removed")
        else:
            problems += incompatibilities(old, new_props[name], child)
    newly_required = set(current.get("required", [])) - set(published.get("required", []))
    problems += [f"{path + '.' if path else ''}{name}: now required" for name in sorted(newly_required)]
    if isinstance(published.get("items"), dict) and isinstance(current.get("items"), dict):
        problems += incompatibilities(published["items"], current["items"], f"{path}[]")
    return problems


def _strip(value: Any) -> Any:
    """Compare schemas by structure, not by their human-readable titles and descriptions."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in {"title", "description", "examples"}}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


class BreakingChange(ValueError):
    """A registered event type's schema no longer accepts what was published under it."""


def load_published(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else {}


def advance_published(published: dict[str, dict[str, Any]],
                      current: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The next published set: new types added, compatible changes taken, breaking ones refused."""
    problems = {t: incompatibilities(published[t], s) for t, s in current.items() if t in published}
    problems = {t: p for t, p in problems.items() if p}
    gone = sorted(set(published) - set(current))
    if problems or gone:
        lines = [f"{t}: {'; '.join(p)}" for t, p in sorted(problems.items())]
        lines += [f"{t}: published but no longer registered" for t in gone]
        raise BreakingChange("breaking change to published events (make a new major version):\n"
                             + "\n".join(lines))
    return {**published, **current}
