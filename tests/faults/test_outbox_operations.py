"""Issue 13 through a running intake service: a consent whose text cannot be encoded is refused
with nothing committed; a poison row already in the outbox is parked while other families' events
flow, its family's later events wait, ``/readyz`` says degraded, and an admin retries or discards
it over the API; a relay that stops publishing makes ``/readyz`` answer 503 with the reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from services.intake.app import create_app as create_intake
from shared.events.envelope import Envelope
from shared.tables import outbox
from tests.intake.factories import define_area, household_body
from tests.support import Broker, bearer, eventually, service_api

pytestmark = [pytest.mark.broker, pytest.mark.postgres]
LONE_SURROGATE = "\ud800"


async def new_family(api: httpx.AsyncClient) -> tuple[str, str]:
    """A household with its outreach done; returns its id and the mother's."""
    await define_area(api, bearer(api.settings, "admin"))  # type: ignore[attr-defined]
    created = await api.post("/v1/households", json=household_body(), headers=api.team)  # type: ignore[attr-defined]
    assert created.status_code == 201, created.text
    household = created.json()
    outreach = await api.post(f"/v1/households/{household['id']}/outreach", headers=api.team,  # type: ignore[attr-defined]
                              json={"at": "2026-03-02T16:30:00Z", "outcome": "agreed"})
    assert outreach.status_code == 201, outreach.text
    return household["id"], household["members"][0]["id"]


async def outbox_ids(api: httpx.AsyncClient, **where: Any) -> list[str]:
    async with api.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        query = select(outbox.c.event_id).order_by(outbox.c.id)
        for column, value in where.items():
            query = query.where(outbox.c[column] == value)
        return list((await conn.execute(query)).scalars())


async def insert_poison(api: httpx.AsyncClient, family_id: str) -> str:
    """A row as the code before the fix committed it: text that cannot be encoded as UTF-8."""
    envelope = Envelope(type="dk.aarhus.oto.intake.outreach-recorded.v1", source="/oto/intake",
                        key=family_id, data={"family_id": family_id, "site_id": "gellerup",
                                             "note": LONE_SURROGATE})
    async with api.app.state.engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(outbox.insert().values(
            event_id=envelope.id, event_type=envelope.type, source=envelope.source,
            partition_key=envelope.key, occurred_at=envelope.time, payload=envelope.data))
    return envelope.id


async def test_a_consent_whose_text_cannot_be_encoded_is_refused_and_nothing_is_committed(
        postgres_url: str) -> None:
    async with service_api(create_intake, service="intake", broker=None, database_url=postgres_url) as api:
        family, mother = await new_family(api)
        before = await outbox_ids(api)
        body = {"person_id": mother, "given_by_person_id": mother,
                "purposes": [f"koordineret hjælp {LONE_SURROGATE}"], "departments": ["sundhed-og-omsorg"]}
        response = await api.post(f"/v1/households/{family}/consents", content=json.dumps(body),
                                  headers={**api.team, "content-type": "application/json"})  # type: ignore[attr-defined]
        consents = await api.get(f"/v1/households/{family}/consents", headers=api.team)  # type: ignore[attr-defined]
        after = await outbox_ids(api)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"]
    assert LONE_SURROGATE not in response.text and "\\ud800" not in response.text
    assert consents.json() == [] or consents.json().get("items") == []
    assert after == before


