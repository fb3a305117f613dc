"""Schema evolution: additions are compatible, breaking changes fail CI (RELIABILITY item 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.catalogue import PUBLISHED_SCHEMAS, published_schemas
from shared.events import REGISTRY
from shared.events.compat import BreakingChange, advance_published, incompatibilities, load_published
from shared.settings import SERVICES

ROOT = Path(__file__).resolve().parents[2]

PUBLISHED: dict[str, Any] = {
    "type": "object",
    "required": ["family_id", "status"],
    "properties": {
        "family_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["unemployed", "job"]},
        "hours": {"type": "integer"},
        "members": {"type": "array", "items": {"type": "object", "properties": {"role": {"type": "string"}}}},
    },
}


def changed(**edits: Any) -> dict[str, Any]:
    """A copy of the published schema with top-level properties replaced (None removes one)."""
    properties = {**PUBLISHED["properties"], **edits}
    return {**PUBLISHED, "properties": {k: v for k, v in properties.items() if v is not None}}


def test_adding_an_optional_field_or_an_enum_value_is_compatible() -> None:
    current = changed(note_count={"type": "integer"},
                      status={"type": "string", "enum": ["unemployed", "job", "flex_job"]})
    assert incompatibilities({**PUBLISHED, "properties": {"n": {"type": "integer", "maximum": 5}}},
                             {**PUBLISHED, "properties": {"n": {"type": "integer", "maximum": 9}}}) == []
    assert incompatibilities(PUBLISHED, current) == []


@pytest.mark.parametrize(("current", "expected"), [
    (changed(hours=None), "hours: removed"),
    ({**PUBLISHED, "required": ["family_id", "status", "hours"]}, "hours: now required"),
    (changed(hours={"type": "string"}), "hours: 'type' changed"),
    (changed(family_id={"type": "string"}), "family_id: 'format' changed"),
    (changed(status={"type": "string", "enum": ["job"]}), "status: enum values removed: ['unemployed']"),
    (changed(members={"type": "array", "items": {"type": "object", "properties": {}}}),
     "members[].role: removed"),
    (changed(hours={"type": "integer", "maximum": 37}), "hours: 'maximum' narrowed"),
    (changed(family_id={"type": "string", "format": "uuid", "pattern": "^[0-9a-f-]+$"}),
     "family_id: 'pattern' changed"),
    (changed(members={"type": "array", "maxItems": 7, "items": PUBLISHED["properties"]["members"]["items"]}),
     "members: 'maxItems' narrowed"),
    ({**PUBLISHED, "additionalProperties": False}, "(payload): additional properties now refused"),
])
def test_breaking_changes_are_named(current: dict[str, Any], expected: str) -> None:
    assert expected in incompatibilities(PUBLISHED, current)


def test_advancing_refuses_a_breaking_change_and_a_dropped_type() -> None:
    with pytest.raises(BreakingChange, match="hours: removed"):
        advance_published({"t.v1": PUBLISHED}, {"t.v1": changed(hours=None)})
    with pytest.raises(BreakingChange, match="no longer registered"):
        advance_published({"t.v1": PUBLISHED}, {})
    both = {"t.v1": PUBLISHED, "t.v2": {}}
    assert advance_published({"t.v1": PUBLISHED}, both) == both


def test_every_registered_event_is_compatible_with_what_was_published() -> None:
    published = load_published(ROOT / "docs/events" / PUBLISHED_SCHEMAS)
    current = published_schemas()
    assert published, "docs/events/published-schemas.json is missing: run `oto catalogue`"
    advance_published(published, current)  # raises on a breaking change, naming it
    unpublished = sorted(set(current) - set(published))
    assert not unpublished, f"new event types not yet published: {unpublished}: run `oto catalogue`"
    stale = sorted(t for t in current if published[t] != current[t])
    assert not stale, f"compatible changes not yet published: {stale}: run `oto catalogue`"


def test_an_old_consumer_accepts_an_event_with_an_added_field() -> None:
    # A product event type with an example: other tests register test-only types in the same
    # registry, and which come first depends on what the run imported.
    spec = next(s for s in REGISTRY if s.service in SERVICES and s.examples())
    payload = {**spec.examples()[0], "a_field_added_in_a_later_minor_version": {"any": "thing"}}
    as_before = REGISTRY.parse(spec.type, spec.examples()[0]).model_dump(mode="json")
    assert REGISTRY.parse(spec.type, payload).model_dump(mode="json") == as_before
