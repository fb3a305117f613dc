"""Mass assignment (RELIABILITY 17): no request body accepts a field its model does not declare.

Every JSON body of every service is a pydantic model that forbids unknown fields, so a caller
cannot set ``status``, ``site_id`` or an id it was not meant to set: it gets 422 naming the field.
The structural test walks the apps' routes, so a new endpoint is covered without editing this file.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from shared.settings import SERVICES
from tests.support import bearer, service_api


def _objects(schema: dict[str, Any], components: dict[str, Any], seen: set[str]) -> list[tuple[str, Any]]:
    """Every object schema reachable from ``schema``: (name, whether it refuses extra fields)."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        if name in seen:
            return []
        seen.add(name)
        target = components[name]
        found = [(name, target.get("additionalProperties"))] if "properties" in target else []
        return found + _objects({k: v for k, v in target.items() if k != "$ref"}, components, seen)
    found = []
    for value in schema.values():
        items = value if isinstance(value, list) else [value]
        found += [o for item in items if isinstance(item, dict) for o in _objects(item, components, seen)]
    return found


def _body_models(service: str) -> list[tuple[str, str, Any]]:
    document = importlib.import_module(f"services.{service}.app").create_app().openapi()
    components = document["components"]["schemas"]
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                found += [(f"{method.upper()} {path}", name, extra)
                          for name, extra in _objects(body["schema"], components, set())]
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_every_request_body_refuses_unknown_fields(service: str) -> None:
    bodies = _body_models(service)
    assert bodies, f"{service} has no request bodies?"
    lax = sorted({f"{route}: {name}" for route, name, extra in bodies if extra is not False})
    assert not lax, f"request models that accept undeclared fields: {lax}"


async def test_a_field_the_caller_may_not_set_is_422_naming_it(postgres_url: str) -> None:
    from services.intake.app import create_app

    async with service_api(create_app, service="intake", broker=None, database_url=postgres_url) as api:
        body = {"site_id": "gellerup", "address": "Bygaden 1", "status": "enrolled",
                "members": [{"role": "mother", "cpr": "0101901234", "unemployed_since": "2020-01-01"},
                            {"role": "child", "cpr": "0101154321"}]}
        response = await api.post("/v1/households", json=body,
                                  headers=bearer(api.settings, "team_staff", site="gellerup"))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.status"]
