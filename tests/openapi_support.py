"""Walks the services' OpenAPI documents, so request-level tests cover every route there is.

A test that lists routes by hand misses the next one; these helpers read what the apps serve:
every operation, its path filled with ids, the string fields of its JSON body, its list cursors.
"""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

from shared.settings import SERVICES

METHODS = ("get", "post", "put", "patch", "delete")
Path = tuple[str | int, ...]


@cache
def document(service: str) -> dict[str, Any]:
    return importlib.import_module(f"services.{service}.app").create_app().openapi()  # type: ignore[no-any-return]


def operations(service: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every operation of ``service``."""
    for path, item in document(service)["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def every_operation() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(service, method, path template, operation) for all four services."""
    return [(service, *op) for service in SERVICES for op in operations(service)]


def fill(path: str, value: str | None = None) -> str:
    """The template with each ``{param}`` replaced by ``value`` or a fresh UUID."""
    return re.sub(r"{\w+}", lambda _: value if value is not None else str(uuid.uuid4()), path)


def template_pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$")


def json_body_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    return None if body is None else body["schema"]  # type: ignore[no-any-return]


def string_fields(schema: dict[str, Any], components: dict[str, Any], seen: frozenset[str] = frozenset()
                  ) -> list[Path]:
    """Where in a body described by ``schema`` a string goes: arrays as index 0, free-form
    objects (``additionalProperties``) under a key ``k``; recursive models are entered once."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return [] if name in seen else string_fields(components[name], components, seen | {name})
    found: list[Path] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += string_fields(option, components, seen)
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "string" in types:
        found.append(())
    if "array" in types and isinstance(schema.get("items"), dict):
        found += [(0, *rest) for rest in string_fields(schema["items"], components, seen)]
    for name, child in schema.get("properties", {}).items():
        found += [(name, *rest) for rest in string_fields(child, components, seen)]
    if isinstance(schema.get("additionalProperties"), dict):
        found += [("k", *rest) for rest in string_fields(schema["additionalProperties"], components, seen)]
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def body_with(path: Path, value: Any) -> Any:
    """The smallest JSON value that holds ``value`` at ``path``."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    inner = body_with(rest, value)
    return [inner] if isinstance(head, int) else {head: inner}
