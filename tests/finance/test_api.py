"""Finance through REST on PostgreSQL, with stationing events from the real broker."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from services.finance.app import create_app
from shared.events.casework import EmploymentStatusRecorded, StaffStationed
from shared.events.intake import FamilyEnrolled
from tests.support import Broker, bearer, eventually, publish, service_api

pytestmark = pytest.mark.broker
ROSTER = ([{"department": "sociale-forhold-og-beskaeftigelse", "fte": "1", "starts_on": "2026-01-01"}] * 6
          + [{"department": "sociale-forhold-og-beskaeftigelse", "role": "leader", "fte": "1",
              "starts_on": "2026-01-01"}]
          + [{"department": "boern-og-unge", "fte": "1", "starts_on": "2026-01-01"}] * 2
          + [{"department": "sundhed-og-omsorg", "fte": "1", "starts_on": "2026-01-01"},
             {"department": "sundhed-og-omsorg", "fte": "0.5", "starts_on": "2026-01-01"},
             {"department": "kultur-og-borgerservice", "fte": "0.5", "starts_on": "2026-01-01"}])
BUDGET = {"site_id": "gellerup", "year": 2026, "total_ore": 680_000_000, "pool_ore": 350_000_000}


@pytest.fixture
async def api(broker: Broker, postgres_url: str):
    async with service_api(create_app, service="finance", broker=broker, database_url=postgres_url) as http:
        http.finance = bearer(http.settings, "finance")  # type: ignore[attr-defined]
        yield http


async def test_the_worked_example_through_rest(api) -> None:
    response = await api.post("/v1/allocations/preview", headers=api.finance,
                              json={**BUDGET, "roster": ROSTER})
    assert response.status_code == 200, response.text
    assert response.json()["departments"] == {
        "sociale-forhold-og-beskaeftigelse": 210_000_000, "boern-og-unge": 60_000_000,
        "sundhed-og-omsorg": 45_000_000, "kultur-og-borgerservice": 15_000_000}


@pytest.mark.parametrize(("change", "field"), [
    ({"total_ore": -5}, "body.total_ore"),
    ({"pool_ore": 700_000_000}, "body.pool_ore"),
    ({"roster": [{**ROSTER[0], "fte": "0"}]}, "body.roster.0.fte"),
    ({"roster": [{**ROSTER[0], "fte": "1.5"}]}, "body.roster.0.fte"),
    ({"roster": [{**ROSTER[0], "department": "teknik-og-miljoe"}]}, "body.roster.0.department"),
])
async def test_bad_input_is_422_naming_the_field(api, change: dict, field: str) -> None:
    response = await api.post("/v1/allocations/preview", headers=api.finance,
                              json={**BUDGET, "roster": ROSTER, **change})
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_duplicate_stationing_events_do_not_double_count(api, broker) -> None:
    events = [StaffStationed(stationing_id=uuid.uuid4(), staff_id=uuid.uuid4(), site_id="gellerup",
                             department=r["department"], discipline="other", role=r.get("role", "staff"),
                             fte=Decimal(r["fte"]), starts_on=date(2026, 1, 1)) for r in ROSTER]
    await publish(api.settings, broker.bootstrap, events, times=2)
    assert (await api.post("/v1/budgets", headers=api.finance, json=BUDGET)).status_code == 201

    async def allocated():
        response = await api.get("/v1/allocations", params={"site_id": "gellerup", "year": 2026},
                                 headers=api.finance)
        consumer = api.app.state.consumers[0]
        return response.json() if response.status_code == 200 and consumer.handled >= 22 else None
    result = await eventually(allocated, timeout=30)
    assert result["departments"]["sundhed-og-omsorg"] == 45_000_000
    assert Decimal(result["fte_days"]["sociale-forhold-og-beskaeftigelse"]) == 7 * 365


async def test_corrections_keep_the_history_and_the_balance_and_departments_see_only_their_own(
        api, broker) -> None:
    events = [StaffStationed(stationing_id=uuid.uuid4(), staff_id=uuid.uuid4(), site_id="viby",
                             department=r["department"], discipline="other", role="staff",
                             fte=Decimal(r["fte"]), starts_on=date(2026, 1, 1)) for r in ROSTER]
    await publish(api.settings, broker.bootstrap, events)
    await api.post("/v1/budgets", headers=api.finance, json={**BUDGET, "site_id": "viby"})

    assert await eventually(lambda: _handled(api, 11), timeout=30)  # every stationing is in
    response = await api.post("/v1/settlements", headers=api.finance,
                              json={"site_id": "viby", "year": 2026, "quarter": 1})
    assert response.status_code == 201, response.text
    entries = response.json()
    # Q1 is 90 of 365 days of each department's yearly amount: SFB 51,780,821.92 (its quarters'
    # 3 left-over øre go to Q1, Q3, Q4), BU 14,794,520.55, SO 11,095,890.41, KB 3,698,630.14 (their
    # 2 left-over øre go to Q3 and Q4): 81,369,862 øre.
    assert sorted(e["amount_ore"] for e in entries) == [3_698_630, 11_095_890, 14_794_520, 51_780_822]
    year = await api.post("/v1/settlements", headers=api.finance, json={"site_id": "viby", "year": 2026})
    assert year.status_code == 409  # Q1 is already charged: the year would charge it twice
    again = await api.post("/v1/settlements", headers=api.finance, json={"site_id": "viby", "year": 2026,
                                                                          "quarter": 1})
    assert again.status_code == 409
    children = next(e for e in entries if e["department"] == "boern-og-unge")
    fixed = await api.post(f"/v1/ledger/{children['id']}/correct", headers=api.finance,
                           json={"amount_ore": 14_000_000})
    assert fixed.status_code == 201
    twice = await api.post(f"/v1/ledger/{children['id']}/correct", headers=api.finance,
                           json={"amount_ore": 1})
    assert twice.status_code == 409
    own = bearer(api.settings, "department_staff", department="boern-og-unge")
    params = {"site_id": "viby", "department": "boern-og-unge", "year": 2026}
    statement = (await api.get("/v1/statements", params=params, headers=own)).json()
    assert [e["kind"] for e in statement["entries"]] == ["charge", "reversal", "correction"]
    assert statement["entries"][0]["amount_ore"] == children["amount_ore"]
    assert statement["balance_ore"] == 14_000_000
    other = bearer(api.settings, "department_staff", department="sundhed-og-omsorg")
    assert (await api.get("/v1/statements", params=params, headers=other)).status_code == 404
    assert (await api.get("/v1/statements.csv", params=params, headers=other)).status_code == 404
    csv = await api.get("/v1/statements.csv", params=params, headers=own)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[-1].endswith("14000000,140000.00")
    assert (await api.post("/v1/budgets", headers=own, json=BUDGET)).status_code == 403


async def _handled(api, n: int) -> bool:
    return api.app.state.consumers[0].handled >= n


async def test_savings_use_entered_figures_or_derive_them_from_outcome_events(api, broker) -> None:
    derived_family, entered_family = uuid.uuid4(), uuid.uuid4()
    first, second = uuid.uuid4(), uuid.uuid4()
    events = [
        EmploymentStatusRecorded(family_id=derived_family, site_id="tilst", person_id=first,
                                 status="unemployed", since=date(2020, 1, 1)),
        EmploymentStatusRecorded(family_id=derived_family, site_id="tilst", person_id=second,
                                 status="unemployed", since=date(2020, 1, 1)),
        EmploymentStatusRecorded(family_id=derived_family, site_id="tilst", person_id=first,
                                 status="ordinary_job", since=date(2022, 5, 1)),
    ]
    enrolled = FamilyEnrolled(family_id=entered_family, site_id="tilst", members=[])
    await publish(api.settings, broker.bootstrap, [*events, enrolled])
    figures = {"site_id": "tilst", "baseline_ore": 26_000_000, "current_ore": 15_000_000}
    guessed = await api.put(f"/v1/families/{uuid.uuid4()}/savings", headers=api.finance, json=figures)
    assert guessed.status_code == 404  # only families intake enrolled: a guess would skew averages

    async def entered():
        put = await api.put(f"/v1/families/{entered_family}/savings", headers=api.finance, json=figures)
        return put.status_code == 200
    assert await eventually(entered, timeout=30)
    elsewhere = await api.put(f"/v1/families/{entered_family}/savings", headers=api.finance,
                              json={**figures, "site_id": "viby"})
    assert elsewhere.status_code == 422 and elsewhere.json()["errors"][0]["field"] == "body.site_id"
    await api.post("/v1/budgets", headers=api.finance,
                   json={"site_id": "tilst", "year": 2026, "total_ore": 400_000_000, "pool_share": "0.5"})
    assert await eventually(lambda: _handled(api, 4), timeout=30)
    report = (await api.get("/v1/savings", params={"site_id": "tilst", "year": 2026, "years": 4},
                            headers=api.finance)).json()
    # Derived: the rate table's unemployed rate twice before; one rate (the other adult) now.
    assert report["families"] == 2
    assert report["savings_per_year_ore"] == 15_000_000 + 11_000_000
    assert report["over_years_ore"] == 4 * 26_000_000
    assert report["pool_over_years_ore"] == 4 * 200_000_000 and report["break_even"] is False


async def test_amounts_beyond_a_bigint_and_odd_site_ids_are_422_not_500(api) -> None:
    huge = await api.put(f"/v1/families/{uuid.uuid4()}/savings", headers=api.finance,
                         json={"site_id": "tilst", "baseline_ore": 10**20, "current_ore": 0})
    assert huge.status_code == 422 and huge.json()["errors"][0]["field"] == "body.baseline_ore"
    odd = await api.get("/v1/statements.csv", headers=api.finance,
                        params={"site_id": "Ælø", "department": "boern-og-unge", "year": 2026})
    assert odd.status_code == 422 and odd.json()["errors"][0]["field"] == "query.site_id"
