"""Budgets can be listed, money fields say what they are, and an allocation says which roster
change it includes, so a client can tell when it is stale. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.finance import handlers
from services.finance.app import create_app
from shared.events.casework import StaffStationed, StationingEnded
from shared.events.envelope import Envelope
from shared.events.registry import DomainEvent
from shared.outbox import source_for
from shared.settings import Settings
from tests.support import bearer, service_api

BUDGET = {"site_id": "gellerup", "year": 2026, "total_ore": 680_000_000, "pool_ore": 350_000_000}
SO, BU = "sundhed-og-omsorg", "boern-og-unge"


@pytest.fixture
async def api(database_url: str):
    async with service_api(create_app, service="finance", broker=None, database_url=database_url) as http:
        http.finance = bearer(http.settings, "finance")  # type: ignore[attr-defined]
        yield http


async def _deliver(api, handler, event: DomainEvent, event_id: str, at: datetime) -> None:
    """Hand casework's event to finance's handler as its consumer would, with a known id and time."""
    envelope = Envelope(type=event.event_type, source=source_for("casework"), key=event.partition_key(),
                        data=event.model_dump(mode="json"), id=event_id, time=at)
    async with api.app.state.sessionmaker() as session:
        await handler(session, event, envelope)
        await session.commit()


async def _allocation(api) -> dict:
    response = await api.get("/v1/allocations", params={"site_id": "gellerup", "year": 2026},
                             headers=api.finance)
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_allocation_says_which_roster_change_it_includes(api) -> None:
    assert (await api.post("/v1/budgets", headers=api.finance, json=BUDGET)).status_code == 201
    health, children = uuid.uuid4(), uuid.uuid4()
    first, second, ended = (datetime(2026, 1, 5, 9, tzinfo=UTC), datetime(2026, 1, 6, 9, tzinfo=UTC),
                            datetime(2026, 3, 1, 12, tzinfo=UTC))
    for stationing, department, event_id, at in ((health, SO, "ev-1", first), (children, BU, "ev-2", second)):
        await _deliver(api, handlers.on_staff_stationed, StaffStationed(
            stationing_id=stationing, staff_id=uuid.uuid4(), site_id="gellerup", department=department,
            discipline="other", role="staff", fte=Decimal("1"), starts_on=date(2026, 1, 1)), event_id, at)
    both = await _allocation(api)
    assert (both["roster_event_id"], both["roster_as_of"]) == ("ev-2", "2026-01-06T09:00:00Z")

    await _deliver(api, handlers.on_stationing_ended, StationingEnded(
        stationing_id=children, staff_id=uuid.uuid4(), site_id="gellerup", department=BU,
        ends_on=date(2026, 6, 30)), "ev-3", ended)
    after = await _allocation(api)
    assert (after["roster_event_id"], after["roster_as_of"]) == ("ev-3", "2026-03-01T12:00:00Z")
    assert after["departments"][BU] < both["departments"][BU]  # the change it names is in the figures

    preview = await api.post("/v1/allocations/preview", headers=api.finance, json={**BUDGET, "roster": [
        {"department": SO, "fte": "1", "starts_on": "2026-01-01"}]})
    assert preview.status_code == 200 and preview.json()["roster_as_of"] is None


async def test_budgets_are_listed_by_year_in_pages_for_finance_and_coordination(api) -> None:
    for site in ("gellerup", "viby", "bispehaven"):
        assert (await api.post("/v1/budgets", headers=api.finance,
                               json={**BUDGET, "site_id": site})).status_code == 201
    await api.post("/v1/budgets", headers=api.finance, json={**BUDGET, "year": 2027})
    first = await api.get("/v1/budgets", params={"year": 2026, "limit": 2}, headers=api.finance)
    assert first.status_code == 200, first.text
    page_two = {"year": 2026, "limit": 2, "cursor": first.json()["next_cursor"]}
    rest = await api.get("/v1/budgets", params=page_two, headers=bearer(api.settings, "coordination"))
    listed = first.json()["items"] + rest.json()["items"]
    assert [b["site_id"] for b in listed] == ["bispehaven", "gellerup", "viby"]
    assert rest.json()["next_cursor"] is None
    assert listed[0] == {**BUDGET, "site_id": "bispehaven"}
    one = await api.get("/v1/budgets", params={"year": 2026, "site_id": "viby"}, headers=api.finance)
    assert [b["site_id"] for b in one.json()["items"]] == ["viby"]
    missing_year = await api.get("/v1/budgets", headers=api.finance)
    assert missing_year.status_code == 422 and missing_year.json()["errors"][0]["field"] == "query.year"
    assert (await api.get("/v1/budgets", params={"year": 2026}, headers=api.team)).status_code == 403


def test_the_money_fields_say_what_they_are() -> None:
    document = create_app(Settings(service="finance")).openapi()["components"]["schemas"]
    for name in ("BudgetIn", "BudgetRead", "AllocationRead"):
        pool = document[name]["properties"]["pool_ore"]
        text = pool.get("description") or next(p.get("description", "") for p in pool.get("anyOf", []))
        assert "råderum" in text and "øre" in text, name
        assert "øre" in document[name]["properties"]["total_ore"]["description"], name
    for name, schema in document.items():
        for field, spec in schema.get("properties", {}).items():
            if field.endswith("_ore"):
                assert "øre" in json.dumps(spec, ensure_ascii=False), f"{name}.{field} does not say it is øre"
