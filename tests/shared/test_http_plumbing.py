"""Auth, problem+json errors, idempotency, health and metrics through a real app and database."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import APIRouter, Depends
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from shared.app import ServiceDefinition, build_app
from shared.auth import Principal, Role, mint_token, require_roles
from shared.catalogue import asyncapi_document
from shared.events.envelope import CORRELATION_HEADER
from shared.idempotency import IdempotencyDep
from shared.inbox import STALL_SECONDS, EventConsumer, Subscription
from shared.outbox import record_event, row_to_envelope
from shared.tables import outbox
from tests.shared.plumbing import thing
from tests.support import bearer, make_settings

router = APIRouter(prefix="/v1")


class ThingIn(BaseModel):
    seq: int = Field(ge=0)
    cpr: str | None = Field(default=None, pattern=r"^\d{10}$")


class ThingOut(BaseModel):
    seq: int
    id: uuid.UUID
    at: datetime


@router.post("/things", response_model=ThingOut, status_code=201)
async def create_thing(body: ThingIn, idem: IdempotencyDep,
                       principal: Principal = Depends(require_roles(Role.TEAM_STAFF))) -> ThingOut:
    async def action() -> ThingOut:
        await record_event(idem.session, thing(uuid.uuid4(), body.seq))
        return ThingOut(seq=body.seq, id=uuid.uuid4(), at=datetime.now(UTC))
    return await idem.run(ThingOut, action)


@router.get("/finance-only")
async def finance_only(principal: Principal = Depends(require_roles(Role.FINANCE))):
    return {"ok": True}


@pytest.fixture
async def client(sqlite_url: str):
    settings = make_settings(database_url=sqlite_url)
    app = build_app(ServiceDefinition(name="intake", title="t", description="d", routers=[router]),
                    settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            http.settings = settings  # type: ignore[attr-defined]
            http.app = app  # type: ignore[attr-defined]
            yield http


async def test_missing_expired_forged_and_alg_none_tokens_are_401(client) -> None:
    settings = client.settings
    expired = mint_token(settings, subject="u", role="team_staff", site="viby", ttl=timedelta(seconds=-5))
    forged = jwt.encode({"sub": "u", "role": "team_staff", "site": "viby", "iss": settings.jwt_issuer,
                         "aud": settings.jwt_audience, "exp": datetime.now(UTC) + timedelta(hours=1)},
                        "another-key-that-is-long-enough-for-hs256-xx", algorithm="HS256")
    unsigned = jwt.encode({"sub": "u", "role": "team_staff", "site": "viby", "iss": settings.jwt_issuer,
                           "aud": settings.jwt_audience}, None, algorithm="none")
    wrong_audience = jwt.encode({"sub": "u", "role": "team_staff", "site": "viby", "iss": settings.jwt_issuer,
                                 "aud": "elsewhere", "exp": datetime.now(UTC) + timedelta(hours=1)},
                                settings.jwt_secret.get_secret_value(), algorithm="HS256")
    for headers in ({}, {"Authorization": "Bearer " + expired}, {"Authorization": "Bearer " + forged},
                    {"Authorization": "Bearer " + unsigned}, {"Authorization": "Bearer " + wrong_audience},
                    {"Authorization": "Basic abc"}):
        response = await client.post("/v1/things", json={"seq": 1}, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_wrong_role_is_403(client) -> None:
    team = bearer(client.settings, "team_staff", site="viby")
    response = await client.get("/v1/finance-only", headers=team)
    assert response.status_code == 403
    ok = await client.get("/v1/finance-only", headers=bearer(client.settings, "finance"))
    assert ok.status_code == 200


async def test_a_department_token_without_a_department_is_401(client) -> None:
    response = await client.get("/v1/finance-only", headers=bearer(client.settings, "department_staff"))
    assert response.status_code == 401


async def test_validation_errors_name_the_field_and_never_echo_the_value(client) -> None:
    response = await client.post("/v1/things", json={"seq": -1, "cpr": "01019O1234"},
                                 headers=bearer(client.settings, "team_staff", site="viby"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"body.seq", "body.cpr"}
    assert "01019O1234" not in response.text


async def test_idempotency_key_replays_the_first_response_and_writes_once(client) -> None:
    headers = {**bearer(client.settings, "team_staff", site="viby"), "Idempotency-Key": "abc-1"}
    first = await client.post("/v1/things", json={"seq": 7}, headers=headers)
    second = await client.post("/v1/things", json={"seq": 7}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content  # byte for byte, the time's microseconds included
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    other = await client.post("/v1/things", json={"seq": 8}, headers=headers)
    assert other.status_code == 409
    async with client.app.state.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(outbox))).scalar_one() == 1


async def test_oversized_bodies_are_refused(client) -> None:
    response = await client.post("/v1/things", content=b"x" * (client.settings.max_body_bytes + 1),
                                 headers={**bearer(client.settings, "team_staff", site="viby"),
                                          "content-type": "application/json"})
    assert response.status_code == 413


async def test_health_is_alive_readiness_reports_the_broker_and_metrics_are_exposed(client) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 503  # the settings point at a port where no broker listens
    assert ready.json()["checks"] == {"database": True, "broker": False, "outbox": True}
    metrics = await client.get("/metrics")
    assert "oto_http_requests_total" in metrics.text
    assert client.headers.get("x-request-id") is None
    assert (await client.get("/healthz", headers={"X-Request-ID": "abc"})).headers["x-request-id"] == "abc"
    seconds = REGISTRY.get_sample_value("oto_http_request_seconds_count",
                                        {"service": "intake", "method": "GET", "route": "/healthz"})
    assert seconds is not None and seconds >= 2


async def test_a_consumer_that_stops_looping_makes_the_service_not_alive(client) -> None:
    subscription = Subscription("probe", ("casework",), {})
    consumer = EventConsumer(settings=client.settings, subscription=subscription,
                             sessionmaker=client.app.state.sessionmaker)
    client.app.state.consumers.append(consumer)
    assert (await client.get("/healthz")).status_code == 200
    consumer.last_progress -= STALL_SECONDS + 1  # no loop for longer than the stall limit: hung
    hung = await client.get("/healthz")
    assert hung.status_code == 503
    assert hung.headers["content-type"] == "application/problem+json"
    assert consumer.group_id in hung.json()["detail"]


async def test_the_request_id_travels_into_the_events_it_caused(client) -> None:
    headers = {**bearer(client.settings, "team_staff", site="gellerup"), "X-Request-ID": "req-4711"}
    assert (await client.post("/v1/things", json={"seq": 7}, headers=headers)).status_code == 201
    async with client.app.state.sessionmaker() as session:
        row = (await session.execute(select(outbox))).one()
    assert dict(row_to_envelope(row).headers())[CORRELATION_HEADER] == b"req-4711"


async def test_the_event_catalogue_is_served_for_the_services_topic_namespace(client) -> None:
    served = (await client.get("/asyncapi.json")).json()
    assert served == json.loads(json.dumps(asyncapi_document(namespace=client.settings.topic_namespace)))
    assert served["channels"]["intakeEvents"]["address"] == f"{client.settings.topic_namespace}.intake.events"
