"""Partners' tips through the API, on SQLite and PostgreSQL: a partner passes on an address and a
reason code, the site's team follows it up, the household it identified is counted in the funnel,
and the partner learns only whether its tip was received and followed up."""

from __future__ import annotations

import pytest

from services.intake.app import create_app
from tests.intake.factories import define_area, household_body
from tests.support import bearer, service_api

TIP = {"site_id": "gellerup", "address": "Gudrunsvej 10, 1. th, 8220 Brabrand",
       "reason": "long_term_unemployment"}


@pytest.fixture
async def api(database_url: str):
    async with service_api(create_app, service="intake", broker=None, database_url=database_url) as http:
        http.admin = bearer(http.settings, "admin")
        http.caretaker = bearer(http.settings, "partner", subject="caretaker-brabrand-bolig")
        http.organisation = bearer(http.settings, "partner", subject="mothers-network")
        await define_area(http, http.admin)
        yield http


async def submit(api, headers=None, **overrides) -> dict:
    response = await api.post("/v1/tips", json={**TIP, **overrides}, headers=headers or api.caretaker)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_tip_is_received_and_the_partner_sees_only_its_state(api) -> None:
    tip = await submit(api)
    assert set(tip) == {"id", "received_at", "state"} and tip["state"] == "received"
    status = await api.get(f"/v1/tips/{tip['id']}/status", headers=api.caretaker)
    assert status.status_code == 200 and status.json() == tip
    mine = (await api.get("/v1/tips/mine", headers=api.caretaker)).json()
    assert mine["items"] == [tip]


async def test_the_team_follows_a_tip_up_and_the_partner_learns_only_that_it_was(api) -> None:
    tip = await submit(api)
    team_view = (await api.get("/v1/tips", headers=api.team, params={"state": "received"})).json()["items"]
    assert [(t["id"], t["address"], t["reason"], t["outcome"]) for t in team_view] == [
        (tip["id"], TIP["address"], "long_term_unemployment", None)]
    household = (await api.post("/v1/households", headers=api.team,
                                json=household_body(address=TIP["address"]))).json()
    followed = await api.post(f"/v1/tips/{tip['id']}/follow-up", headers=api.team,
                              json={"outcome": "registered", "household_id": household["id"]})
    assert followed.status_code == 200, followed.text
    assert (followed.json()["state"], followed.json()["household_id"]) == ("followed_up", household["id"])
    seen = (await api.get(f"/v1/tips/{tip['id']}/status", headers=api.caretaker)).json()
    # Nothing about the family: no household, no outcome, no address, no screening.
    assert seen == {"id": tip["id"], "received_at": tip["received_at"], "state": "followed_up"}
    again = await api.post(f"/v1/tips/{tip['id']}/follow-up", headers=api.team, json={"outcome": "not_found"})
    assert again.status_code == 409


async def test_a_household_from_a_tip_counts_in_the_funnel_as_identified_by_a_partners_tip(api) -> None:
    from_tip, other = await submit(api), await submit(api, reason="children_struggling")
    tipped = (await api.post("/v1/households", headers=api.team,
                             json=household_body(address=TIP["address"]))).json()
    await api.post("/v1/households", headers=api.team, json=household_body(address="Gudrunsvej 20"))
    await api.post(f"/v1/tips/{from_tip['id']}/follow-up", headers=api.team,
                   json={"outcome": "registered", "household_id": tipped["id"]})
    await api.post(f"/v1/tips/{other['id']}/follow-up", headers=api.team, json={"outcome": "not_found"})
    await api.post(f"/v1/households/{tipped['id']}/outreach", headers=api.team,
                   json={"at": "2026-03-02T16:30:00Z", "outcome": "agreed"})
    funnel = (await api.get("/v1/funnel", headers=api.team)).json()
    assert funnel["counts"]["identified"] == 2
    assert funnel["identified_by_partner_tip"]["identified"] == 1
    assert funnel["identified_by_partner_tip"]["contacted"] == 1
    assert funnel["identified_by_partner_tip"]["enrolled"] == 0
    coordination = bearer(api.settings, "coordination")
    summary = (await api.get("/v1/tips/summary", headers=coordination)).json()
    assert summary["site_id"] is None
    (gellerup,) = summary["sites"]
    assert (gellerup["site_id"], gellerup["received"], gellerup["followed_up"]) == ("gellerup", 2, 2)
    assert gellerup["outcomes"] == {"registered": 1, "already_known": 0, "not_found": 1, "declined": 0,
                                    "not_eligible": 0}
    assert gellerup["households"] == funnel["identified_by_partner_tip"]
    system = (await api.get("/v1/tips/summary", headers=bearer(api.settings, "system"),
                            params={"site_id": "viby"})).json()
    assert system == {"site_id": "viby", "sites": [{
        "site_id": "viby", "received": 0, "followed_up": 0, "households": dict.fromkeys(funnel["counts"], 0),
        "outcomes": dict.fromkeys(gellerup["outcomes"], 0)}]}


