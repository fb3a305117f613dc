"""Each service's OpenAPI document says what the service really answers, errors included.

FastAPI documents a route's success response and a 422 in its own JSON shape. Here every error
is ``application/problem+json`` (``shared.errors``), the bearer token is read by a dependency
FastAPI cannot describe, and the fuzz test (tests/e2e/test_fuzz.py) holds every real response
to the document. Writing the errors into each route would drift, so the generated document is
completed once, for all services: which problems an operation can answer follows from what the
route is (authenticated, takes input, takes a body, changes state).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from shared.auth import READS_TOKEN_ATTRIBUTE, ROLE_SCOPE, ROLES_ATTRIBUTE, Role, get_principal
from shared.errors import PROBLEM_JSON, TITLES, problem_schemas

BEARER = "bearer"
#: Why each status happens, per the handlers in ``shared.errors`` and the body limit.
REASONS: dict[int, str] = {
    400: "The body could not be parsed, or the path or the query holds a CPR number (which may be "
         "sent only in a body).",
    401: "No valid bearer token: missing, expired, forged or without the claims the role needs.",
    403: "The caller's role, site or department may not do this.",
    404: "No such resource, or none the caller may see.",
    409: "A broken rule, an illegal transition, conflicting data, or an Idempotency-Key reused "
         "with another request.",
    413: "The body is larger than the service accepts.",
    415: "The body's content type is not one the operation accepts.",
    422: "The input is not valid; validation errors name the fields and never echo the values.",
    503: "A dependency (the database or the broker) is unavailable; try again shortly.",
}
STATE_CHANGING = frozenset({"post", "put", "patch", "delete"})
#: FastAPI's own validation-error schemas, unused once every 422 is a problem.
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
#: The operation's extension listing the roles that may call it.
ROLES_EXTENSION = "x-oto-roles"


class DocumentedFastAPI(FastAPI):
    """A FastAPI app whose OpenAPI document carries the problem responses and bearer auth."""

    _documented: dict[str, Any] | None = None

    def __init__(self, **kwargs: Any) -> None:
        # FastAPI's own /docs and /redoc load their scripts from a CDN: replace them.
        super().__init__(**{**kwargs, "docs_url": None, "redoc_url": None})
        from shared.apidocs import install_offline_docs

        install_offline_docs(self)

    def openapi(self) -> dict[str, Any]:
        # FastAPI caches its document and builds a new one when routes change; complete each
        # new one once, in place, so the cache keeps serving the completed document.
        document = super().openapi()
        if document is not self._documented:
            self._documented = document_problems(self, document)
        return document


def response_name(status: int) -> str:
    """The components/responses key for a status, e.g. ``NotFound`` for 404."""
    return TITLES[status].title().replace(" ", "")


def problem_statuses(method: str, operation: dict[str, Any], authenticated: bool) -> list[int]:
    """The error statuses an operation can answer, derived from what the route is."""
    parameters = {p.get("in") for p in operation.get("parameters", [])}
    has_body = "requestBody" in operation
    statuses = {503}
    if has_body:
        statuses |= {400, 413}
        if "application/json" not in operation["requestBody"].get("content", {}):
            statuses.add(415)  # a non-JSON body (the register import) checks its content type
    if parameters & {"path", "query"}:
        statuses.add(400)  # a CPR-shaped value in the URL (shared.screening)
    if has_body or parameters:
        statuses.add(422)
    if authenticated:
        statuses |= {401, 403}
        if has_body or parameters & {"path", "query"}:
            statuses.add(404)
        if method in STATE_CHANGING:
            statuses.add(409)
    return sorted(statuses)


def document_problems(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """Add the problem responses and the bearer scheme to every operation of ``document``."""
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(problem_schemas())
    components["responses"] = {response_name(status): _problem_response(status) for status in REASONS}
    components["securitySchemes"] = {BEARER: {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An OAuth2 access token (HS256 in development, RS256 from the JWKS in "
                       "production) with the claims sub, role and, as the role needs, site or "
                       "department."}}
    authenticated = dict(_authenticated_operations(app))
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            needs_token = (path, method) in authenticated
            if needs_token:
                operation["security"] = [{BEARER: []}]
                _document_roles(operation, authenticated[path, method])
            responses = operation.setdefault("responses", {})
            for status in problem_statuses(method, operation, needs_token):
                existing = responses.get(str(status))
                if existing is None or _is_fastapi_validation_error(existing):
                    responses[str(status)] = {"$ref": f"#/components/responses/{response_name(status)}"}
    _drop_unreferenced(document, FASTAPI_VALIDATION_SCHEMAS)
    return document


def _problem_response(status: int) -> dict[str, Any]:
    """A reusable response: the problem schema, with ``status`` equal to the HTTP status."""
    response: dict[str, Any] = {"description": REASONS[status], "content": {PROBLEM_JSON: {"schema": {
        "allOf": [{"$ref": "#/components/schemas/Problem"},
                  {"properties": {"status": {"const": status}}}]}}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {
            "description": "The scheme to authenticate with.", "required": True,
            "schema": {"type": "string", "const": "Bearer"}}}
    return response


def _authenticated_operations(app: FastAPI) -> Iterator[tuple[tuple[str, str], list[Role]]]:
    """((path, method), roles allowed) of every route that reads the bearer token."""
    for context in iter_route_contexts(app.routes):  # the walk get_openapi does, into included routers
        if isinstance(context.original_route, APIRoute) and _reads_token(context.dependant):
            allowed = frozenset(Role)
            for roles in _role_checks(context.dependant):
                allowed &= roles
            for method in context.methods or ():
                yield (context.path_format or "", method.lower()), [r for r in Role if r in allowed]


def _reads_token(dependant: Dependant) -> bool:
    return (dependant.call is get_principal or getattr(dependant.call, READS_TOKEN_ATTRIBUTE, False)
            or any(_reads_token(d) for d in dependant.dependencies))


def model_response(answer: BaseModel, status_code: int = 200) -> Response:
    """The answer as JSON, serialised once by pydantic, for a hot read whose route declares the
    answer's model as its ``response_model`` (so the document describes it). FastAPI would
    otherwise validate the returned model against the response model again and serialise it in
    two passes (to Python values, then ``json.dumps``); the conformance and fuzz tests hold the
    body to the document like any other."""
    return Response(answer.model_dump_json(by_alias=True), status_code=status_code,
                    media_type="application/json")


def _role_checks(dependant: Dependant) -> Iterator[frozenset[Role]]:
    """The role sets of every ``require_roles`` (or ``roles_checked_in_route``) the route depends on."""
    roles = getattr(dependant.call, ROLES_ATTRIBUTE, None)
    if roles is not None:
        yield roles
    for sub in dependant.dependencies:
        yield from _role_checks(sub)


def _document_roles(operation: dict[str, Any], roles: list[Role]) -> None:
    """Say who may call the operation, with the scope a team or department token is bound to."""
    operation[ROLES_EXTENSION] = [role.value for role in roles]
    described = ", ".join(f"`{role.value}` ({ROLE_SCOPE[role]})" if role in ROLE_SCOPE else f"`{role.value}`"
                          for role in roles)
    note = f"**Roles:** {described}."
    operation["description"] = f"{operation['description']}\n\n{note}" if operation.get("description") \
        else note


def _is_fastapi_validation_error(response: dict[str, Any]) -> bool:
    return "HTTPValidationError" in json.dumps(response)


def _drop_unreferenced(document: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove component schemas nothing points at any more, so the reference stays clean."""
    schemas = document.get("components", {}).get("schemas", {})
    for name in names:
        remaining = {key: value for key, value in schemas.items() if key not in names}
        text = json.dumps({**document, "components": {**document["components"], "schemas": remaining}})
        if f'"#/components/schemas/{name}"' not in text:
            schemas.pop(name, None)
