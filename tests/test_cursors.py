"""A pagination cursor comes from the caller: whatever it decodes to, the answer is a page or a
422 naming ``query.cursor``, never a 500, on every list route of every service.

The list routes are the operations of the OpenAPI documents that take a ``cursor``; each is
called by a caller the authorisation matrix lets through, on the matrix's fixtures (so the route
gets as far as reading the cursor), with cursors hypothesis makes: base64 of any JSON value,
of text no key looks like, of arbitrary bytes, and arbitrary text.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.authz_support import BY_COLUMN, CALLERS, SERVICES, Req, parse_matrix
from tests.openapi_support import operations
from tests.support import service_api
from tests.test_authorisation_matrix import TABLES

EXAMPLES_PER_ROUTE = 40
#: Digits str.isdigit() accepts and int() does not (superscript) or does (full-width, Arabic-Indic):
#: a hypothesis run found "¹" made the audit log's list a 500.
NOT_ASCII_DIGITS = ["¹", "１２", "٣"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
cursors = st.one_of(
    json_values.map(lambda value: _b64(json.dumps(value).encode())),
    st.text(max_size=40).map(lambda text: _b64(json.dumps(text).encode())),
    st.sampled_from(["\ud800", "\x00", "0" * 40, "9" * 40, "-1", "1e999", "{}", "[]", *NOT_ASCII_DIGITS]).map(
        lambda text: _b64(json.dumps(text).encode())),
    st.binary(max_size=60).map(_b64),
    st.text(max_size=60),
)


def _is_a_string(cursor: str) -> bool:
    try:
        return isinstance(json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))), str)
    except ValueError:
        return False


def list_routes(service: str) -> list[str]:
    return [path for method, path, operation in operations(service)
            if method == "get" and any(p["name"] == "cursor" for p in operation.get("parameters", []))]


def _sender(http: httpx.AsyncClient, loop: asyncio.AbstractEventLoop, url: str, params: dict[str, Any],
            headers: dict[str, str]) -> Callable[[str], httpx.Response]:
    """Send one GET with a cursor on the test's event loop from a worker thread, and wait."""
    def call(cursor: str) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(
            http.get(url, params={**params, "cursor": cursor}, headers=headers), loop).result()
    return call


def _check_cursors(key: str, call: Callable[[str], httpx.Response]) -> None:
    """Hypothesis over the cursors of one route (run in a worker thread; ``call`` sends a request
    on the test's event loop)."""

    @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(cursor=cursors)
    def check(cursor: str) -> None:
        response = call(cursor)
        assert response.status_code in (200, 422), f"{key} {cursor!r}: {response.status_code} {response.text}"
        if response.status_code == 422:
            assert [e["field"] for e in response.json()["errors"]] == ["query.cursor"], response.text
        else:
            assert _is_a_string(cursor), f"{key} {cursor!r} is not a string cursor yet gave a page"

    check()


@pytest.mark.parametrize("service", [s for s in SERVICES if list_routes(s)])
async def test_any_cursor_on_any_list_route_is_a_page_or_422_naming_the_cursor(
        service: str, postgres_url: str) -> None:
    under_test = SERVICES[service]
    table = parse_matrix(TABLES[service])
    loop = asyncio.get_running_loop()
    async with service_api(under_test.create_app, service=service, broker=None,
                           database_url=postgres_url) as http:
        ids, requests = await under_test.fixture(http, http.app)  # type: ignore[attr-defined]
        for path in list_routes(service):
            key = f"GET {path}"
            caller = BY_COLUMN[next(c.column for c in CALLERS if table[key][c.column] == "ok")]
            url = path.format(**ids) if "{" in path else path
            params = dict(requests.get(key, Req()).params or {})
            headers = caller.headers(http.settings)  # type: ignore[attr-defined]
            first = await http.get(url, params=params, headers=headers)
            assert first.status_code == 200, f"{key}: the fixture does not reach the list: {first.text}"

            await asyncio.to_thread(_check_cursors, key, _sender(http, loop, url, params, headers))
            for digits in NOT_ASCII_DIGITS:  # every time, not only when hypothesis picks them
                response = await http.get(url, params={**params, "cursor": _b64(json.dumps(digits).encode())},
                                          headers=headers)
                assert response.status_code == (422 if path == "/audit" else response.status_code) \
                    and response.status_code in (200, 422), f"{key} {digits!r}: {response.status_code}"
            # a cursor the service made itself still works
            # (the audit log's entries are numbered; every other list is keyed by a UUID)
            own = _b64(json.dumps("1" if path == "/audit" else str(uuid.uuid4())).encode())
            assert (await http.get(url, params={**params, "cursor": own}, headers=headers)).status_code == 200
