"""The generic request path keeps personal data out of places it must not reach, for every route.

Correlation ids, URLs, text and token claims come from callers; each check here runs through the
real HTTP stack of the four services, and where a route matters it walks every route of the
OpenAPI documents (``tests.openapi_support``), so a new endpoint is covered without editing this file.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from shared.events.envelope import CORRELATION_HEADER
from shared.observability import CPR_SHAPE, accept_id, is_safe_id
from shared.screening import UNSAFE_TYPE
from shared.settings import SERVICES
from shared.tables import audit_log, outbox
from tests.intake.factories import cpr as make_cpr
from tests.intake.factories import define_area, household_body
from tests.openapi_support import (
    METHODS,
    body_with,
    document,
    every_operation,
    fill,
    json_body_schema,
    operations,
    string_fields,
    template_pattern,
)
from tests.support import Broker, bearer, read_topic, service_api

CPR_FORMS = ("0101901234", "010190-1234")
SO = "sundhed-og-omsorg"


def _create_app(service: str) -> Any:
    return importlib.import_module(f"services.{service}.app").create_app


@pytest.fixture
async def apps(tmp_path: Path) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The four services running, each on a SQLite file of its own (requests refused at the
    door never reach a database; the ones that do get one)."""
    async with AsyncExitStack() as stack:
        clients = {}
        for service in SERVICES:
            url = f"sqlite+aiosqlite:///{tmp_path}/{service}.db"
            clients[service] = await stack.enter_async_context(
                service_api(_create_app(service), service=service, broker=None, database_url=url))
        yield clients


def _assert_never_echoed(response: httpx.Response, *values: str) -> None:
    for value in values:
        assert value not in response.text and value.replace("-", "") not in response.text, response.text


# --- correlation ids ---------------------------------------------------------------------------

_TOKEN = st.text(alphabet="abcXYZ._-0123456789", max_size=20)
_SEPARATOR = st.sampled_from("._-")


@given(st.just("") | st.tuples(_TOKEN, _SEPARATOR).map("".join), st.sampled_from(CPR_FORMS),
       st.just("") | st.tuples(_SEPARATOR, _TOKEN).map("".join))
def test_no_id_holding_a_cpr_number_is_ever_accepted(before: str, cpr: str, after: str) -> None:
    """Wherever a CPR number stands as a token of its own in an id, the id is replaced."""
    incoming = before + cpr + after
    assert not is_safe_id(incoming)
    kept = accept_id(incoming)
    assert kept != incoming and is_safe_id(kept) and not CPR_SHAPE.search(kept)


#: X-Request-ID values and whether they may travel as they are.
REQUEST_IDS = {"0101901234": False, "010190-1234": False, "req-0101901234": False, "a" * 65: False,
               "with space": False, "line\nbreak": False, "ÆØÅ": False, "": False,
               "req-42.a_b": True, "X" * 64: True, "3f2c9a1e": True,
               # hex ids hold ten digits in a row now and then, inside a longer token
               "audit-test-3140603328d5": True, "3140603328ab-4c1d-8e2f-a1b2c3d4e5f6": True}


async def test_a_request_id_is_kept_only_in_a_safe_shape_else_replaced_by_a_fresh_one(apps) -> None:
    for incoming, kept in REQUEST_IDS.items():
        response = await apps["intake"].get("/healthz", headers={"X-Request-ID": incoming.encode("utf-8")})
        returned = response.headers["x-request-id"]
        assert (returned == incoming) is kept, incoming
        assert is_safe_id(returned)


async def test_a_cpr_number_sent_as_request_id_reaches_no_audit_entry_outbox_row_or_event_header(
        postgres_url: str, broker: Broker) -> None:
    from services.intake.app import create_app

    cpr = "010190-1234"
    async with service_api(create_app, service="intake", broker=broker, database_url=postgres_url) as api:
        await define_area(api, bearer(api.settings, "admin"))  # type: ignore[attr-defined]
        headers = {**api.team, "X-Request-ID": cpr}
        household = await api.post("/v1/households", json=household_body(), headers=headers)
        assert household.status_code == 201, household.text
        hid, mother = household.json()["id"], household.json()["members"][0]["id"]
        outreach = await api.post(f"/v1/households/{hid}/outreach", headers=headers, json={
            "at": "2026-03-02T16:30:00Z", "outcome": "agreed"})
        assert outreach.status_code == 201, outreach.text
        consent = await api.post(f"/v1/households/{hid}/consents", headers=headers, json={
            "person_id": mother, "given_by_person_id": mother, "departments": [SO],
            "purposes": ["coordinated_help"]})
        assert consent.status_code == 201, consent.text
        read = await api.get(f"/v1/households/{hid}", headers=headers)
        assert read.status_code == 200
        assert {r.headers["x-request-id"] for r in (household, outreach, consent, read)}.isdisjoint({cpr})
        async with api.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
            audited = (await session.execute(select(audit_log.c.correlation_id))).scalars().all()
            written = (await session.execute(select(outbox.c.correlation_id))).scalars().all()
        records = await read_topic(broker.bootstrap, api.settings.department_topic(SO), expected=1)  # type: ignore[attr-defined]
    assert audited and written and records
    assert all(is_safe_id(value) for value in [*audited, *written])
    correlations = [dict(r.headers)[CORRELATION_HEADER].decode() for r in records]
    assert all(is_safe_id(value) for value in correlations)
    for record in records:
        assert not CPR_SHAPE.search(repr(record.headers)), record.headers


