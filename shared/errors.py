"""Errors as RFC 9457 ``application/problem+json``; validation errors name the fields.

Request values are never echoed back (a CPR number in a bad request must not appear in the
response), and an unreachable database is a 503, not a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from asyncpg.exceptions import (
    InsufficientResourcesError,
    OperatorInterventionError,
    PostgresConnectionError,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path, get_route_path

from shared.observability import redact

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)

#: The ``title`` of each status the services answer with; one table, so the handlers and the
#: OpenAPI document (``shared.openapi``) cannot drift apart.
TITLES: dict[int, str] = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Content too large",
    415: "Unsupported media type", 422: "Unprocessable content", 500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """An error the API reports as problem+json with ``status``."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(Problem):
    status, title = 404, "Not found"


class Conflict(Problem):
    """A broken rule or an illegal state transition."""

    status, title = 409, "Conflict"


class Forbidden(Problem):
    status, title = 403, "Forbidden"


class Unauthorized(Problem):
    status, title = 401, "Unauthorized"


class Unprocessable(Problem):
    """422 naming the fields: ``Unprocessable("…", fields={"body.fte": "must be ≤ 1"})``."""

    status, title = 422, "Unprocessable content"

    def __init__(self, detail: str, *, fields: dict[str, str]) -> None:
        super().__init__(detail, errors=[{"field": f, "message": m} for f, m in fields.items()])


class UnsupportedMediaType(Problem):
    status, title = 415, "Unsupported media type"


class ServiceUnavailable(Problem):
    status, title = 503, "Service unavailable"


def problem_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of what ``problem_response`` writes, for the OpenAPI components.

    Kept next to ``problem_response`` because it is the same shape: the fuzz test checks every
    error against it. Extension members (``errors``, the readiness ``checks``) are allowed, as
    RFC 9457 says; ``errors`` is described because clients rely on it.
    """
    return {
        "Problem": {
            "type": "object",
            "title": "Problem",
            "description": "An error, as RFC 9457 problem details (application/problem+json).",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "description": "Always about:blank."},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "instance": {"type": "string", "description": "The request path."},
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"},
                           "description": "Validation errors: which fields, never their values."},
            },
            "additionalProperties": True,
        },
        "FieldError": {
            "type": "object",
            "title": "FieldError",
            "required": ["field", "message"],
            "properties": {
                "field": {"type": "string", "description": "Where: e.g. body.members.0.cpr."},
                "message": {"type": "string"},
                "type": {"type": "string", "description": "The kind of error, e.g. missing."},
            },
        },
    }


def problem_response(status: int, title: str, detail: str, request: Request | None = None,
                     headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    """The problem+json answer. ``instance`` is the path with any CPR-shaped part redacted (such
    a request is refused before routing, see ``shared.screening``; this holds if that changes)."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if request is not None:
        body["instance"] = redact(request.url.path)
    body.update(extra)
    all_headers = dict(headers or {})
    if status == 401:
        all_headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=all_headers or None)


def _field_name(loc: tuple[Any, ...]) -> str:
    """Where, never what: a key the caller made up is part of the location, so a CPR-shaped one
    is redacted."""
    return redact(".".join(str(part) for part in loc))


def _allowed_methods(request: Request) -> str:
    """Every method any route of the path answers. Starlette's own ``Allow`` names only the first
    route matching the path, though GET and POST of one path are often two routes."""
    path = get_route_path(request.scope)
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):  # into included routers, as routing does
        regex, _format, _convertors = compile_path(route.path_format or "")
        if route.path_format and regex.match(path):
            methods |= set(route.methods or ())
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI, extra: dict[type[Exception], int] | None = None) -> None:
    """Map Problem, validation, HTTP, database and the services' own domain errors."""

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, request, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_name(e["loc"]), "message": e["msg"], "type": e["type"]}
                  for e in exc.errors()]
        fields = ", ".join(e["field"] for e in errors)
        return problem_response(422, "Unprocessable content", f"Invalid fields: {fields}",
                                request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = TITLES.get(exc.status_code, "Error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return problem_response(exc.status_code, title, str(exc.detail), request, headers=headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    # Raised by asyncpg while *connecting* (SQLAlchemy wraps only errors of statements): the server
    # is starting up or shutting down (57P03), the connection broke (08…), or it is full (53…).
    @app.exception_handler(OperatorInterventionError)
    @app.exception_handler(PostgresConnectionError)
    @app.exception_handler(InsufficientResourcesError)
    async def on_database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency unavailable", extra={"error": type(exc).__name__})
        return problem_response(503, "Service unavailable",
                                "A dependency is unavailable; try again shortly.", request)

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def on_out_of_range(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(422, "Unprocessable content", "A value is out of range.", request)

    @app.exception_handler(IntegrityError)
    async def on_integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        return problem_response(409, "Conflict", "The change conflicts with existing data.", request)

    for exc_type, status in (extra or {}).items():
        title = TITLES[status]

        async def on_domain(request: Request, exc: Exception, status: int = status,
                            title: str = title) -> JSONResponse:
            return problem_response(status, title, str(exc), request)

        app.add_exception_handler(exc_type, on_domain)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(500, "Internal server error", "Unexpected error.", request)