async def test_a_poison_row_is_parked_other_families_flow_and_an_admin_retries_or_discards_it(
        broker: Broker, postgres_url: str) -> None:
    async with service_api(create_intake, service="intake", broker=broker, database_url=postgres_url) as api:
        admin = bearer(api.settings, "admin")  # type: ignore[attr-defined]
        families = dict([await new_family(api) for _ in range(3)])
        poisoned, repaired, healthy = families
        assert await eventually(lambda: _all_published(api))
        discard_me = await insert_poison(api, poisoned)
        repair_me = await insert_poison(api, repaired)
        for family in (poisoned, repaired, healthy):  # one more event per family, behind the poison
            mother = families[family]
            consent = await api.post(f"/v1/households/{family}/consents", headers=api.team,  # type: ignore[attr-defined]
                                     json={"person_id": mother, "given_by_person_id": mother,
                                           "purposes": ["coordinated_help"],
                                           "departments": ["sundhed-og-omsorg"]})
            assert consent.status_code == 201, consent.text
        held = {family: (await outbox_ids(api, partition_key=family))[-1] for family in (poisoned, repaired)}
        healthy_later = (await outbox_ids(api, partition_key=healthy))[-1]

        # Other families flow; the poisoned ones are held behind their poison.
        assert await eventually(lambda: _published(api, healthy_later))
        assert await eventually(lambda: _parked_count(api, 2))
        assert not await _published(api, held[poisoned]) and not await _published(api, held[repaired])
        ready = await api.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["parked_events"] == 2
        assert await eventually(lambda: _true(REGISTRY.get_sample_value(
            "oto_outbox_parked_events", {"service": "intake"}) == 2))
        assert (await api.get("/v1/outbox/parked", headers=api.team)).status_code == 403  # type: ignore[attr-defined]
        listed = (await api.get("/v1/outbox/parked", headers=admin)).json()
        assert {(p["event_id"], p["partition_key"], p["held"]) for p in listed} == {
            (discard_me, poisoned, 1), (repair_me, repaired, 1)}
        assert all(p["reason"].startswith("UnicodeEncodeError") for p in listed)

        # Retried as it is, it is parked again; repaired and retried, it and its family follow.
        again = await api.post(f"/v1/outbox/parked/{repair_me}/retry", headers=admin)
        assert again.status_code == 200 and again.json()["status"] == "queued"
        assert await eventually(lambda: _parked_count(api, 2))
        async with api.app.state.engine.begin() as conn:  # type: ignore[attr-defined]
            await conn.execute(update(outbox).where(outbox.c.event_id == repair_me).values(
                payload={"family_id": repaired, "site_id": "gellerup", "note": "repaired"}))
        assert (await api.post(f"/v1/outbox/parked/{repair_me}/retry", headers=admin)).status_code == 200
        assert await eventually(lambda: _published(api, held[repaired]))
        assert await _published(api, repair_me)

        # Discarded: never published, its family's later event flows, and the audit log says who.
        gone = await api.post(f"/v1/outbox/parked/{discard_me}/discard", headers=admin)
        assert gone.status_code == 200 and gone.json()["status"] == "discarded"
        assert await eventually(lambda: _published(api, held[poisoned]))
        assert not await _published(api, discard_me)
        assert (await api.post(f"/v1/outbox/parked/{discard_me}/discard", headers=admin)).status_code == 409
        assert (await api.post(f"/v1/outbox/parked/{uuid.uuid4()}/retry", headers=admin)).status_code == 404
        audit = (await api.get("/audit", params={"subject_id": poisoned}, headers=admin)).json()["items"]
        ready_after = await api.get("/readyz")
    assert [(a["actor"], a["purpose"].split(" (")[0]) for a in audit if "discard" in a["purpose"]] == [
        ("admin-user", f"discard parked event {discard_me}")]
    assert ready_after.json()["status"] == "ready"


async def test_a_relay_that_stops_publishing_makes_readiness_503_with_the_reason(
        broker: Broker, postgres_url: str) -> None:
    async with service_api(create_intake, service="intake", broker=broker, database_url=postgres_url,
                           relay_enabled=False, outbox_stall_seconds=600) as api:
        await new_family(api)
        fresh = await api.get("/readyz")
        async with api.app.state.engine.begin() as conn:  # type: ignore[attr-defined]
            # The events have waited an hour (the relay published nothing meanwhile).
            await conn.execute(update(outbox).values(occurred_at=datetime.now(UTC) - timedelta(hours=1)))
        stalled = await api.get("/readyz")
        alive = await api.get("/healthz")
    assert fresh.status_code == 200
    assert stalled.status_code == 503
    assert stalled.headers["content-type"].startswith("application/problem+json")
    assert stalled.json()["checks"] == {"database": True, "broker": True, "outbox": False}
    assert "outbox stalled: the oldest of 2 pending events has waited 36" in stalled.json()["detail"]
    assert alive.status_code == 200  # not ready, but alive: restarting would not publish anything


async def _all_published(api: httpx.AsyncClient) -> bool:
    return not await outbox_ids(api, published_at=None)


async def _published(api: httpx.AsyncClient, event_id: str) -> bool:
    async with api.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        return (await conn.execute(select(outbox.c.published_at).where(
            outbox.c.event_id == event_id))).scalar_one() is not None


async def _parked_count(api: httpx.AsyncClient, expected: int) -> bool:
    async with api.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        return (await conn.execute(select(func.count()).where(
            outbox.c.parked_at.isnot(None), outbox.c.discarded_at.is_(None)))).scalar_one() == expected


async def _true(value: bool) -> bool:
    return value
