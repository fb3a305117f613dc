"""Casework through its API and its intake subscription, on PostgreSQL and the real broker."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import func, select

from services.casework.app import create_app
from services.casework.models import Makkerpar
from shared.departments import Department
from shared.events.intake import FamilyEnrolled, Member
from tests.support import (
    Broker,
    bearer,
    envelopes,
    eventually,
    publish,
    read_topic,
    service_api,
)

pytestmark = pytest.mark.broker


@pytest.fixture
async def api(broker: Broker, postgres_url: str):
    async with service_api(create_app, service="casework", broker=broker, database_url=postgres_url) as http:
        http.leader = bearer(http.settings, "team_leader", site="gellerup")  # type: ignore[attr-defined]
        yield http


async def station(api, discipline: str, department: str = "sociale-forhold-og-beskaeftigelse",
                  site: str = "gellerup", fte: str = "1") -> dict:
    leader = bearer(api.settings, "team_leader", site=site)
    response = await api.post("/v1/staff", headers=leader, json={
        "site_id": site, "display_name": f"{discipline} {uuid.uuid4().hex[:4]}", "discipline": discipline,
        "department": department, "fte": fte, "starts_on": "2026-01-01"})
    assert response.status_code == 201, response.text
    return response.json()


async def enrol(api, broker: Broker, site: str = "gellerup", times: int = 1) -> tuple[uuid.UUID, uuid.UUID]:
    family, child = uuid.uuid4(), uuid.uuid4()
    event = FamilyEnrolled(family_id=family, site_id=site, members=[
        Member(person_id=uuid.uuid4(), role="mother", birth_year=1985),
        Member(person_id=child, role="child", birth_year=2015)],
        shared_with=[d.value for d in Department])  # consent covers every department
    await publish(api.settings, broker.bootstrap, [event], times=times)
    return family, child


async def family_when(api, family_id: uuid.UUID, headers=None) -> dict | None:
    async def check():
        response = await api.get(f"/v1/families/{family_id}", headers=headers or api.team)
        return response.json() if response.status_code == 200 else None
    return await eventually(check, timeout=30)


async def test_an_enrolment_delivered_twice_gives_exactly_one_pair_of_two_disciplines(api, broker) -> None:
    job = await station(api, "job_consultant")
    health = await station(api, "health_visitor", "sundhed-og-omsorg")
    family_id, _ = await enrol(api, broker, times=2)
    family = await family_when(api, family_id)
    assert family["pair_status"] == "assigned"
    assert set(family["pair"]["staff_ids"]) == {job["id"], health["id"]}
    consumer = api.app.state.consumers[0]
    assert await eventually(lambda: _async(consumer.handled >= 2))  # both deliveries processed
    async with api.app.state.sessionmaker() as session:
        pairs = (await session.execute(select(func.count()).select_from(Makkerpar).where(
            Makkerpar.family_id == family_id))).scalar_one()
    assert pairs == 1
    call = (await api.get(f"/v1/families/{family_id}/entry-point", headers=api.team)).json()
    assert set(call["call_today"]) == {job["id"], health["id"]}
    events = envelopes(await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=3))
    assert [e.type.split(".")[4] for e in events].count("makkerpar-assigned") == 1


async def _async(value):
    return value


async def test_a_site_without_two_disciplines_shows_a_pending_pair(api, broker) -> None:
    await station(api, "job_consultant", site="tilst")
    await station(api, "job_consultant", site="tilst")
    family_id, _ = await enrol(api, broker, site="tilst")
    family = await family_when(api, family_id, bearer(api.settings, "team_staff", site="tilst"))
    assert family["pair_status"] == "pending" and family["pair"] is None


async def test_staff_of_another_site_cannot_read_or_change_the_family(api, broker) -> None:
    await station(api, "job_consultant")
    await station(api, "pedagogue", "boern-og-unge")
    family_id, _ = await enrol(api, broker)
    await family_when(api, family_id)
    viby = bearer(api.settings, "team_staff", site="viby")
    assert (await api.get(f"/v1/families/{family_id}", headers=viby)).status_code == 404
    goal = {"life_area": "health", "own_words": "Jeg vil kunne gå en tur uden smerter"}
    assert (await api.post(f"/v1/families/{family_id}/goals", headers=viby, json=goal)).status_code == 404
    audit = (await api.get("/audit", params={"subject_id": str(family_id)},
                           headers=bearer(api.settings, "admin"))).json()["items"]
    assert ("viby", "denied") in [(a["site_id"], a["outcome"]) for a in audit]
    assert ("gellerup", "allowed") in [(a["site_id"], a["outcome"]) for a in audit]


async def test_a_plan_holds_several_active_goals_and_refuses_illegal_steps(api, broker) -> None:
    await station(api, "job_consultant")
    await station(api, "health_visitor", "sundhed-og-omsorg")
    family_id, child = await enrol(api, broker)
    await family_when(api, family_id)
    goal_ids = []
    for area, words in (("health", "Mindre ondt i ryggen"), ("employment", "Et job i Bilka"),
                        ("children_school_wellbeing", "Glad for at gå i skole")):
        plan = await api.post(f"/v1/families/{family_id}/goals", headers=api.team,
                              json={"life_area": area, "own_words": words})
        assert plan.status_code == 201
        goal_ids.append(next(g["id"] for g in plan.json()["goals"] if g["own_words"] == words))
    for goal_id in goal_ids:
        step = await api.post(f"/v1/families/{family_id}/goals/{goal_id}/state", headers=api.team,
                              json={"state": "active", "achievement": "improving"})
        assert step.status_code == 200
    wishes = await api.put(f"/v1/families/{family_id}/plan/wishes", headers=api.team,
                           json={"wishes": "At børnene trives, og at jeg får et arbejde"})
    assert wishes.status_code == 200
    plan = (await api.get(f"/v1/families/{family_id}/plan", headers=api.team)).json()
    assert plan["version"] == 7 and [g["state"] for g in plan["goals"]] == ["active"] * 3
    assert plan["wishes"].startswith("At børnene")
    first = (await api.get(f"/v1/families/{family_id}/plan", params={"version": 1}, headers=api.team)).json()
    assert len(first["goals"]) == 1 and first["goals"][0]["state"] == "proposed"
    illegal = await api.post(f"/v1/families/{family_id}/goals/{goal_ids[0]}/state", headers=api.team,
                             json={"state": "proposed"})
    assert illegal.status_code == 409 and illegal.headers["content-type"] == "application/problem+json"
    absence = await api.post(f"/v1/families/{family_id}/measurements/school-absence", headers=api.team,
                             json={"person_id": str(child), "term": "2026-spring", "absence_percent": "7.5"})
    assert absence.status_code == 201


async def test_escalation_to_a_faglig_ven_emits_the_event_referrals_consume(api, broker) -> None:
    staff = await station(api, "job_consultant")
    await station(api, "health_visitor", "sundhed-og-omsorg")
    family_id, _ = await enrol(api, broker)
    await family_when(api, family_id)
    base = {"task_ref": "back-pain", "reason_code": "back_pain", "requested_by": staff["id"]}
    early = await api.post(f"/v1/families/{family_id}/escalations", headers=api.team,
                           json={**base, "step": "faglig_ven", "target_department": "sundhed-og-omsorg"})
    assert early.status_code == 409
    for step in ("team_sparring", "colleague_joins"):
        assert (await api.post(f"/v1/families/{family_id}/escalations", headers=api.team,
                               json={**base, "step": step})).status_code == 201
    top = await api.post(f"/v1/families/{family_id}/escalations", headers=api.team, json={
        **base, "step": "faglig_ven", "target_department": "sundhed-og-omsorg",
        "offer_code": "physical-rehabilitation"})
    assert top.status_code == 201
    records = await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=6)
    raised = [e for e in envelopes(records) if e.type.endswith("escalation-raised.v1")]
    assert [e.data["step"] for e in raised] == ["team_sparring", "colleague_joins", "faglig_ven"]
    assert raised[-1].data["target_department"] == "sundhed-og-omsorg"
    health = envelopes(await read_topic(broker.bootstrap, api.settings.department_topic("sundhed-og-omsorg"),
                                        expected=2))
    assert [e.data.get("step") for e in health if e.type.endswith("escalation-raised.v1")] == ["faglig_ven"]


async def test_outcomes_report_is_for_leaders_and_computed_from_measurements(api, broker) -> None:
    await station(api, "job_consultant")
    await station(api, "pedagogue", "boern-og-unge")
    family_id, _ = await enrol(api, broker)
    await family_when(api, family_id)
    family = (await api.get(f"/v1/families/{family_id}", headers=api.team)).json()
    assert family["status"] == "active"
    assert (await api.get("/v1/outcomes", params={"period_start": "2026-01-01",
                                                  "period_end": "2026-12-31"},
                          headers=api.team)).status_code == 403
    period = {"period_start": "2026-01-01", "period_end": str(date.today())}
    report = await api.get("/v1/outcomes", params=period, headers=api.leader)
    assert report.status_code == 200 and report.json()["parents_in_job_or_education"]["denominator"] == 0


async def test_contacts_actions_and_job_first_with_events_for_the_job_centre(api, broker) -> None:
    job = await station(api, "job_consultant")
    await station(api, "health_visitor", "sundhed-og-omsorg")
    family_id, child = await enrol(api, broker)
    family = await family_when(api, family_id)
    assert family is not None
    contact = await api.post(f"/v1/families/{family_id}/contacts", headers=api.team, json={
        "kind": "home_visit", "at": "2026-03-02T16:30:00Z", "staff_ids": [job["id"]],
        "participant_ids": [str(child)], "note": "Mor fortalte om sin ryg"})
    assert contact.status_code == 201, contact.text
    plan = (await api.post(f"/v1/families/{family_id}/goals", headers=api.team,
                           json={"life_area": "employment", "own_words": "Et job"})).json()
    goal_id = plan["goals"][0]["id"]
    action = (await api.post(f"/v1/families/{family_id}/goals/{goal_id}/actions", headers=api.team,
                             json={"description": "CV", "owner": job["id"], "due_on": "2026-04-01"})).json()
    done = await api.post(f"/v1/families/{family_id}/actions/{action['id']}/status", headers=api.team,
                          json={"status": "done"})
    assert done.status_code == 200
    assert (await api.post(f"/v1/families/{family_id}/actions/{action['id']}/status", headers=api.team,
                           json={"status": "dropped"})).status_code == 409
    opening = (await api.post("/v1/job-openings", headers=api.team, json={
        "site_id": "gellerup", "employer": "Bilka Tilst", "role": "Opfylder", "hours_per_week": "15",
        "kind": "flex_job"})).json()
    match = (await api.post(f"/v1/job-openings/{opening['id']}/candidates", headers=api.team,
                            json={"family_id": str(family_id), "person_id": str(child)})).json()
    assert (await api.post(f"/v1/job-matches/{match['id']}/follow-ups", headers=api.team, json={
        "on": "2026-04-15", "expectations_aligned": True})).status_code == 409
    assert (await api.post(f"/v1/job-matches/{match['id']}/decision", headers=api.team,
                           json={"state": "placed", "starts_on": "2026-04-01"})).status_code == 409
    for decision in ({"state": "matched"}, {"state": "placed", "starts_on": "2026-04-01"}):
        assert (await api.post(f"/v1/job-matches/{match['id']}/decision", headers=api.team,
                               json=decision)).status_code == 200
    follow = await api.post(f"/v1/job-matches/{match['id']}/follow-ups", headers=api.team, json={
        "on": "2026-04-15", "expectations_aligned": True, "note": "Godt i gang"})
    assert follow.status_code == 201 and len(follow.json()["follow_ups"]) == 1
    domain = envelopes(await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=8))
    contact_event = next(e for e in domain if e.type.endswith("contact-recorded.v1"))
    assert "note" not in contact_event.data and "Mor" not in str(contact_event.data)
    jobs = envelopes(await read_topic(broker.bootstrap, api.settings.department_topic(
        "sociale-forhold-og-beskaeftigelse"), expected=6))
    kinds = [e.type.split(".")[4] for e in jobs]
    assert kinds.count("job-match-decided") == 3 and "placement-started" in kinds


async def test_outcomes_count_leisure_jobs_wellbeing_and_fritidspas(api, broker) -> None:
    await station(api, "job_consultant")
    await station(api, "pedagogue", "boern-og-unge")
    family_id, child = await enrol(api, broker)
    await family_when(api, family_id)
    base = f"/v1/families/{family_id}/measurements"
    for path, body in (("leisure-job", {"person_id": str(child), "started_on": "2026-03-01"}),
                       ("wellbeing", {"score": 5, "at": "2026-01-10T10:00:00Z"}),
                       ("wellbeing", {"score": 6, "at": "2026-06-10T10:00:00Z"}),
                       ("fritidspas", {"person_id": str(child), "activity": "football", "on": "2026-02-01"})):
        assert (await api.post(f"{base}/{path}", headers=api.team, json=body)).status_code == 201
    report = (await api.get("/v1/outcomes", headers=api.leader, params={
        "period_start": "2026-01-01", "period_end": "2026-12-31"})).json()
    assert report["wellbeing_change"]["value"] == "20.0"
    assert report["leisure_jobs_change"]["numerator"] == 1 and report["leisure_jobs_change"]["value"] is None
    assert report["children_using_fritidspas"] == {"value": "100.0", "numerator": 1, "denominator": 1,
                                                   "families": 1}
