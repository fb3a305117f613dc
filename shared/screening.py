"""Screens every request before any route sees it: personal data in the URL, unsafe text.

Two holes no single route can close for all the others, so they are closed once here:

- A CPR number belongs in a request body (intake's, where it is encrypted), never in a path or
  a query: URLs end up in access logs, proxies and browser histories, and a route that ignores
  an unknown ``?cpr=`` would answer 200 as if nothing happened. Such a request is refused with
  400, and the answer names neither the path nor the query.
- Text holding a NUL character or a lone UTF-16 surrogate (``"\\ud800"`` is valid JSON) is
  refused with 422 naming the field. PostgreSQL cannot store a NUL in text, SQLite can; a lone
  surrogate cannot be encoded as UTF-8 at all, so it used to fail only when the response was
  written, after the change had committed. Refusing it at the door makes both databases answer
  the same, for every JSON body, query and path of every service, including routes not yet written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import problem_response
from shared.observability import CPR_SHAPE, redact

#: A NUL or any code point of the surrogate range: neither is text a person can mean.
UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")
#: Cheap test on the raw body: only bodies holding a NUL, a ``\u0000`` or ``\ud8xx``–``\udfxx``
#: escape, or bytes that are not UTF-8 are parsed here (an escaped backslash can trip it; the
#: parse then finds nothing and the request goes on).
SUSPECT_BODY = re.compile(rb"\x00|\\u(?:0000|[dD][89a-fA-F])")
UNSAFE_MESSAGE = "Text must not contain NUL characters or unpaired UTF-16 surrogates."
UNSAFE_TYPE = "string_unsafe_character"
#: At most this many fields are named in one answer.
MAX_ERRORS = 20


def unsafe_fields(value: Any, location: str = "body") -> list[str]:
    """Where in a parsed JSON value text holds a NUL or a lone surrogate (dotted, like the
    validation errors; CPR-shaped keys redacted, so a field name cannot echo one)."""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if len(found) >= MAX_ERRORS:
            return
        if isinstance(node, str):
            if UNSAFE_TEXT.search(node):
                found.append(where)
        elif isinstance(node, dict):
            for key, item in node.items():
                if UNSAFE_TEXT.search(key):
                    found.append(where)  # the key itself cannot be named safely: name its object
                    continue
                walk(item, f"{where}.{redact(key)}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}.{index}")

    walk(value, location)
    return found


def unsafe_body_fields(body: bytes) -> list[str]:
    """The fields of a JSON body that hold unsafe text; none when it is clean or not JSON at all
    (FastAPI reports unparseable bodies itself)."""
    if not SUSPECT_BODY.search(body):
        try:
            body.decode("utf-8")
            return []
        except UnicodeDecodeError:
            pass  # e.g. a surrogate encoded in raw bytes, which json.loads lets through
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return []
    try:
        return unsafe_fields(parsed)
    except RecursionError:
        return ["body"]  # nested too deep to say where, and it did look suspect: refuse it whole


def carries_cpr(scope: Scope) -> bool:
    """Whether the path or the query holds a CPR-shaped value (decoded as the routes see them)."""
    query = scope.get("query_string", b"").decode("latin-1")
    return bool(CPR_SHAPE.search(scope.get("path", "")) or CPR_SHAPE.search(unquote_plus(query)))


def unsafe_url_fields(scope: Scope) -> list[str]:
    """Query parameters (by name) and the path holding a NUL or a lone surrogate."""
    found = ["path"] if UNSAFE_TEXT.search(scope.get("path", "")) else []
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    for name, value in pairs:
        if UNSAFE_TEXT.search(name):
            found.append("query")
        elif UNSAFE_TEXT.search(value):
            found.append(f"query.{redact(name)}")
    return found[:MAX_ERRORS]


def _body_screen(headers: dict[bytes, bytes]) -> Callable[[bytes], list[str]] | None:
    """How the request's body is screened: not at all when there is none (most GETs) or when it
    is neither JSON nor text (none today)."""
    if headers.get(b"content-length", b"0") == b"0" and b"transfer-encoding" not in headers:
        return None
    media = headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()
    if _is_json(media):
        return unsafe_body_fields
    return unsafe_text_body if media.startswith("text/") else None


def _is_json(media: str) -> bool:
    """FastAPI parses a body as JSON when its type is JSON (``application/json``,
    ``application/…+json``) or when no type is given, so those are the bodies screened."""
    return media in {"", "application/json"} or (media.startswith("application/") and media.endswith("+json"))


def unsafe_text_body(body: bytes) -> list[str]:
    """A text body (a CSV import) is decoded by its route, which refuses what is not UTF-8; a
    NUL is valid UTF-8, so it is refused here, naming the body."""
    return ["body"] if b"\x00" in body else []


def _unsafe_text_response(fields: list[str]) -> JSONResponse:
    errors = [{"field": field, "message": UNSAFE_MESSAGE, "type": UNSAFE_TYPE} for field in fields]
    return problem_response(422, "Unprocessable content", f"Invalid fields: {', '.join(fields)}",
                            errors=errors)


class RequestScreening:
    """ASGI middleware: 400 for a CPR number in the URL, 422 for unsafe text, before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if carries_cpr(scope):
            response = problem_response(
                400, "Bad request", "A CPR number may be sent only in a request body, never in "
                "the path or the query.")
            await response(scope, receive, send)
            return
        if fields := unsafe_url_fields(scope):
            await _unsafe_text_response(fields)(scope, receive, send)
            return
        screen = _body_screen(dict(scope["headers"]))
        if screen is None:
            await self.app(scope, receive, send)
            return
        messages = await _read_body(receive)
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if fields := screen(body):
            await _unsafe_text_response(fields)(scope, receive, send)
            return
        await self.app(scope, _replay(messages, body, receive), send)


async def _read_body(receive: Receive) -> list[Message]:
    """Every message up to the end of the body (or a disconnect)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then carries on with the real one."""
    pending: list[Message]
    if messages and messages[-1]["type"] == "http.request":
        pending = [{"type": "http.request", "body": body, "more_body": False}]
    else:
        pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
