"""End to end through the real broker: each department's topic carries its slice and nothing else.

Intake, casework and referrals run together (SQLite files: the embedded path). A family is
enrolled, a referral goes to Sundhed og Omsorg and a school-absence measurement is recorded for a
child: Sundhed og Omsorg sees the referral, not the absence; Børn og Unge the absence, not the
referral; per-family order holds; the REST slice equals the topic slice.
"""

from __future__ import annotations

import contextlib

import pytest

from services.casework.app import create_app as casework_app
from services.intake.app import create_app as intake_app
from services.referrals.app import create_app as referrals_app
from shared.events import REGISTRY, FamilyEvent
from shared.observability import CPR_SHAPE
from tests.intake.factories import define_area, household_body
from tests.support import Broker, bearer, envelopes, eventually, make_settings, read_topic, running

pytestmark = [pytest.mark.broker, pytest.mark.slow]
HEALTH, CHILDREN = "sundhed-og-omsorg", "boern-og-unge"


def kinds(events) -> list[str]:
    return [e.type.split(".")[4] for e in events]


async def test_each_department_topic_carries_only_its_slice_in_family_order(broker: Broker, tmp_path) -> None:
    namespace = make_settings().topic_namespace
    apps = {name: factory(make_settings(broker=broker, service=name, topic_namespace=namespace,
                                        database_url=f"sqlite+aiosqlite:///{tmp_path / name}.db"))
            for name, factory in (("intake", intake_app), ("casework", casework_app),
                                  ("referrals", referrals_app))}
    async with contextlib.AsyncExitStack() as stack:
        http = {name: await stack.enter_async_context(running(app)) for name, app in apps.items()}
        settings = apps["intake"].state.settings
        team = bearer(settings, "team_staff", site="gellerup")
        leader = bearer(settings, "team_leader", site="gellerup")
        for discipline, department in (("job_consultant", "sociale-forhold-og-beskaeftigelse"),
                                       ("health_visitor", HEALTH)):
            staffed = await http["casework"].post("/v1/staff", headers=leader, json={
                "site_id": "gellerup", "display_name": discipline, "discipline": discipline,
                "department": department, "fte": "1", "starts_on": "2026-01-01"})
            assert staffed.status_code == 201
        await define_area(http["intake"], bearer(settings, "admin"))
        household = (await http["intake"].post("/v1/households", json=household_body(), headers=team)).json()
        family, mother, child = household["id"], household["members"][0]["id"], household["members"][1]["id"]
        await http["intake"].post(f"/v1/households/{family}/outreach", headers=team, json={
            "at": "2026-03-02T16:30:00Z", "outcome": "agreed"})
        await http["intake"].post(f"/v1/households/{family}/consents", headers=team, json={
            "person_id": mother, "given_by_person_id": mother, "purposes": ["coordinated_help"],
            "departments": [HEALTH, CHILDREN]})
        assert (await http["intake"].post(f"/v1/households/{family}/enrol", headers=team)).status_code == 200

        async def casework_has_family():
            return (await http["casework"].get(f"/v1/families/{family}", headers=team)).status_code == 200
        assert await eventually(casework_has_family, timeout=30)
        absence = await http["casework"].post(
            f"/v1/families/{family}/measurements/school-absence", headers=team,
            json={"person_id": child, "term": "2026-spring", "absence_percent": "12.5"})
        assert absence.status_code == 201

        async def referral_sent():
            drafted = await http["referrals"].post("/v1/referrals", headers=team, json={
                "family_id": family, "offer_code": "physical-rehabilitation", "person_id": mother,
                "reason": "ondt i ryggen",
                "fields": {"person_id": mother, "health_concern_code": "back_pain"}})
            if drafted.status_code != 201:
                return False
            sent = await http["referrals"].post(f"/v1/referrals/{drafted.json()['id']}/send", headers=team)
            return sent.status_code == 200
        assert await eventually(referral_sent, timeout=30)

        health = envelopes(await read_topic(broker.bootstrap, settings.department_topic(HEALTH), expected=5))
        children = envelopes(await read_topic(broker.bootstrap, settings.department_topic(CHILDREN),
                                              expected=4))
        assert "referral-sent" in kinds(health) and "school-absence-recorded" not in kinds(health)
        assert "school-absence-recorded" in kinds(children) and not any(
            k.startswith("referral") for k in kinds(children))
        for stream in (health, children):
            family_events = [e for e in stream if issubclass(REGISTRY.spec(e.type).model, FamilyEvent)]
            assert family_events and all(e.data["family_id"] == family and e.data["site_id"] == "gellerup"
                                         for e in family_events)
            for e in stream:
                assert not CPR_SHAPE.search(str(e.data)) and "address" not in e.data
        # Per family and source, the department topic keeps the domain topic's order.
        intake_domain = [e.id for e in envelopes(await read_topic(
            broker.bootstrap, settings.domain_topic("intake"), expected=4))]
        intake_on_health = [e.id for e in health if e.source == "/oto/intake"]
        assert intake_on_health == [i for i in intake_domain if i in set(intake_on_health)]
        assert kinds([e for e in health if e.source == "/oto/intake"]) == ["consent-given", "family-enrolled"]

        view = (await http["casework"].get(f"/v1/families/{family}/slice",
                                           headers=bearer(settings, "department_staff", department=CHILDREN)))
        assert view.status_code == 200
        topic_slice = [e.data for e in children if e.source == "/oto/casework"]
        assert [e["data"] for e in view.json()["events"]] == topic_slice
        unrelated = await http["referrals"].get(f"/v1/families/{family}/slice",
                                                headers=bearer(settings, "department_staff",
                                                               department="kultur-og-borgerservice"))
        assert unrelated.status_code == 404
        # The family's consent names Health and Children only: Kultur og Borgerservice never hears
        # of it, not even its enrolment, on its topic or through intake's view.
        culture = envelopes(await read_topic(broker.bootstrap,
                                             settings.department_topic("kultur-og-borgerservice"),
                                             expected=1, timeout=3))
        assert [e for e in culture if e.data.get("family_id") == family] == []
        assert (await http["intake"].get(f"/v1/families/{family}/slice", headers=bearer(
            settings, "department_staff", department="kultur-og-borgerservice"))).status_code == 404
        # Casework's events keep the domain topic's order on Children's topic too.
        casework_domain = [e.id for e in envelopes(await read_topic(
            broker.bootstrap, settings.domain_topic("casework"), expected=2))]
        casework_on_children = [e.id for e in children if e.source == "/oto/casework"]
        assert casework_on_children == [i for i in casework_domain if i in set(casework_on_children)]
