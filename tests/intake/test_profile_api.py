"""The cohort profile through the API, on SQLite and PostgreSQL: a cohort built through the API
and every figure compared with one worked out by hand from what the test entered."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from services.intake.app import create_app
from tests.intake.factories import cpr, define_area, household_body
from tests.support import bearer, service_api


@pytest.fixture
async def api(database_url: str):
    async with service_api(create_app, service="intake", broker=None, database_url=database_url) as http:
        await define_area(http, bearer(http.settings, "admin"))
        await define_area(http, bearer(http.settings, "admin"), "viby",
                          {"name": "Viby", "streets": [{"street": "Gudrunsvej"}]})
        yield http


def adult(role: str, since: str | None) -> dict:
    return {"cpr": cpr(80), "role": role, "unemployed_since": since}


def child(home: bool = True) -> dict:
    return {"cpr": cpr(15, century_digit=4), "role": "child", "lives_at_address": home}


async def enrol(api, members: list[dict], team: dict | None = None, site: str = "gellerup") -> str:
    """Register, invite, consent (the first member, an adult) and enrol; the household's id."""
    team = team or api.team
    created = await api.post("/v1/households", headers=team, json=household_body(site, members=members))
    assert created.status_code == 201 and created.json()["eligible"], created.text
    hid, first = created.json()["id"], created.json()["members"][0]["id"]
    assert (await api.post(f"/v1/households/{hid}/outreach", headers=team, json={
        "at": "2026-03-02T16:30:00Z", "outcome": "agreed"})).status_code == 201
    assert (await api.post(f"/v1/households/{hid}/consents", headers=team, json={
        "person_id": first, "given_by_person_id": first, "purposes": ["coordinated_help"],
        "departments": ["sundhed-og-omsorg"]})).status_code == 201
    enrolled = await api.post(f"/v1/households/{hid}/enrol", headers=team)
    assert enrolled.json()["status"] == "enrolled", enrolled.text
    return str(hid)


def years(days: int, people: int) -> Decimal:
    return (Decimal(days) / (people * Decimal("365.25"))).quantize(Decimal("0.1"), ROUND_HALF_UP)


async def test_the_profile_of_the_cohort_at_enrolment_matches_the_hand_count(api) -> None:
    cohort = [
        [adult("mother", "2016-03-01"), adult("father", "2017-01-01"), child(), child(), child(),
         child(home=False)],                                                 # 3 at home, 2 unemployed
        [adult("mother", "2015-06-15"), child(), child()],
        [adult("father", "2020-02-29"), adult("other_adult", None), child(), child()],
        [adult("mother", "2010-01-01"), child(), child()],
        [adult("mother", "2018-05-05"), adult("father", None), child(), child()],
        [adult("mother", "2021-07-01"), child(), child()],
        [adult("mother", "2012-12-12")] + [child() for _ in range(7)],
    ]
    ids = [await enrol(api, members) for members in cohort]
    # After enrolment: an added unemployed father is not "at enrolment"; an exit does not undo it.
    added = await api.post(f"/v1/households/{ids[6]}/members", headers=api.team,
                           json=adult("father", "2000-01-01"))
    assert added.status_code == 201
    assert (await api.post(f"/v1/households/{ids[1]}/exit", headers=api.team,
                           json={"reason": "moved_away"})).status_code == 200
    # Not in the cohort: a household registered but not enrolled, and a family at another site.
    waiting = (await api.post("/v1/households", headers=api.team, json=household_body())).json()
    assert waiting["status"] == "identified"
    viby = bearer(api.settings, "team_staff", site="viby")
    await enrol(api, [adult("mother", "2001-01-01"), child()], viby, "viby")

    today = datetime.now(UTC).date()
    starts = ["2016-03-01", "2017-01-01", "2015-06-15", "2020-02-29", "2010-01-01", "2018-05-05",
              "2021-07-01", "2012-12-12"]
    days = sum((today - date.fromisoformat(s)).days for s in starts)
    profile = await api.get("/v1/profile", headers=api.team, params={
        "site_id": "gellerup", "period_start": str(today), "period_end": str(today)})
    assert profile.status_code == 200, profile.text
    body = profile.json()
    assert body["suppressed"] is False and body["small_number_limit"] == 5
    assert (body["families"], body["adults"], body["children"]) == (7, 10, 20)
    assert Decimal(body["average_children_per_family"]) == Decimal("2.9")  # 20 / 7 = 2.857
    # 2 children: 5 families; 3 and 7 children: one each, withheld (two withheld hide each other).
    assert [(c["children"], c["families"]) for c in body["children_per_family"]] == [
        (0, 0), (1, 0), (2, 5), (3, None), (4, 0), (5, 0), (6, 0), (7, None)]
    assert (body["unemployed_parents"], body["unemployment_days_total"]) == (8, days)
    assert Decimal(body["average_unemployment_years"]) == years(days, 8)

    # Team staff get their own site without asking; the coordination group all sites together.
    own = (await api.get("/v1/profile", headers=api.team, params={
        "period_start": str(today), "period_end": str(today)})).json()
    assert own["families"] == 7 and own["site_id"] == "gellerup"
    everywhere = (await api.get("/v1/profile", headers=bearer(api.settings, "coordination"), params={
        "period_start": str(today), "period_end": str(today)})).json()
    everywhere_days = days + (today - date(2001, 1, 1)).days
    assert (everywhere["families"], everywhere["adults"], everywhere["children"]) == (8, 11, 21)
    assert everywhere["average_unemployment_years"] == str(years(everywhere_days, 9))
    # A period without enrolments is zeros; one that ends before it starts is 422 naming the field.
    later = (await api.get("/v1/profile", headers=api.team, params={
        "period_start": str(today + timedelta(days=1)), "period_end": str(today + timedelta(days=9))})).json()
    assert (later["families"], later["adults"], later["unemployed_parents"]) == (0, 0, 0)
    backwards = await api.get("/v1/profile", headers=api.team, params={
        "period_start": str(today), "period_end": str(today - timedelta(days=1))})
    assert backwards.status_code == 422
    assert [e["field"] for e in backwards.json()["errors"]] == ["query.period_end"]


async def test_a_cohort_of_fewer_than_five_families_is_withheld_whole(api) -> None:
    for _ in range(4):
        await enrol(api, [adult("mother", "2015-01-01"), child()])
    today = str(datetime.now(UTC).date())
    body = (await api.get("/v1/profile", headers=api.team, params={
        "period_start": today, "period_end": today})).json()
    assert body["suppressed"] is True
    assert {k: body[k] for k in ("families", "adults", "children", "unemployed_parents",
                                 "average_unemployment_years")} == dict.fromkeys(
        ("families", "adults", "children", "unemployed_parents", "average_unemployment_years"))
    assert body["children_per_family"] == []
    other_site = await api.get("/v1/profile", headers=api.team, params={
        "site_id": "viby", "period_start": today, "period_end": today})
    assert other_site.status_code == 403