# --- CPR numbers in paths and queries ----------------------------------------------------------

async def test_a_cpr_number_in_the_query_of_any_route_is_400_and_never_echoed(apps) -> None:
    wrong = []
    for service, method, path, _operation in every_operation():
        for cpr in CPR_FORMS:
            response = await apps[service].request(method.upper(), fill(path), params={"cpr": cpr},
                                                   headers=bearer(apps[service].settings, "admin"))  # type: ignore[attr-defined]
            if response.status_code != 400 or cpr in response.text or cpr.replace("-", "") in response.text:
                wrong.append(f"{service} {method} {path}: {response.status_code} {response.text[:120]}")
            assert response.headers["content-type"] == "application/problem+json"
    assert not wrong, "\n".join(wrong)


async def test_a_cpr_number_in_any_path_parameter_is_400_and_never_echoed(apps) -> None:
    wrong = []
    for service, method, path, _operation in every_operation():
        if "{" not in path:
            continue
        for cpr in CPR_FORMS:
            response = await apps[service].request(method.upper(), fill(path, cpr),
                                                   headers=bearer(apps[service].settings, "admin"))  # type: ignore[attr-defined]
            if response.status_code != 400 or cpr in response.text or cpr.replace("-", "") in response.text:
                wrong.append(f"{service} {method} {path}: {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)


async def test_the_audit_log_cannot_be_searched_by_cpr_number(apps) -> None:
    response = await apps["intake"].get("/audit", params={"subject_id": "0101901234"},
                                        headers=bearer(apps["intake"].settings, "admin"))  # type: ignore[attr-defined]
    assert response.status_code == 400
    _assert_never_echoed(response, "0101901234")


async def test_a_made_up_cpr_shaped_field_name_is_not_echoed_in_a_validation_error(apps) -> None:
    api = apps["intake"]
    response = await api.post("/v1/households", headers=api.team,  # type: ignore[attr-defined]
                              json={**household_body(), "010190-1234": "x"})
    assert response.status_code == 422
    _assert_never_echoed(response, "010190-1234")


# --- NUL characters and lone surrogates --------------------------------------------------------

BAD_TEXT = {"a lone surrogate": "ok\ud800", "a NUL character": "ok\x00"}


def _string_fields_of_every_body() -> list[tuple[str, str, str, tuple[str | int, ...]]]:
    found = []
    for service, method, path, operation in every_operation():
        schema = json_body_schema(operation)
        if schema is not None:
            components = document(service)["components"]["schemas"]
            found += [(service, method, path, field) for field in string_fields(schema, components)]
    return found


@pytest.mark.parametrize("bad", list(BAD_TEXT))
async def test_unsafe_text_in_any_string_field_of_any_body_is_422_naming_the_field(apps, bad: str) -> None:
    fields = _string_fields_of_every_body()
    assert ("intake", "post", "/v1/households/{household_id}/consents", ("purposes", 0)) in fields
    assert {service for service, *_ in fields} == set(SERVICES)  # the walk finds every service's
    wrong = []
    for service, method, path, field in fields:
        body = json.dumps(body_with(field, BAD_TEXT[bad]))  # ASCII escapes, as any client may send
        response = await apps[service].request(
            method.upper(), fill(path), content=body, headers={
                "content-type": "application/json", **bearer(apps[service].settings, "admin")})  # type: ignore[attr-defined]
        expected = ".".join(["body", *map(str, field)])
        errors = response.json().get("errors") if response.status_code == 422 else None
        if errors != [{"field": expected, "message": errors and errors[0]["message"], "type": UNSAFE_TYPE}]:
            wrong.append(f"{service} {method} {path} {expected}: {response.status_code} {response.text[:99]}")
    assert not wrong, f"{len(wrong)} fields:\n" + "\n".join(wrong)


async def test_a_surrogate_sent_as_raw_bytes_is_refused_too(apps) -> None:
    api = apps["intake"]
    body = b'{"site_id": "gellerup", "address": "\xed\xa0\x80", "members": []}'
    response = await api.post("/v1/households", content=body, headers={
        "content-type": "application/json", **api.team})  # type: ignore[attr-defined]
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.address"]


async def test_unsafe_text_in_a_query_is_422_naming_the_parameter(apps) -> None:
    api = apps["intake"]
    response = await api.get("/v1/households", params={"site_id": "gell\x00erup"}, headers=api.team)  # type: ignore[attr-defined]
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["query.site_id"]
    in_path = await api.get("/v1/households/a%00b", headers=api.team)  # type: ignore[attr-defined]
    assert in_path.status_code == 422
    assert [e["field"] for e in in_path.json()["errors"]] == ["path"]



@pytest.mark.parametrize("bad", list(BAD_TEXT))
async def test_unsafe_consent_purposes_are_refused_before_anything_is_written(
        database_url: str, bad: str) -> None:
    """The case from the issue: a lone surrogate was stored and then failed as a 500."""
    from services.intake.app import create_app

    async with service_api(create_app, service="intake", broker=None, database_url=database_url) as api:
        household = (await api.post("/v1/households", json=household_body(), headers=api.team)).json()
        hid, mother = household["id"], household["members"][0]["id"]
        await api.post(f"/v1/households/{hid}/outreach", headers=api.team, json={
            "at": "2026-03-02T16:30:00Z", "outcome": "agreed"})
        body = {"person_id": mother, "given_by_person_id": mother, "departments": [SO],
                "purposes": ["coordinated_help", BAD_TEXT[bad]]}
        response = await api.post(f"/v1/households/{hid}/consents", content=json.dumps(body), headers={
            "content-type": "application/json", **api.team})
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["body.purposes.1"]
        consents = await api.get(f"/v1/households/{hid}/consents", headers=api.team)
        assert consents.status_code == 200 and consents.json() == []


async def test_a_nul_in_a_csv_import_is_refused_before_anything_is_imported(database_url: str) -> None:
    """A NUL is valid UTF-8, so the import's own decoding let it through: SQLite stored it,
    PostgreSQL could not."""
    from services.intake.app import create_app

    header = "household_ref,site_id,address,cpr,role,unemployed_since,lives_at_address\n"
    row = f"nul-1,gellerup,Gade\x001,{make_cpr(80)},mother,2015-01-01,yes\n"
    async with service_api(create_app, service="intake", broker=None, database_url=database_url) as api:
        leader = bearer(api.settings, "team_leader", site="gellerup")
        response = await api.post("/v1/imports", content=(header + row).encode(), headers={
            **leader, "content-type": "text/csv"})
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["body"]
        households = await api.get("/v1/households", headers=leader)
    assert households.json()["items"] == []


# --- token claims --------------------------------------------------------------------------------

def _token(settings: Any, **claims: Any) -> dict[str, str]:
    now = datetime.now(UTC)
    base = {"sub": "someone", "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
            "iat": now, "exp": now + timedelta(hours=1)}
    token = jwt.encode({**base, **claims}, settings.jwt_secret.get_secret_value(), algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


BROKEN_CLAIMS = {
    "site as a list": {"role": "team_staff", "site": ["gellerup"]},
    "site as an object": {"role": "team_staff", "site": {"id": "gellerup"}},
    "site as a number": {"role": "team_staff", "site": 7},
    "department as a list": {"role": "department_staff", "department": [SO]},
    "department as an object": {"role": "department_staff", "department": {"slug": SO}},
    "role as a list": {"role": ["admin"]},
    "role as an object": {"role": {"name": "admin"}},
    "empty sub": {"sub": "", "role": "admin"},
    "blank sub": {"sub": "   ", "role": "admin"},
    "client as a list": {"role": "admin", "azp": ["a", "b"]},
}


async def test_a_token_with_a_claim_of_the_wrong_type_or_an_empty_sub_is_401(postgres_url: str) -> None:
    from services.intake.app import create_app

    wrong = []
    async with service_api(create_app, service="intake", broker=None, database_url=postgres_url) as api:
        for case, claims in BROKEN_CLAIMS.items():
            response = await api.get("/v1/households", headers=_token(api.settings, **claims))
            if response.status_code != 401 or response.headers.get("www-authenticate") != "Bearer":
                wrong.append(f"{case}: {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)


# --- 405 ---------------------------------------------------------------------------------------

async def test_every_405_names_the_methods_the_path_allows(apps) -> None:
    wrong = []
    assert all(list(operations(service)) for service in SERVICES)
    for service in SERVICES:
        templates = {path: {m.upper() for m, _op in item.items() if m in METHODS}
                     for path, item in document(service)["paths"].items()}
        for path in templates:
            url = fill(path)
            allowed = set().union(*(methods for other, methods in templates.items()
                                    if template_pattern(other).match(url)))
            for method in sorted({"HEAD", *(m.upper() for m in METHODS)} - allowed):
                response = await apps[service].request(method, url, headers=bearer(
                    apps[service].settings, "admin"))  # type: ignore[attr-defined]
                found = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
                if response.status_code != 405 or found != allowed:
                    wrong.append(f"{service} {method} {path}: {response.status_code} Allow={found} "
                                 f"expected {sorted(allowed)}")
    assert not wrong, "\n".join(wrong)
