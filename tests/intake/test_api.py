"""The intake API end to end on PostgreSQL, with its events on the real broker."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import jsonschema
import pytest

from services.intake.app import create_app
from shared.departments import Department
from shared.events import REGISTRY
from shared.observability import CPR_SHAPE
from tests.intake.factories import cpr, define_area, household_body
from tests.support import Broker, bearer, envelopes, eventually, read_topic, service_api


@pytest.fixture
async def api(broker: Broker, postgres_url: str):
    async with service_api(create_app, service="intake", broker=broker, database_url=postgres_url) as http:
        await define_area(http, bearer(http.settings, "admin"))
        yield http


async def create(api, team=None, **overrides) -> dict:
    response = await api.post("/v1/households", json=household_body(**overrides), headers=team or api.team)
    assert response.status_code == 201, response.text
    return response.json()


async def outreach(api, hid: str, outcome: str, team=None) -> None:
    response = await api.post(f"/v1/households/{hid}/outreach", headers=team or api.team, json={
        "at": "2026-03-02T16:30:00Z", "outcome": outcome})
    assert response.status_code == 201, response.text


async def consent(api, household: dict, team=None) -> str:
    """Invite the household and record the mother's consent; the consent's id."""
    hid, mother = household["id"], household["members"][0]["id"]
    await outreach(api, hid, "agreed", team)
    given = await api.post(f"/v1/households/{hid}/consents", headers=team or api.team, json={
        "person_id": mother, "given_by_person_id": mother, "purposes": ["coordinated_help"],
        "departments": [Department.HEALTH_AND_CARE.value, Department.SOCIAL_AND_EMPLOYMENT.value]})
    assert given.status_code == 201, given.text
    return str(given.json()["id"])


async def consent_and_enrol(api, household: dict, team=None) -> dict:
    await consent(api, household, team)
    enrolled = await api.post(f"/v1/households/{household['id']}/enrol", headers=team or api.team)
    assert enrolled.status_code == 200, enrolled.text
    return enrolled.json()


async def small_site(api, capacity: int = 1) -> dict[str, str]:
    """A site of its own with room for ``capacity`` families; a team token for it."""
    site = await api.post("/v1/sites", headers=bearer(api.settings, "admin"),
                          json={"id": "hasle", "name": "Hasle", "capacity": capacity})
    assert site.status_code == 201, site.text
    await define_area(api, bearer(api.settings, "admin"), "hasle")
    return bearer(api.settings, "team_staff", site="hasle")


@pytest.mark.parametrize(("value", "ok"), [("290200-4123", True), ("290200-0123", False),
                                           ("310299-1234", False), ("01019012345", False),
                                           ("0101-01234", False), ("01O190-1234", False)])
async def test_cpr_numbers_are_validated_and_bad_ones_name_the_field(api, value: str, ok: bool) -> None:
    body = household_body(members=[{"cpr": cpr(85), "role": "mother"}, {"cpr": value, "role": "child"}])
    response = await api.post("/v1/households", json=body, headers=api.team)
    if ok:
        assert response.status_code == 201
        return
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert next(e["field"] for e in response.json()["errors"]).startswith("body.members.1")
    assert value not in response.text


async def test_the_same_cpr_in_two_active_households_is_a_conflict(api) -> None:
    number = cpr(80)
    await create(api, members=[{"cpr": number, "role": "father"}, {"cpr": cpr(12, 4), "role": "child"}])
    again = await api.post("/v1/households", headers=api.team, json=household_body(
        members=[{"cpr": number.replace("-", ""), "role": "father"}]))
    assert again.status_code == 409


async def test_screening_explains_each_criterion(api) -> None:
    father = {"cpr": cpr(80), "role": "father", "unemployed_since": "2015-01-01"}
    no_child = await create(api, members=[father])
    assert no_child["eligible"] is False and no_child["status"] == "not_eligible"
    failed = {c["code"]: c["explanation"] for c in no_child["screening"] if not c["met"]}
    assert failed == {"child_at_address": "no child lives at the address"}


async def test_enrolment_without_consent_is_a_conflict(api) -> None:
    household = await create(api)
    hid = household["id"]
    consent_id = await consent(api, household)
    revoked = await api.post(f"/v1/households/{hid}/consents/{consent_id}/revoke", headers=api.team)
    assert revoked.status_code == 200
    response = await api.post(f"/v1/households/{hid}/enrol", headers=api.team)
    assert response.status_code == 409 and "consent" in response.json()["detail"]
    assert (await api.get(f"/v1/households/{hid}", headers=api.team)).json()["status"] == "consented"


async def test_a_freed_place_skips_a_waiting_family_whose_consent_is_gone(api, broker: Broker) -> None:
    team = await small_site(api)
    enrolled = await consent_and_enrol(api, await create(api, team, site_id="hasle"), team)
    first, second = await create(api, team, site_id="hasle"), await create(api, team, site_id="hasle")
    first_consent = await consent(api, first, team)
    await consent(api, second, team)
    for household in (first, second):
        waiting = await api.post(f"/v1/households/{household['id']}/enrol", headers=team)
        assert waiting.json()["status"] == "waitlisted"
    revoked = await api.post(f"/v1/households/{first['id']}/consents/{first_consent}/revoke", headers=team)
    assert revoked.status_code == 200
    exited = await api.post(f"/v1/households/{enrolled['id']}/exit", headers=team,
                            json={"reason": "moved_away"})
    assert exited.status_code == 200
    now = {h["id"]: (await api.get(f"/v1/households/{h['id']}", headers=team)).json()
           for h in (first, second)}
    assert (now[first["id"]]["status"], now[first["id"]]["waitlist_position"]) == ("waitlisted", 1)
    assert now[second["id"]]["status"] == "enrolled"

    async def enrolments() -> set[str] | None:
        events = envelopes(await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=15,
                                            timeout=5))
        found = {e.data["family_id"] for e in events if e.type.split(".")[4] == "family-enrolled"}
        return found if len(found) >= 2 else None
    assert await eventually(enrolments, timeout=30) == {enrolled["id"], second["id"]}


async def test_the_funnel_counts_the_furthest_stage_each_household_reached(api) -> None:
    team = await small_site(api)
    await consent_and_enrol(api, await create(api, team, site_id="hasle"), team)
    waited = await consent_and_enrol(api, await create(api, team, site_id="hasle"), team)
    assert waited["status"] == "waitlisted"
    left = await api.post(f"/v1/households/{waited['id']}/exit", headers=team, json={"reason": "withdrew"})
    assert left.json()["status"] == "exited"
    declined = await create(api, team, site_id="hasle")
    await outreach(api, declined["id"], "agreed", team)
    await outreach(api, declined["id"], "declined", team)
    await create(api, team, site_id="hasle")  # identified only
    await create(api, team, site_id="hasle", members=[{"cpr": cpr(80), "role": "father"}])  # not eligible
    funnel = (await api.get("/v1/funnel", params={"site_id": "hasle"}, headers=team)).json()
    assert funnel["counts"] == {"identified": 4, "contacted": 3, "invited": 3, "consented": 2, "enrolled": 1}


async def test_the_76th_family_in_gellerup_is_waitlisted_and_an_exit_offers_it_the_place(api) -> None:
    families = [await consent_and_enrol(api, await create(api)) for _ in range(76)]
    assert {f["status"] for f in families[:75]} == {"enrolled"}
    assert families[75]["status"] == "waitlisted" and families[75]["waitlist_position"] == 1
    exited = await api.post(f"/v1/households/{families[0]['id']}/exit", headers=api.team,
                            json={"reason": "goals_reached"})
    assert exited.json()["status"] == "exited"
    waiting = await api.get(f"/v1/households/{families[75]['id']}", headers=api.team)
    assert waiting.json()["status"] == "enrolled"
    funnel = (await api.get("/v1/funnel", params={"site_id": "gellerup"}, headers=api.team)).json()
    assert funnel["counts"]["enrolled"] == 76 and funnel["counts"]["identified"] == 76


async def test_events_arrive_on_the_intake_topic_with_the_documented_schema_and_no_cpr(
        api, broker: Broker, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    household = await consent_and_enrol(api, await create(api))
    hid, consent_id = household["id"], None
    consents = (await api.get(f"/v1/households/{hid}/consents", headers=api.team)).json()
    consent_id = consents[0]["id"]
    revoked = await api.post(f"/v1/households/{hid}/consents/{consent_id}/revoke", headers=api.team)
    assert revoked.status_code == 200 and revoked.json()["state"] == "withdrawn"
    records = await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=5)
    events = envelopes(records)
    assert [e.type.split(".")[4] for e in events] == [
        "household-screened", "outreach-attempt-recorded", "consent-given", "family-enrolled",
        "consent-revoked"]
    for record, event in zip(records, events, strict=True):
        assert record.key.decode() == hid
        jsonschema.validate(event.data, REGISTRY.spec(event.type).json_schema())
        raw = record.value.decode() + repr(record.headers) + record.key.decode()
        assert not CPR_SHAPE.search(raw)
    health = envelopes(await read_topic(broker.bootstrap, api.settings.department_topic(
        "sundhed-og-omsorg"), expected=3))
    kinds = {e.type.split(".")[4] for e in health}
    assert kinds == {"consent-given", "family-enrolled", "consent-revoked"}
    assert not any(CPR_SHAPE.search(r.getMessage()) for r in caplog.records)


async def test_responses_show_only_masked_cpr_and_reads_are_audited(api) -> None:
    number = cpr(85)
    household = await create(api, members=[{"cpr": number, "role": "mother"}])
    read = await api.get(f"/v1/households/{household['id']}", headers=api.team)
    assert number not in read.text and number.replace("-", "") not in read.text
    assert read.json()["members"][0]["cpr_masked"] == number[:6] + "-XXXX"
    other_site = await api.get(f"/v1/households/{household['id']}",
                               headers=bearer(api.settings, "team_staff", site="viby"))
    assert other_site.status_code == 404
    audit = await api.get("/audit", params={"subject_id": household["id"]},
                          headers=bearer(api.settings, "admin"))
    entries = [(a["site_id"], a["outcome"]) for a in audit.json()["items"]
               if a["endpoint"].startswith("GET ")]
    assert entries == [("gellerup", "allowed"), ("viby", "denied")]


async def test_department_staff_do_not_use_intake(api) -> None:
    token = bearer(api.settings, "department_staff", department="boern-og-unge")
    assert (await api.get("/v1/households", headers=token)).status_code == 403


async def test_register_import_takes_good_rows_reports_bad_ones_and_is_idempotent(api) -> None:
    csv = ("household_ref,site_id,address,cpr,role,unemployed_since,lives_at_address\n"
           f"R1,gellerup,Gudrunsvej 1,{cpr(84)},mother,2015-06-01,yes\n"
           f"R1,gellerup,Gudrunsvej 1,{cpr(14, 4)},child,,yes\n"
           f"R2,viby,Viby Torv 2,310299-1234,father,2015-06-01,yes\n"
           f"R3,tilst,Tilst Vej 3,{cpr(70)},father,,yes\n")
    system = bearer(api.settings, "system")
    first = await api.post("/v1/imports", content=csv, headers={**system, "content-type": "text/csv"})
    assert first.status_code == 201, first.text
    report = first.json()
    assert (report["households"], report["persons"]) == (2, 3)
    assert [(r["line"], r["reason"].split(":")[0]) for r in report["rejected"]] == [(4, "cpr")]
    second = await api.post("/v1/imports", content=csv, headers={**system, "content-type": "text/csv"})
    assert second.json()["already_imported"] is True and second.json()["households"] == 0
    listed = await api.get("/v1/households", params={"limit": 200}, headers=api.team)
    assert len(listed.json()["items"]) == 1  # R1 only: R3 is Tilst's


async def test_a_team_leader_imports_only_its_own_sites_households(api) -> None:
    csv = ("household_ref,site_id,address,cpr,role,unemployed_since,lives_at_address\n"
           f"G1,gellerup,Gudrunsvej 1,{cpr(84)},mother,2015-06-01,yes\n"
           f"G1,gellerup,Gudrunsvej 1,{cpr(14, 4)},child,,yes\n"
           f"T1,tilst,Tilst Vej 3,{cpr(70)},father,2015-06-01,yes\n"
           f"T1,tilst,Tilst Vej 3,{cpr(12, 4)},child,,yes\n")
    leader = bearer(api.settings, "team_leader", site="gellerup")
    imported = await api.post("/v1/imports", content=csv, headers={**leader, "content-type": "text/csv"})
    report = imported.json()
    assert (report["households"], report["persons"]) == (1, 2)
    assert report["rejected"] == [{"line": 4, "reason": "site tilst is not yours"},
                                  {"line": 5, "reason": "site tilst is not yours"}]
    system = bearer(api.settings, "system")
    tilst = await api.get("/v1/households", params={"site_id": "tilst"}, headers=system)
    assert tilst.json()["items"] == []


async def test_a_household_with_a_bad_row_is_not_imported_and_its_corrected_file_is(api) -> None:
    mother, child = cpr(84), cpr(14, 4)
    header = "household_ref,site_id,address,cpr,role,unemployed_since,lives_at_address\n"
    rows = (f"R9,gellerup,Gudrunsvej 9,{mother},mother,2015-06-01,yes\n"
            "R9,gellerup,Gudrunsvej 9,{child},child,,yes\n")
    leader = {**bearer(api.settings, "team_leader", site="gellerup"), "content-type": "text/csv"}
    bad = (await api.post("/v1/imports", content=header + rows.format(child="310299-1234"),
                          headers=leader)).json()
    assert (bad["households"], bad["persons"]) == (0, 0)
    assert [r["line"] for r in bad["rejected"]] == [2, 3]
    assert bad["rejected"][0]["reason"] == "household R9 is not imported because of line 3"
    assert (await api.get("/v1/households", headers=api.team)).json()["items"] == []
    corrected = (await api.post("/v1/imports", content=header + rows.format(child=child),
                                headers=leader)).json()
    assert (corrected["households"], corrected["persons"], corrected["rejected"]) == (1, 2, [])
    listed = (await api.get("/v1/households", headers=api.team)).json()["items"]
    members = (await api.get(f"/v1/households/{listed[0]['id']}", headers=api.team)).json()["members"]
    assert sorted(m["role"] for m in members) == ["child", "mother"]


async def test_consent_is_renewed_then_expires_and_the_expiry_is_announced(api, broker: Broker) -> None:
    household = await consent_and_enrol(api, await create(api))
    hid = household["id"]
    consent = (await api.get(f"/v1/households/{hid}/consents", headers=api.team)).json()[0]
    renewed = await api.post(f"/v1/households/{hid}/consents/{consent['id']}/renew", headers=api.team,
                             json={"expires_on": "2026-12-31"})
    assert renewed.status_code == 200 and renewed.json()["state"] == "renewed"
    system = bearer(api.settings, "system")
    assert (await api.post("/v1/consents/expire-due", headers=api.team)).status_code == 403
    none_yet = await api.post("/v1/consents/expire-due", params={"today": "2026-12-31"}, headers=system)
    assert none_yet.json() == {"expired": 0}
    expired = await api.post("/v1/consents/expire-due", params={"today": "2027-01-01"}, headers=system)
    assert expired.json() == {"expired": 1}
    history = (await api.get(f"/v1/households/{hid}/consents", headers=api.team)).json()[0]
    assert history["state"] == "expired"
    again = await api.post(f"/v1/households/{hid}/consents/{consent['id']}/renew", headers=api.team, json={})
    assert again.status_code == 409
    events = envelopes(await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=6))
    last = events[-1]
    assert last.type.endswith("consent-revoked.v1") and last.data["state"] == "expired"


async def test_page_sizes_are_capped(api) -> None:
    too_big = await api.get("/v1/households", params={"limit": 201}, headers=api.team)
    assert too_big.status_code == 422
    assert [e["field"] for e in too_big.json()["errors"]] == ["query.limit"]
    assert (await api.get("/v1/households", params={"limit": 200}, headers=api.team)).status_code == 200


async def test_corrected_member_facts_are_screened_again(api) -> None:
    recent = str(date.today() - timedelta(days=100))
    household = await create(api, members=[
        {"cpr": cpr(85), "role": "mother", "unemployed_since": recent},
        {"cpr": cpr(15, century_digit=4), "role": "child"}])
    assert household["eligible"] is False and household["status"] == "not_eligible"
    mother, child = household["members"][0]["id"], household["members"][1]["id"]
    base = f"/v1/households/{household['id']}/members"
    fixed = await api.patch(f"{base}/{mother}", headers=api.team, json={"unemployed_since": "2019-05-01"})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["eligible"] is True and fixed.json()["status"] == "identified"
    moved = await api.patch(f"{base}/{child}", headers=api.team, json={"lives_at_address": False})
    failed = {c["code"] for c in moved.json()["screening"] if not c["met"]}
    assert moved.json()["eligible"] is False and failed == {"child_at_address"}
    other = await create(api)
    assert (await api.patch(f"{base}/{other['members'][0]['id']}", headers=api.team,
                            json={"lives_at_address": True})).status_code == 404
    smuggled = await api.patch(f"{base}/{mother}", headers=api.team, json={"cpr": "0101901234"})
    assert smuggled.status_code == 422
