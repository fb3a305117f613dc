"""Fields that reach any topic — the domain topics too, not only department slices — are ids,
dates, numbers, enums or codes: a name, a note or a CPR number put into any string field of any
event contract is refused by the contract itself.

The few exceptions are listed with the reason they are safe; a new free-text field fails here.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from shared.events import REGISTRY
from shared.settings import SERVICES

HOSTILE = ["0101901234", "010190-1234", "Fatima Hassan", "Note: the father has stopped taking his medicine"]
#: (event type, field) -> why the contract may keep a plain string there. A type superseded by a
#: newer major version is not produced any more (kept so old events replay) and is not checked.
EXCEPTIONS = {
    ("dk.aarhus.oto.intake.outreach-attempt-recorded.v1", "staff_id"):
        "intake accepts only a known staff id of the site or the caller's subject "
        "(tests/intake/test_outreach_staff.py)",
    ("dk.aarhus.oto.intake.outreach-attempt-recorded.v1", "status"):
        "set from intake's household status enum, never from a request",
}


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, (*path, i))]
    return [(path, value)]


def _accepted(spec: Any) -> set[str]:
    """The dotted fields of ``spec`` whose contract accepts some hostile text."""
    found = set()
    for example in spec.examples():
        data = spec.model.model_validate(example).model_dump(mode="json")
        for path, value in _leaves(data):
            if not isinstance(value, str):
                continue
            for text in HOSTILE:
                candidate = copy.deepcopy(data)
                target = candidate
                for step in path[:-1]:
                    target = target[step]
                target[path[-1]] = text
                try:
                    published = spec.model.model_validate(candidate).model_dump_json()
                except ValidationError:
                    continue
                if text in published:  # "0101901234" read as a time or a number is not the text
                    found.add(".".join(str(p) for p in path if not isinstance(p, int)))
    return found


def _superseded(spec: Any) -> bool:
    return any(other.service == spec.service and other.name == spec.name and other.version > spec.version
               for other in REGISTRY)


#: The product's own event types: other tests register a test-only service's types (``testkit``)
#: in the same registry, depending on which modules the run has imported.
PRODUCED = [spec for spec in REGISTRY if spec.service in SERVICES and not _superseded(spec)]


@pytest.mark.parametrize("spec", PRODUCED,
                         ids=lambda spec: spec.type)
def test_no_event_field_takes_free_text_or_a_cpr_number(spec: Any) -> None:
    accepted = {field for field in _accepted(spec) if (spec.type, field) not in EXCEPTIONS}
    assert not accepted, f"{spec.type} accepts free text in {sorted(accepted)}"


def test_every_exception_is_still_needed() -> None:
    by_type = {spec.type: spec for spec in REGISTRY}
    stale = [key for key in EXCEPTIONS if key[1] not in _accepted(by_type[key[0]])]
    assert not stale, f"no longer free text, remove from EXCEPTIONS: {stale}"
