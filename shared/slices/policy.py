"""The slice-policy mechanism: which department receives which event, and which fields of it.

The rules themselves live beside this module, one module per producing service, and are
collected in ``shared.slices.POLICY``. A rule is an allow-list: a field not named is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.departments import Department
from shared.events.envelope import Envelope
from shared.events.registry import DomainEvent

#: Every department event carries these, so dashboards can join on the one family entry point.
ALWAYS_INCLUDED = ("family_id", "site_id")
#: In a ``when`` condition, stands for the receiving department itself.
OWN_DEPARTMENT = "$own"


@dataclass(frozen=True)
class SliceRule:
    """One department may receive one event type, restricted to ``fields``, for ``reason``.

    ``fields`` are dotted paths; a path through a list applies to each item
    (``members.person_id``). ``when`` maps a payload field to the values that let the event
    through; ``OWN_DEPARTMENT`` matches the receiving department (a referral to it, its charge).
    """

    department: Department
    event: type[DomainEvent]
    fields: tuple[str, ...]
    reason: str
    when: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def applies_to(self, data: Mapping[str, Any]) -> bool:
        for name, allowed in self.when.items():
            value = data.get(name)
            values = set(value) if isinstance(value, list) else {value}
            wanted = {self.department.value if v == OWN_DEPARTMENT else v for v in allowed}
            if not {str(v) for v in values if v is not None} & wanted:
                return False
        return True

    def project(self, data: Mapping[str, Any]) -> dict[str, Any]:
        projected: dict[str, Any] = {}
        for path in (*ALWAYS_INCLUDED, *self.fields):
            _copy_path(data, projected, path.split("."))
        return projected


def when(**conditions: str | Iterable[str]) -> dict[str, frozenset[str]]:
    """Build a ``when`` mapping: ``when(kind="school_absence", department=OWN_DEPARTMENT)``."""
    return {
        name: frozenset([value] if isinstance(value, str) else value)
        for name, value in conditions.items()
    }


class SlicePolicy:
    """Projects events onto the department topics. Events with no rule go nowhere, and a family
    event naming the departments its family's consent covers (``shared_with``) goes to no other."""

    def __init__(self, rules: Iterable[SliceRule]) -> None:
        self.rules = tuple(rules)
        self._by_type: dict[str, list[SliceRule]] = {}
        for rule in self.rules:
            if not rule.reason.strip():
                raise ValueError(f"slice rule without a reason: {rule}")
            self._by_type.setdefault(rule.event.event_type, []).append(rule)

    def rules_for(self, event_type: str) -> list[SliceRule]:
        return self._by_type.get(event_type, [])

    def project(self, envelope: Envelope) -> list[tuple[Department, Envelope]]:
        """The department copies of one event, in rule order, one per department at most."""
        out: list[tuple[Department, Envelope]] = []
        seen: set[Department] = set()
        shared_with = envelope.data.get("shared_with")
        for rule in self.rules_for(envelope.type):
            if rule.department in seen or not rule.applies_to(envelope.data):
                continue
            if shared_with is not None and rule.department.value not in shared_with:
                continue  # the family's consent does not cover this department
            seen.add(rule.department)
            out.append((rule.department, envelope.with_data(rule.project(envelope.data))))
        return out

    def allowed_fields(self, department: Department, event_type: str) -> tuple[str, ...]:
        for rule in self.rules_for(event_type):
            if rule.department is department:
                return (*ALWAYS_INCLUDED, *rule.fields)
        return ()


def _copy_path(source: Any, target: dict[str, Any], path: list[str]) -> None:
    head, rest = path[0], path[1:]
    if not isinstance(source, Mapping) or head not in source:
        return
    value = source[head]
    if not rest:
        target[head] = value
    elif isinstance(value, list):
        items = target.setdefault(head, [{} for _ in value])
        for item_source, item_target in zip(value, items, strict=True):
            _copy_path(item_source, item_target, rest)
    elif isinstance(value, Mapping):
        _copy_path(value, target.setdefault(head, {}), rest)
