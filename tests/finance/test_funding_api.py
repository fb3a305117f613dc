"""External funding through REST, on SQLite and PostgreSQL: finance records a grant, and it lowers
what the råderum and the departments pay in allocations, settlements and statements; the
coordination group and municipal systems read funding per site and year."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.finance import handlers
from services.finance.app import create_app
from shared.events.casework import StaffStationed
from tests.finance.test_budgets_and_roster import _allocation, _deliver
from tests.support import bearer, service_api

BUDGET = {"site_id": "gellerup", "year": 2026, "total_ore": 680_000_000, "pool_ore": 350_000_000}
SFB, BU, SO, KB = ("sociale-forhold-og-beskaeftigelse", "boern-og-unge", "sundhed-og-omsorg",
                   "kultur-og-borgerservice")
#: The worked example's team: 7 FTE from SFB (the leader included), 2 BU, 1.5 SO, 0.5 KB.
ROSTER = [(SFB, "1")] * 7 + [(BU, "1")] * 2 + [(SO, "1"), (SO, "0.5"), (KB, "0.5")]
GRANT = {"site_id": "gellerup", "code": "departments-grant", "funder": "private-foundation",
         "period_start": "2026-01-01", "period_end": "2026-12-31", "amount_ore": 33_000_000,
         "pays_for": "departments"}


@pytest.fixture
async def api(database_url: str):
    async with service_api(create_app, service="finance", broker=None, database_url=database_url) as http:
        http.finance = bearer(http.settings, "finance")
        for index, (department, fte) in enumerate(ROSTER):
            await _deliver(http, handlers.on_staff_stationed, StaffStationed(
                stationing_id=uuid.uuid4(), staff_id=uuid.uuid4(), site_id="gellerup", department=department,
                discipline="other", role="staff", fte=Decimal(fte), starts_on=date(2026, 1, 1)),
                f"ev-{index}", datetime(2026, 1, 2, tzinfo=UTC))
        assert (await http.post("/v1/budgets", headers=http.finance, json=BUDGET)).status_code == 201
        yield http


async def test_a_grant_for_the_departments_lowers_their_shares_by_fte_days(api) -> None:
    before = await _allocation(api)
    assert before["departments"] == {SFB: 210_000_000, BU: 60_000_000, SO: 45_000_000, KB: 15_000_000}
    assert before["external_ore"] == 0
    recorded = await api.post("/v1/grants", headers=api.finance, json=GRANT)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["years"] == [{"year": 2026, "amount_ore": 33_000_000}]
    after = await _allocation(api)
    # By hand: the departments' 330 M øre less the grant's 33 M = 297 M øre, by FTE 7 : 2 : 1.5 : 0.5
    # of 11: 189 M, 54 M, 40.5 M, 13.5 M; the råderum's part is untouched.
    assert after["departments"] == {SFB: 189_000_000, BU: 54_000_000, SO: 40_500_000, KB: 13_500_000}
    assert (after["pool_ore"], after["pool_before_grants_ore"], after["external_ore"]) == (
        350_000_000, 350_000_000, 33_000_000)
    paid = after["pool_ore"] + sum(after["departments"].values()) + after["external_ore"]
    assert paid == after["total_ore"]


async def test_settlements_charge_what_the_grant_leaves_and_statements_show_the_relief(api) -> None:
    await api.post("/v1/grants", headers=api.finance, json=GRANT)
    settled = await api.post("/v1/settlements", headers=api.finance,
                             json={"site_id": "gellerup", "year": 2026})
    assert settled.status_code == 201, settled.text
    assert {e["department"]: e["amount_ore"] for e in settled.json()} == {
        SFB: 189_000_000, BU: 54_000_000, SO: 40_500_000, KB: 13_500_000}
    health = bearer(api.settings, "department_staff", department=SO)
    statement = await api.get("/v1/statements", headers=health,
                              params={"site_id": "gellerup", "department": SO, "year": 2026})
    assert statement.status_code == 200, statement.text
    # 45 M øre without the grant, 40.5 M with it.
    read = statement.json()
    assert (read["balance_ore"], read["external_funding_ore"]) == (40_500_000, 4_500_000)
    lines = (await api.get("/v1/statements.csv", headers=health,
                           params={"site_id": "gellerup", "department": SO, "year": 2026})).text.splitlines()
    assert lines[-2:] == [f"external_funding,gellerup,{SO},,,,,4500000,45000.00",
                          f"balance,gellerup,{SO},,,,,40500000,405000.00"]


async def test_funding_per_site_and_year_for_the_report(api) -> None:
    operating = {**GRANT, "code": "operating-grant", "pays_for": "operating_cost", "amount_ore": 136_000_000,
                 "period_start": "2026-01-01", "period_end": "2027-12-31"}
    assert (await api.post("/v1/grants", headers=api.finance, json=operating)).status_code == 201
    for role in ("coordination", "system", "finance"):
        response = await api.get("/v1/funding", params={"year": 2026}, headers=bearer(api.settings, role))
        assert response.status_code == 200, response.text
    (gellerup,) = response.json()
    # By hand: 136 M øre over 2026 and 2027, 365 days each: 68 M øre in 2026, split 350 : 330
    # between the råderum (35 M) and the departments (33 M).
    assert gellerup | {"grants": None} == {
        "site_id": "gellerup", "year": 2026, "total_ore": 680_000_000, "external_ore": 68_000_000,
        "pool_before_grants_ore": 350_000_000, "pool_ore": 315_000_000,
        "departments_before_grants_ore": 330_000_000, "departments_ore": 297_000_000, "grants": None}
    (share,) = gellerup["grants"]
    assert (share["code"], share["amount_ore"], share["pool_reduction_ore"],
            share["departments_reduction_ore"], share["unused_ore"]) == (
        "operating-grant", 68_000_000, 35_000_000, 33_000_000, 0)
    # A year without a budget yet: the grant's part is shown, and reduces nobody's payment.
    (next_year,) = (await api.get("/v1/funding", params={"year": 2027}, headers=api.finance)).json()
    assert (next_year["total_ore"], next_year["external_ore"], next_year["grants"][0]["unused_ore"]) == (
        None, 0, 68_000_000)
    listed = await api.get("/v1/grants", params={"year": 2027},
                           headers=bearer(api.settings, "coordination"))
    assert [g["code"] for g in listed.json()["items"]] == ["operating-grant"]
    assert (await api.get("/v1/grants", params={"year": 2028}, headers=api.finance)).json()["items"] == []


@pytest.mark.parametrize(("change", "field"), [
    ({"period_end": "2025-12-31"}, "body.period_end"),
    ({"amount_ore": 0}, "body.amount_ore"),
    ({"amount_ore": -5}, "body.amount_ore"),
    ({"funder": "Hans Jensen 0101851234"}, "body.funder"),
    ({"pays_for": "coffee"}, "body.pays_for"),
    ({"period_start": "2010-01-01"}, "body.period_start"),
    ({"period_end": "2200-12-31"}, "body.period_end"),
])
async def test_a_bad_grant_is_422_naming_the_field_and_changes_nothing(api, change: dict, field: str) -> None:
    response = await api.post("/v1/grants", headers=api.finance, json={**GRANT, **change})
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert "0101851234" not in response.text
    assert (await _allocation(api))["external_ore"] == 0


async def test_a_grant_code_is_the_sites_own_and_only_finance_records_grants(api) -> None:
    assert (await api.post("/v1/grants", headers=api.finance, json=GRANT)).status_code == 201
    assert (await api.post("/v1/grants", headers=api.finance, json=GRANT)).status_code == 409
    for role in ("coordination", "system"):
        refused = await api.post("/v1/grants", headers=bearer(api.settings, role),
                                 json={**GRANT, "code": "x-two"})
        assert refused.status_code == 403
    department = bearer(api.settings, "department_staff", department=SO)
    assert (await api.get("/v1/funding", params={"year": 2026}, headers=department)).status_code == 403
