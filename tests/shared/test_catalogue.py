"""The AsyncAPI document is valid AsyncAPI 3.0, matches the registry, and docs/ is up to date."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from shared.catalogue import asyncapi_document, catalogue_markdown
from shared.departments import Department
from shared.events import REGISTRY
from shared.settings import SERVICES
from shared.slices import default_policy

ROOT = Path(__file__).resolve().parents[2]


def test_the_document_validates_against_the_asyncapi_3_schema() -> None:
    schema = json.loads((ROOT / "tests/data/asyncapi-3.0.0.schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(asyncapi_document())


def test_every_registered_event_is_on_its_domain_channel_and_only_allowed_ones_on_departments() -> None:
    document = asyncapi_document()
    policy = default_policy()
    specs = [spec for spec in REGISTRY if spec.service in SERVICES]
    for spec in specs:
        channel = document["channels"][f"{spec.service}Events"]
        assert f"{spec.service}.{spec.name}.v{spec.version}" in channel["messages"]
    for department in Department:
        channel = document["channels"][f"department.{department.value}"]
        expected = {f"{department.value}.{s.service}.{s.name}.v{s.version}" for s in specs
                    if policy.allowed_fields(department, s.type)}
        assert set(channel["messages"]) == expected
        for key in expected:
            payload = document["components"]["schemas"][key]
            spec = REGISTRY.spec(document["components"]["messages"][key]["name"])
            allowed_top = {f.split(".")[0] for f in policy.allowed_fields(department, spec.type)}
            assert set(payload["properties"]) <= allowed_top


def test_the_committed_catalogue_in_docs_matches_the_code() -> None:
    committed = json.loads((ROOT / "docs/events/asyncapi.json").read_text())
    assert committed == json.loads(json.dumps(asyncapi_document())), \
        "docs/events/asyncapi.json is stale: run `oto catalogue`"
    assert (ROOT / "docs/events/catalogue.md").read_text() == catalogue_markdown() + "\n", \
        "docs/events/catalogue.md is stale: run `oto catalogue`"
