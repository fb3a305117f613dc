"""Savings by area through the REST API on a cohort shaped like the Gellerup pilot: 62 families
enrolled by intake, their income support imported as CSV from the economy system, their measures
under Serviceloven and Barnets Lov entered by finance staff; every figure of the report is
checked against the arithmetic written beside it."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from services.finance import handlers
from services.finance.app import create_app
from shared.events.intake import FamilyEnrolled
from shared.tables import outbox
from tests.casework.support import deliver, ok
from tests.support import bearer, service_api

ENROLLED = date(2019, 9, 1)


@pytest.fixture
async def api(database_url: str):
    async with service_api(create_app, service="finance", broker=None, database_url=database_url) as http:
        http.finance = bearer(http.settings, "finance")  # type: ignore[attr-defined]
        yield http


async def enrol(api: Any, site: str = "gellerup") -> uuid.UUID:
    family = uuid.uuid4()
    await deliver(api, handlers.on_family_enrolled,
                  FamilyEnrolled(family_id=family, site_id=site, members=[]), ENROLLED)
    return family


def csv_body(rows: list[tuple[Any, ...]]) -> bytes:
    lines = ["family_id,site_id,area,baseline_ore,current_ore"] + [",".join(map(str, r)) for r in rows]
    return "\r\n".join(lines).encode()


async def import_csv(api: Any, rows: list[tuple[Any, ...]]) -> Any:
    return await api.post("/v1/costs/imports", content=csv_body(rows),
                          headers={**api.finance, "Content-Type": "text/csv"})


async def recorded(api: Any) -> list[dict[str, Any]]:
    async with api.app.state.sessionmaker() as session:
        return list((await session.execute(select(outbox.c.payload).where(
            outbox.c.event_type == "dk.aarhus.oto.finance.family-costs-recorded.v1"))).scalars())


async def test_savings_by_area_on_a_pilot_shaped_cohort(api) -> None:
    cohort = [await enrol(api) for _ in range(62)]
    elsewhere = await enrol(api, site="viby")
    # Income support (forsørgelse): 180,000 DKK a year before; 40 families now self-supporting.
    income = [(family, "gellerup", "income_support", 18_000_000, 0 if n < 40 else 18_000_000)
              for n, family in enumerate(cohort)]
    assert await ok(await import_csv(api, [*income, (elsewhere, "viby", "income_support", 9_000_000, 0)]),
                    201) == {"families": 63, "rows": 63}
    # Serviceloven for 31 families (50,000 → 30,000 DKK), Barnets Lov for 20 of them (60,000 → 45,000).
    for n, family in enumerate(cohort[:31]):
        areas = {"service_act": {"baseline_ore": 5_000_000, "current_ore": 3_000_000}}
        if n < 20:
            areas["childrens_act"] = {"baseline_ore": 6_000_000, "current_ore": 4_500_000}
        put = await ok(await api.put(f"/v1/families/{family}/costs", headers=api.finance,
                                     json={"site_id": "gellerup", "areas": areas}))
        assert set(put["areas"]) == {"income_support", *areas}  # the imported area is kept
    await ok(await api.post("/v1/budgets", headers=api.finance, json={
        "site_id": "gellerup", "year": 2026, "total_ore": 680_000_000, "pool_ore": 350_000_000}), 201)

    report = await ok(await api.get("/v1/savings/areas", headers=api.finance,
                                    params={"site_id": "gellerup", "year": 2026, "years": 4}))
    areas = {a["area"]: a for a in report["areas"]}
    assert report["families"] == 62
    assert areas["income_support"] == {
        "area": "income_support", "families": 62, "baseline_per_year_ore": 1_116_000_000,  # 62 × 18,000,000
        "current_per_year_ore": 396_000_000, "savings_per_year_ore": 720_000_000,  # 22 ×; 40 × 18,000,000
        "average_per_family_per_year_ore": 11_612_903}  # 720,000,000 / 62 = 11,612,903.2
    assert areas["service_act"] == {
        "area": "service_act", "families": 62, "baseline_per_year_ore": 155_000_000,  # 31 × 5,000,000
        "current_per_year_ore": 93_000_000,  # 31 × 3,000,000
        "savings_per_year_ore": 62_000_000,  # 31 × 2,000,000
        "average_per_family_per_year_ore": 1_000_000}  # 62,000,000 / 62
    assert areas["childrens_act"] == {
        "area": "childrens_act", "families": 62, "baseline_per_year_ore": 120_000_000,  # 20 × 6,000,000
        "current_per_year_ore": 90_000_000,  # 20 × 4,500,000
        "savings_per_year_ore": 30_000_000,  # 20 × 1,500,000
        "average_per_family_per_year_ore": 483_871}  # 30,000,000 / 62 = 483,870.97, half up
    assert report["total"] == {
        "area": "total", "families": 62,
        "baseline_per_year_ore": 1_116_000_000 + 155_000_000 + 120_000_000,
        "current_per_year_ore": 396_000_000 + 93_000_000 + 90_000_000,
        "savings_per_year_ore": 812_000_000,  # 720,000,000 + 62,000,000 + 30,000,000
        "average_per_family_per_year_ore": 13_096_774}  # 812,000,000 / 62 = 13,096,774.19
    assert report["total"]["average_per_family_per_year_ore"] > 10_000_000  # over 100,000 DKK (pilot)
    assert report["over_years_ore"] == 3_248_000_000  # 4 × 812,000,000: at least 15 M DKK
    assert report["pool_per_year_ore"] == 350_000_000 and report["pool_over_years_ore"] == 1_400_000_000
    assert report["break_even"] is True
    assert report["families_to_break_even"] == 27  # ⌈350,000,000 × 62 / 812,000,000⌉ = ⌈26.72⌉

    # A foundation pays 68 M øre of 2026's operating cost: 35 M off the råderum (350 : 330), so the
    # municipality's own pool, the bar for breaking even, is 315 M øre in both savings reports.
    await ok(await api.post("/v1/grants", headers=api.finance, json={
        "site_id": "gellerup", "code": "operating-grant", "funder": "private-foundation",
        "period_start": "2026-01-01", "period_end": "2026-12-31", "amount_ore": 68_000_000,
        "pays_for": "operating_cost"}), 201)
    funded = await ok(await api.get("/v1/savings/areas", headers=api.finance,
                                    params={"site_id": "gellerup", "year": 2026, "years": 4}))
    assert funded["pool_per_year_ore"] == 315_000_000 and funded["pool_over_years_ore"] == 1_260_000_000
    assert funded["families_to_break_even"] == 25  # ⌈315,000,000 × 62 / 812,000,000⌉ = ⌈24.05⌉
    summary = await ok(await api.get("/v1/savings", headers=api.finance,
                                     params={"site_id": "gellerup", "year": 2026, "years": 4}))
    assert summary["pool_over_years_ore"] == 1_260_000_000

    everywhere = await ok(await api.get("/v1/savings/areas", headers=bearer(api.settings, "coordination"),
                                        params={"year": 2026, "years": 4}))
    assert everywhere["families"] == 63 and everywhere["total"]["savings_per_year_ore"] == 821_000_000
    assert len(await recorded(api)) == 63 + 31  # one per family imported, one per entry


async def test_bad_cost_figures_change_nothing_and_name_the_line_or_field(api) -> None:
    family, other = await enrol(api), await enrol(api, site="viby")
    good = (family, "gellerup", "income_support", 100, 50)
    bad = await import_csv(api, [good, (uuid.uuid4(), "gellerup", "income_support", 1, 0),
                                 (other, "gellerup", "service_act", 1, 0), (family, "gellerup", "rent", 1, 0),
                                 (family, "gellerup", "service_act", -5, 0), good,
                                 (family, "gellerup", "childrens_act", "\u00b2", 0)])
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == [
        "body.line.3", "body.line.4", "body.line.5", "body.line.6", "body.line.7", "body.line.8"]
    assert (await import_csv(api, [])).status_code == 422
    wrong_columns = await api.post("/v1/costs/imports", content=b"a,b\n1,2\n",
                                   headers={**api.finance, "Content-Type": "text/csv"})
    assert wrong_columns.status_code == 422
    for odd in (b"a\nb\rc\xc2\x85d\x0be", b"\xff\xfe", b""):  # not CSV, not UTF-8, empty: 422, not 500
        refused = await api.post("/v1/costs/imports", content=odd,
                                 headers={**api.finance, "Content-Type": "text/csv"})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body"
    figures = {"site_id": "gellerup", "areas": {"income_support": {"baseline_ore": 1, "current_ore": 0}}}
    guessed = await api.put(f"/v1/families/{uuid.uuid4()}/costs", headers=api.finance, json=figures)
    assert guessed.status_code == 404
    moved = await api.put(f"/v1/families/{other}/costs", headers=api.finance, json=figures)
    assert moved.status_code == 422 and moved.json()["errors"][0]["field"] == "body.site_id"
    unknown = await api.put(f"/v1/families/{family}/costs", headers=api.finance,
                            json={"site_id": "gellerup",
                                  "areas": {"rent": {"baseline_ore": 1, "current_ore": 0}}})
    assert unknown.status_code == 422
    team = bearer(api.settings, "team_leader", site="gellerup")
    assert (await api.put(f"/v1/families/{family}/costs", headers=team, json=figures)).status_code == 403
    report = await ok(await api.get("/v1/savings/areas", headers=api.finance, params={"year": 2026}))
    assert report["families"] == 0 and report["families_to_break_even"] is None
    assert await recorded(api) == []