async def test_another_partners_tip_is_answered_as_one_that_does_not_exist(api) -> None:
    tip = await submit(api)
    other = await api.get(f"/v1/tips/{tip['id']}/status", headers=api.organisation)
    assert other.status_code == 404
    assert (await api.get("/v1/tips/mine", headers=api.organisation)).json()["items"] == []


async def test_a_partner_reads_nothing_of_intake_but_its_own_tips(api) -> None:
    tip = await submit(api)
    household = (await api.post("/v1/households", headers=api.team, json=household_body())).json()
    for path in ("/v1/tips", "/v1/tips/summary", "/v1/funnel", "/v1/households",
                 f"/v1/households/{household['id']}",
                 "/v1/profile?period_start=2026-01-01&period_end=2026-12-31"):
        assert (await api.get(path, headers=api.caretaker)).status_code == 403, path
    follow = await api.post(f"/v1/tips/{tip['id']}/follow-up", headers=api.caretaker,
                            json={"outcome": "not_found"})
    assert follow.status_code == 403


async def test_another_sites_team_cannot_see_or_follow_up_a_tip(api) -> None:
    tip = await submit(api)
    viby = bearer(api.settings, "team_staff", site="viby")
    assert (await api.get("/v1/tips", headers=viby)).json()["items"] == []
    follow = await api.post(f"/v1/tips/{tip['id']}/follow-up", headers=viby, json={"outcome": "not_found"})
    assert follow.status_code == 404
    assert (await api.get("/v1/tips", headers=viby, params={"site_id": "gellerup"})).status_code == 403


async def test_a_tip_takes_an_address_in_the_target_area_and_a_reason_code_only(api) -> None:
    outside = await api.post("/v1/tips", headers=api.caretaker, json={**TIP, "address": "Silkeborgvej 123"})
    assert outside.status_code == 422
    assert [e["field"] for e in outside.json()["errors"]] == ["body.address"]
    free_text = await api.post("/v1/tips", headers=api.caretaker,
                               json={**TIP, "reason": "Fatima drinks, CPR 0101851234"})
    assert free_text.status_code == 422 and "0101851234" not in free_text.text
    assert [e["field"] for e in free_text.json()["errors"]] == ["body.reason"]
    cpr_in_address = await api.post("/v1/tips", headers=api.caretaker,
                                    json={**TIP, "address": "Gudrunsvej 10, 1. th, 010185-1234"})
    assert cpr_in_address.status_code == 422 and "010185-1234" not in cpr_in_address.text
    assert [e["field"] for e in cpr_in_address.json()["errors"]] == ["body.address"]
    named = await api.post("/v1/tips", headers=api.caretaker, json={**TIP, "name": "Fatima"})
    assert named.status_code == 422
    no_site = await api.post("/v1/tips", headers=api.caretaker, json={**TIP, "site_id": "aarhus-c"})
    assert no_site.status_code == 422 and [e["field"] for e in no_site.json()["errors"]] == ["body.site_id"]
    assert (await api.get("/v1/tips/mine", headers=api.caretaker)).json()["items"] == []


async def test_a_follow_up_names_a_household_of_the_tips_site_exactly_when_the_outcome_needs_one(api) -> None:
    tip = await submit(api)
    missing = await api.post(f"/v1/tips/{tip['id']}/follow-up", headers=api.team,
                             json={"outcome": "registered"})
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["body.household_id"]
    household = (await api.post("/v1/households", headers=api.team, json=household_body())).json()
    extra = await api.post(f"/v1/tips/{tip['id']}/follow-up", headers=api.team,
                           json={"outcome": "declined", "household_id": household["id"]})
    assert extra.status_code == 422
    viby_team = bearer(api.settings, "team_staff", site="viby")
    await define_area(api, api.admin, site_id="viby",
                      area={"name": "Viby", "streets": [{"street": "Rosenvej"}]})
    viby_household = (await api.post("/v1/households", headers=viby_team,
                                     json=household_body("viby", address="Rosenvej 3"))).json()
    elsewhere = await api.post(f"/v1/tips/{tip['id']}/follow-up", headers=api.team,
                               json={"outcome": "already_known", "household_id": viby_household["id"]})
    assert elsewhere.status_code == 422
    status = await api.get(f"/v1/tips/{tip['id']}/status", headers=api.caretaker)
    assert status.json()["state"] == "received"


async def test_a_tip_that_led_to_a_household_is_in_its_members_subject_access_part(api) -> None:
    tip, unrelated = await submit(api), await submit(api, address="Gudrunsvej 40")
    household = (await api.post("/v1/households", headers=api.team,
                                json=household_body(address=TIP["address"]))).json()
    await api.post(f"/v1/tips/{tip['id']}/follow-up", headers=api.team,
                   json={"outcome": "registered", "household_id": household["id"]})
    mother = household["members"][0]["id"]
    part = await api.get(f"/v1/persons/{mother}/subject-access",
                         headers=bearer(api.settings, "data_protection"))
    assert part.status_code == 200, part.text
    held = part.json()["holdings"]["partner_tips"]
    assert [(row["id"], row["address"]) for row in held] == [(tip["id"], TIP["address"])]
    assert unrelated["id"] not in part.text
