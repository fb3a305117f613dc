"""Schema evolution guard: is an event's current JSON Schema compatible with the published one?

Consumers read a topic from the beginning, so within one major version every event ever
published must still validate, and every field a consumer was promised must still come. The
rules (checked recursively through objects and array items):

- adding an optional field is compatible (payload models ignore unknown fields);
- removing a field, making a field required that was not, changing a field's type, format,
  constant or pattern, or narrowing what it accepts (fewer enum values, a tighter bound, refusing
  additional properties) is a breaking change, which needs a new major event type (``.v2``).

Published schemas are kept in ``docs/events/published-schemas.json``; ``oto catalogue`` adds new
types and advances compatible ones, and refuses a breaking change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Keywords whose value must not change, nor appear, between published and current versions.
_FIXED = ("type", "format", "const", "pattern", "multipleOf", "anyOf", "oneOf", "allOf")
#: Bounds that may only widen: an upper bound may rise or go, a lower bound may fall or go.
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")
_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems")


def incompatibilities(published: dict[str, Any], current: dict[str, Any], path: str = "") -> list[str]:
    """Every way ``current`` breaks consumers of ``published``; empty when compatible."""
    where = path or "(payload)"
    problems = [f"{where}: '{k}' changed" for k in _FIXED
                if (k in published or k in current) and _strip(published.get(k)) != _strip(current.get(k))]
    problems += [f"{where}: '{k}' narrowed" for k in _UPPER
                 if k in current and (k not in published or current[k] < published[k])]
    problems += [f"{where}: '{k}' narrowed" for k in _LOWER
                 if k in current and (k not in published or current[k] > published[k])]
    if "enum" in current:
        removed = [v for v in published.get("enum", ["(any value)"]) if v not in current["enum"]]
        if removed:
            problems.append(f"{where}: enum values removed: {removed}")
    if current.get("additionalProperties") is False and published.get("additionalProperties") is not False:
        problems.append(f"{where}: additional properties now refused")
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
