"""Referrals through REST with team and department tokens, consent from intake's events, on the broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.referrals.app import create_app
from shared.events.casework import EscalationRaised
from shared.events.intake import ConsentGiven, ConsentRevoked, FamilyEnrolled, Member
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
HEALTH, CHILDREN = "sundhed-og-omsorg", "boern-og-unge"


@pytest.fixture
async def api(broker: Broker, postgres_url: str):
    async with service_api(create_app, service="referrals", broker=broker, database_url=postgres_url) as http:
        http.health = bearer(http.settings, "department_staff", department=HEALTH)  # type: ignore[attr-defined]
        http.children = bearer(http.settings, "department_staff", department=CHILDREN)  # type: ignore[attr-defined]
        yield http


async def family(api, broker, departments: list[str]) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    family_id, mother, consent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    events = [FamilyEnrolled(family_id=family_id, site_id="gellerup",
                             members=[Member(person_id=mother, role="mother", birth_year=1985)])]
    if departments:
        events.append(ConsentGiven(family_id=family_id, site_id="gellerup", consent_id=consent,
                                   person_id=mother, departments=departments, purposes=["coordinated help"]))
    await publish(api.settings, broker.bootstrap, events)
    consumer = api._transport.app.state.consumers[0]
    await eventually(lambda: _done(consumer, len(events)), timeout=30)
    return family_id, mother, consent


async def _done(consumer, n: int) -> bool:
    return consumer.handled >= n


def rehab(family_id: uuid.UUID, person: uuid.UUID) -> dict:
    return {"family_id": str(family_id), "offer_code": "physical-rehabilitation", "person_id": str(person),
            "reason": "Ondt i ryggen",
            "fields": {"person_id": str(person), "health_concern_code": "back_pain"}}


async def post(api, path: str, headers, json=None, expect: int = 200) -> dict:
    response = await api.post(path, headers=headers, json=json)
    assert response.status_code == expect, response.text
    return response.json()


async def test_the_full_lifecycle_through_rest_with_each_transition_on_the_broker(api, broker) -> None:
    family_id, mother, _ = await family(api, broker, [HEALTH])
    referral = await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201)
    rid = referral["id"]
    await post(api, f"/v1/referrals/{rid}/send", api.team)
    await post(api, f"/v1/referrals/{rid}/accept", api.health)
    noted = await post(api, f"/v1/referrals/{rid}/status", api.health,
                       {"business_status": "venter på første aftale"})
    assert noted["business_status"] == "venter på første aftale" and noted["reason"] is None
    await post(api, f"/v1/referrals/{rid}/start", api.health)
    done = await post(api, f"/v1/referrals/{rid}/complete", api.health, {"outcome_code": "goal_met"})
    assert done["state"] == "completed" and done["outcome_code"] == "goal_met"
    seen_by_team = (await api.get(f"/v1/referrals/{rid}", headers=api.team)).json()
    assert [h["to_state"] for h in seen_by_team["history"]] == [
        "draft", "sent", "accepted", "accepted", "in_progress", "completed"]
    kinds = [e.type.split(".")[4] for e in envelopes(await read_topic(
        broker.bootstrap, api.settings.domain_topic(), expected=6))]
    assert kinds == ["referral-drafted", "referral-sent", "referral-accepted", "referral-status-noted",
                     "referral-started", "referral-completed"]
    on_health = await read_topic(broker.bootstrap, api.settings.department_topic(HEALTH), expected=5)
    assert len(on_health) == 5  # everything but the draft
    on_children = await read_topic(broker.bootstrap, api.settings.department_topic(CHILDREN), expected=1,
                                   timeout=2)
    assert on_children == []


async def test_illegal_transitions_and_unknown_offers(api, broker) -> None:
    family_id, mother, _ = await family(api, broker, [HEALTH])
    rid = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await post(api, f"/v1/referrals/{rid}/send", api.team)
    await post(api, f"/v1/referrals/{rid}/accept", api.health)
    await post(api, f"/v1/referrals/{rid}/accept", api.health, expect=409)
    other = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await post(api, f"/v1/referrals/{other}/send", api.team)
    await post(api, f"/v1/referrals/{other}/decline", api.health, {"reason_code": "outside_target_group"})
    await post(api, f"/v1/referrals/{other}/complete", api.health, {"outcome_code": "goal_met"}, expect=409)
    await post(api, f"/v1/referrals/{rid}/accept", api.team, expect=403)
    unknown = await api.post("/v1/referrals", headers=api.team, json={**rehab(family_id, mother),
                                                                       "offer_code": "no-such-offer"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.offer_code"
    extra = await api.post("/v1/referrals", headers=api.team, json={**rehab(family_id, mother), "fields": {
        "person_id": str(mother), "health_concern_code": "x", "diagnosis": "secret"}})
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "body.fields.diagnosis"


async def test_a_department_never_sees_another_departments_referrals(api, broker) -> None:
    family_id, mother, _ = await family(api, broker, [HEALTH])
    rid = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await post(api, f"/v1/referrals/{rid}/send", api.team)
    assert (await api.get(f"/v1/referrals/{rid}", headers=api.children)).status_code == 404
    assert (await api.get(f"/v1/referrals/{rid}", headers=api.health)).status_code == 200
    admin = bearer(api.settings, "admin")
    audit = (await api.get("/audit", params={"subject_id": rid}, headers=admin)).json()
    assert [(a["department"], a["outcome"]) for a in audit] == [(CHILDREN, "denied"), (HEALTH, "allowed")]
    await api.get("/v1/referrals", headers=api.health)
    listed = (await api.get("/audit", params={"subject_id": rid}, headers=admin)).json()
    assert listed[-1]["purpose"] == "referral list" and listed[-1]["department"] == HEALTH
    assert (await api.post(f"/v1/referrals/{rid}/accept", headers=api.children)).status_code == 404
    assert (await api.get("/v1/referrals", headers=api.children)).json()["items"] == []
    listed = (await api.get("/v1/referrals", params={"department": HEALTH}, headers=api.children)).json()
    assert listed["items"] == []
    mine = (await api.get("/v1/referrals", headers=api.health)).json()["items"]
    assert [r["id"] for r in mine] == [rid] and mine[0]["reason"] is None
    viby = bearer(api.settings, "team_staff", site="viby")
    assert (await api.get(f"/v1/referrals/{rid}", headers=viby)).status_code == 404


async def test_no_consent_for_the_department_is_a_conflict_that_says_which(api, broker) -> None:
    family_id, mother, _ = await family(api, broker, [CHILDREN])
    rid = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    refused = await api.post(f"/v1/referrals/{rid}/send", headers=api.team)
    assert refused.status_code == 409 and "Sundhed og Omsorg" in refused.json()["detail"]


async def test_revoking_consent_holds_open_referrals_and_cancels_drafts_with_events(api, broker) -> None:
    family_id, mother, consent = await family(api, broker, [HEALTH])
    sent = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await post(api, f"/v1/referrals/{sent}/send", api.team)
    draft = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await publish(api.settings, broker.bootstrap, [ConsentRevoked(
        family_id=family_id, site_id="gellerup", consent_id=consent, person_id=mother, departments=[HEALTH])])

    async def states():
        got = [(await api.get(f"/v1/referrals/{r}", headers=api.team)).json()["state"] for r in (sent, draft)]
        return got if got == ["on_hold", "cancelled"] else None
    assert await eventually(states, timeout=30)
    kinds = [e.type.split(".")[4] for e in envelopes(await read_topic(
        broker.bootstrap, api.settings.domain_topic(), expected=5))]
    assert kinds.count("referral-put-on-hold") == 1 and kinds.count("referral-cancelled") == 1


async def test_an_escalation_creates_its_referral_once_under_redelivery(api, broker) -> None:
    family_id, mother, _ = await family(api, broker, [HEALTH])
    escalation = EscalationRaised(family_id=family_id, site_id="gellerup", escalation_id=uuid.uuid4(),
                                  step="faglig_ven", target_department=HEALTH, person_id=mother,
                                  requested_by=uuid.uuid4(), reason_code="back_pain")
    await publish(api.settings, broker.bootstrap, [escalation], times=3)

    async def inbox():
        items = (await api.get("/v1/referrals", headers=api.health)).json()["items"]
        return items or None
    items = await eventually(inbox, timeout=30)
    assert await eventually(lambda: _done(api._transport.app.state.consumers[0], 5), timeout=20)
    items = (await api.get("/v1/referrals", params={"family_id": str(family_id)}, headers=api.team)).json()
    assert len(items["items"]) == 1
    assert items["items"][0]["offer_code"] == f"faglig-ven-{HEALTH}" and items["items"][0]["state"] == "sent"


async def test_an_overdue_referral_is_visible_and_announced_once(api, broker) -> None:
    family_id, mother, _ = await family(api, broker, [HEALTH])
    rid = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    sent = await post(api, f"/v1/referrals/{rid}/send", api.team)
    later = (datetime.fromisoformat(sent["due_at"]) + timedelta(hours=1)).astimezone(UTC).isoformat()
    system = bearer(api.settings, "system")
    assert (await api.post("/v1/referrals/overdue-check", params={"at": later}, headers=system)).json() == {
        "flagged": 1}
    assert (await api.post("/v1/referrals/overdue-check", params={"at": later}, headers=system)).json() == {
        "flagged": 0}
    assert (await api.post("/v1/referrals/overdue-check", headers=api.team)).status_code == 403
    kinds = [e.type.split(".")[4] for e in envelopes(await read_topic(
        broker.bootstrap, api.settings.domain_topic(), expected=3))]
    assert kinds.count("referral-overdue") == 1
