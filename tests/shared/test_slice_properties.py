"""Property tests: a department's projection holds only allow-listed fields and no personal data.

Payloads are generated from each event's examples with hostile values put into every field the
contract accepts them in: a CPR number, a name, a note. Whatever a producer could put in an event,
no department slice may carry it, so a free-text field in a slice fails here, and the cure is to
constrain the field (``shared.codes.Code``) or leave it out of the slice.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.departments import Department
from shared.events import REGISTRY, FamilyEvent
from shared.events.envelope import Envelope
from shared.observability import CPR_SHAPE
from shared.settings import SERVICES
from shared.slices import default_policy

FORBIDDEN_NAMES = {"cpr", "name", "first_name", "last_name", "address", "note", "notes", "text",
                   "description", "wishes"}
HOSTILE = ["0101901234", "010190-1234", "Fatima Hassan", "Bygaden 1, 8220 Brabrand",
           "Note: the father has stopped taking his medicine", "fatima hassan 0101901234"]
SPECS = [spec for spec in REGISTRY if spec.service in SERVICES]


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, (*path, i))]
    return [(path, value)]


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path if not isinstance(p, int))


def _replaced(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def _allowed(paths: tuple[str, ...], leaf: str) -> bool:
    return any(leaf == p or leaf.startswith(p + ".") for p in paths)


@st.composite
def hostile_payloads(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    """An event a producer could really emit, with hostile text wherever the contract allows it."""
    spec = draw(st.sampled_from(SPECS))
    data = spec.model.model_validate(draw(st.sampled_from(spec.examples()))).model_dump(mode="json")
    for path, value in _leaves(data):
        if isinstance(value, str) and draw(st.booleans()):
            candidate = _replaced(data, path, draw(st.sampled_from(HOSTILE)))
            with contextlib.suppress(ValidationError):  # refused: it can never be in an event
                data = spec.model.model_validate(candidate).model_dump(mode="json")
    if issubclass(spec.model, FamilyEvent):  # the consent cover: absent, or any set of departments
        data["shared_with"] = draw(st.none() | st.lists(
            st.sampled_from([d.value for d in Department]), unique=True).map(sorted))
    extra = draw(st.dictionaries(st.sampled_from(sorted(FORBIDDEN_NAMES)), st.sampled_from(HOSTILE),
                                 max_size=3))
    return spec, {**data, **extra}  # extras: fields no rule names must never pass either


def test_there_are_events_to_check() -> None:
    assert SPECS, "no event types registered"


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_payloads())
def test_projections_hold_only_allowed_fields_and_no_personal_data(case) -> None:
    spec, data = case
    envelope = Envelope(type=spec.type, source=f"/oto/{spec.service}", key="k", data=data)
    policy = default_policy()
    projections = policy.project(envelope)
    if data.get("shared_with") is not None:  # the consent gate: no department outside the cover
        assert {d.value for d, _ in projections} <= set(data["shared_with"]), spec.type
    for department, projected in projections:
        assert isinstance(department, Department)
        allowed = policy.allowed_fields(department, spec.type)
        for path, value in _leaves(projected.data):
            leaf = _dotted(path)
            assert _allowed(allowed, leaf), f"{department}: {leaf} not allowed for {spec.type}"
            assert leaf.split(".")[-1] not in FORBIDDEN_NAMES, f"{department}: {leaf}"
            if isinstance(value, str):
                assert not CPR_SHAPE.search(value), f"{department}: a CPR number in {spec.type} {leaf}"
                assert value not in HOSTILE, f"{department}: free text in {spec.type} {leaf}"
        assert "site_id" in projected.data, f"{spec.type} reaches {department} without its site"
        if issubclass(spec.model, FamilyEvent):
            assert "family_id" in projected.data, f"{spec.type} reaches {department} without its family"
