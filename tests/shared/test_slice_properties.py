"""Property tests: a department's projection holds only allow-listed fields and no personal data."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.departments import Department
from shared.events import REGISTRY
from shared.events.envelope import Envelope
from shared.observability import CPR_SHAPE
from shared.settings import SERVICES
from shared.slices import default_policy

FORBIDDEN_NAMES = {"cpr", "name", "first_name", "last_name", "address", "note", "notes", "text",
                   "description", "wishes"}
SPECS = [spec for spec in REGISTRY if spec.service in SERVICES]


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item, path)]
    return [(path, value)]


def _allowed(paths: tuple[str, ...], leaf: str) -> bool:
    return any(leaf == p or leaf.startswith(p + ".") for p in paths)


@st.composite
def event_payloads(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    spec = draw(st.sampled_from(SPECS))
    example = dict(draw(st.sampled_from(spec.examples())))
    # Hostile extras: personal data smuggled into fields no rule names must never pass.
    extra = draw(st.dictionaries(st.sampled_from(sorted(FORBIDDEN_NAMES)),
                                 st.sampled_from(["0101901234", "Fatima Hassan", "Bygaden 1"]),
                                 max_size=3))
    data = {**spec.model.model_validate(example).model_dump(mode="json"), **extra}
    return spec, data


def test_there_are_events_to_check() -> None:
    assert SPECS, "no event types registered"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(event_payloads())
def test_projections_hold_only_allowed_fields_and_no_personal_data(case) -> None:
    spec, data = case
    envelope = Envelope(type=spec.type, source=f"/oto/{spec.service}", key="k", data=data)
    policy = default_policy()
    for department, projected in policy.project(envelope):
        allowed = policy.allowed_fields(department, spec.type)
        for leaf, value in _leaves(projected.data):
            assert _allowed(allowed, leaf), f"{department}: {leaf} not allowed for {spec.type}"
            assert leaf.split(".")[-1] not in FORBIDDEN_NAMES, f"{department}: {leaf}"
            assert not (isinstance(value, str) and CPR_SHAPE.search(value)), f"{department}: {leaf}"
        assert "family_id" in projected.data or "family_id" not in data
        assert isinstance(department, Department)
