"""Referrals through REST with team and department tokens, consent from intake's events, on the broker."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.referrals import service
from services.referrals.app import create_app
from shared.auth import Principal, Role
from shared.events.casework import EscalationRaised
from shared.events.intake import ConsentGiven, ConsentRevoked, FamilyEnrolled, FamilyExited, Member
from shared.observability import CONSUMED
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
                                   person_id=mother, departments=departments, purposes=["coordinated_help"]))
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
    audit = (await api.get("/audit", params={"subject_id": rid}, headers=admin)).json()["items"]
    reads = [(a["department"], a["outcome"]) for a in audit if a["endpoint"].startswith("GET ")]
    assert reads == [(CHILDREN, "denied"), (HEALTH, "allowed")]
    await api.get("/v1/referrals", headers=api.health)
    listed = (await api.get("/audit", params={"subject_id": rid}, headers=admin)).json()["items"]
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


async def test_an_escalation_that_arrives_before_the_familys_enrolment_waits_for_it(api, broker) -> None:
    family_id, mother, consent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    consumer = api._transport.app.state.consumers[0]
    deferred = CONSUMED.labels(consumer.group_id, "deferred")
    before = deferred._value.get()
    await publish(api.settings, broker.bootstrap, [EscalationRaised(
        family_id=family_id, site_id="gellerup", escalation_id=uuid.uuid4(), step="faglig_ven",
        target_department=HEALTH, person_id=mother, requested_by=uuid.uuid4(), reason_code="back_pain")])
    assert await eventually(lambda: _true(deferred._value.get() > before), timeout=30)  # it waits
    await publish(api.settings, broker.bootstrap, [  # the enrolment arrives on intake's topic
        FamilyEnrolled(family_id=family_id, site_id="gellerup",
                       members=[Member(person_id=mother, role="mother", birth_year=1985)]),
        ConsentGiven(family_id=family_id, site_id="gellerup", consent_id=consent, person_id=mother,
                     departments=[HEALTH], purposes=["coordinated_help"])])

    async def referred():
        listed = await api.get("/v1/referrals", params={"family_id": str(family_id)}, headers=api.team)
        return listed.json()["items"] or None
    items = await eventually(referred, timeout=60)
    dead = await read_topic(broker.bootstrap, f"{api.settings.domain_topic('casework')}.dlq", expected=1,
                            timeout=1)
    assert [(i["offer_code"], i["person_id"]) for i in items] == [(f"faglig-ven-{HEALTH}", str(mother))]
    assert dead == []


async def _true(value: bool) -> bool:
    return value


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


async def handled(api, n: int) -> None:
    """Wait until the referrals consumer has handled ``n`` events in all."""
    assert await eventually(lambda: _done(api._transport.app.state.consumers[0], n), timeout=30)


async def test_resuming_a_held_referral_needs_consent_again_and_returns_it_where_it_was(api, broker) -> None:
    family_id, mother, consent = await family(api, broker, [HEALTH])
    rid = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await post(api, f"/v1/referrals/{rid}/send", api.team)
    await post(api, f"/v1/referrals/{rid}/accept", api.health)
    await publish(api.settings, broker.bootstrap, [ConsentRevoked(
        family_id=family_id, site_id="gellerup", consent_id=consent, person_id=mother, departments=[HEALTH])])
    await handled(api, 3)
    assert (await api.get(f"/v1/referrals/{rid}", headers=api.team)).json()["state"] == "on_hold"

    await post(api, f"/v1/referrals/{rid}/start", api.health, expect=409)
    await post(api, f"/v1/referrals/{rid}/accept", api.health, expect=409)
    await post(api, f"/v1/referrals/{rid}/send", api.team, expect=409)
    await post(api, f"/v1/referrals/{rid}/resume", api.health, expect=403)
    refused = await api.post(f"/v1/referrals/{rid}/resume", headers=api.team)
    assert refused.status_code == 409 and "Sundhed og Omsorg (sundhed-og-omsorg)" in refused.json()["detail"]

    await publish(api.settings, broker.bootstrap, [ConsentGiven(
        family_id=family_id, site_id="gellerup", consent_id=uuid.uuid4(), person_id=mother,
        person_role="mother", departments=[HEALTH], purposes=["coordinated_help"])])
    await handled(api, 4)
    resumed = await post(api, f"/v1/referrals/{rid}/resume", api.team)
    assert resumed["state"] == "accepted" and resumed["reason_code"] is None
    last = resumed["history"][-1]
    assert (last["from_state"], last["to_state"]) == ("on_hold", "accepted")
    await post(api, f"/v1/referrals/{rid}/start", api.health)
    events = envelopes(await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=6))
    assert [e.type.split(".")[4] for e in events] == [
        "referral-drafted", "referral-sent", "referral-accepted", "referral-put-on-hold", "referral-resumed",
        "referral-started"]
    assert events[4].data["state"] == "accepted"
    on_health = envelopes(await read_topic(broker.bootstrap, api.settings.department_topic(HEALTH),
                                           expected=5))
    assert "referral-resumed" in [e.type.split(".")[4] for e in on_health]


async def test_a_referral_is_read_by_the_list_roles_and_its_free_text_stays_in_the_team(api, broker) -> None:
    family_id, mother, _ = await family(api, broker, [HEALTH])
    rid = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await post(api, f"/v1/referrals/{rid}/send", api.team)
    for role in ("finance", "coordination", "admin", "system"):
        token = bearer(api.settings, role)
        assert (await api.get("/v1/referrals", headers=token)).status_code == 403, role
        assert (await api.get(f"/v1/referrals/{rid}", headers=token)).status_code == 403, role
    team = (await api.get(f"/v1/referrals/{rid}", headers=api.team)).json()
    assert team["reason"] == "Ondt i ryggen" and team["fields"]["health_concern_code"] == "back_pain"
    department = (await api.get(f"/v1/referrals/{rid}", headers=api.health)).json()
    assert department["reason"] is None and department["fields"]["health_concern_code"] == "back_pain"
    # Should an overview role ever be let in, the answer itself keeps the team's words and fields.
    async with api.app.state.sessionmaker() as session:
        coordination = Principal(subject="c", role=Role.COORDINATION)
        referral = await service.get_referral(session, coordination, uuid.UUID(rid))
        seen = await service.read(session, coordination, referral)
    assert (seen.reason, seen.fields) == (None, None)


async def test_an_exited_family_has_its_referrals_cancelled_and_gets_no_new_ones(api, broker) -> None:
    family_id, mother, _ = await family(api, broker, [HEALTH])
    accepted = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await post(api, f"/v1/referrals/{accepted}/send", api.team)
    await post(api, f"/v1/referrals/{accepted}/accept", api.health)
    completed = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await post(api, f"/v1/referrals/{completed}/send", api.team)
    for step, body in (("accept", None), ("start", None), ("complete", {"outcome_code": "goal_met"})):
        await post(api, f"/v1/referrals/{completed}/{step}", api.health, body)
    draft = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await publish(api.settings, broker.bootstrap, [FamilyExited(family_id=family_id, site_id="gellerup",
                                                                reason="moved_away")])
    await handled(api, 3)
    after = {r: (await api.get(f"/v1/referrals/{r}", headers=api.team)).json()
             for r in (accepted, completed, draft)}
    assert [(x["state"], x["reason_code"]) for x in after.values()] == [
        ("cancelled", "family_exited"), ("completed", None), ("cancelled", "family_exited")]
    refused = await api.post("/v1/referrals", headers=api.team, json=rehab(family_id, mother))
    assert refused.status_code == 409 and "left the programme" in refused.json()["detail"]
    events = envelopes(await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=13))
    cancelled = [e for e in events if e.type.split(".")[4] == "referral-cancelled"]
    assert sorted(e.data["referral_id"] for e in cancelled) == sorted([accepted, draft])
    assert {e.data["reason_code"] for e in cancelled} == {"family_exited"}


async def test_only_an_unexpired_consent_of_an_adult_covers_the_department(api, broker) -> None:
    family_id, mother, child = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    yesterday = date.today() - timedelta(days=1)
    await publish(api.settings, broker.bootstrap, [
        FamilyEnrolled(family_id=family_id, site_id="gellerup", members=[
            Member(person_id=mother, role="mother", birth_year=1985),
            Member(person_id=child, role="child", birth_year=2012)]),
        ConsentGiven(family_id=family_id, site_id="gellerup", consent_id=uuid.uuid4(), person_id=child,
                     person_role="child", departments=[HEALTH], purposes=["coordinated_help"]),
        ConsentGiven(family_id=family_id, site_id="gellerup", consent_id=uuid.uuid4(), person_id=mother,
                     person_role="mother", departments=[HEALTH], purposes=["coordinated_help"],
                     expires_on=yesterday)])
    await handled(api, 3)
    rid = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    refused = await api.post(f"/v1/referrals/{rid}/send", headers=api.team)
    assert refused.status_code == 409 and "Sundhed og Omsorg" in refused.json()["detail"]
    # A consent event from before intake sent the role: the member's role from enrolment counts.
    await publish(api.settings, broker.bootstrap, [ConsentGiven(
        family_id=family_id, site_id="gellerup", consent_id=uuid.uuid4(), person_id=mother,
        departments=[HEALTH], purposes=["coordinated_help"], expires_on=date.today())])
    await handled(api, 4)
    await post(api, f"/v1/referrals/{rid}/send", api.team)


async def test_a_referral_names_only_a_person_of_its_own_family(api, broker) -> None:
    family_id, mother, _ = await family(api, broker, [HEALTH])
    _, stranger, _ = await family(api, broker, [HEALTH])
    wrong = await api.post("/v1/referrals", headers=api.team, json={**rehab(family_id, mother),
                                                                     "person_id": str(stranger)})
    assert wrong.status_code == 422 and [e["field"] for e in wrong.json()["errors"]] == ["body.person_id"]
    leaked = await api.post("/v1/referrals", headers=api.team, json=rehab(family_id, stranger) | {
        "person_id": str(mother)})
    assert leaked.status_code == 422
    assert [e["field"] for e in leaked.json()["errors"]] == ["body.fields.person_id"]
    await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201)


async def test_overdue_filters_open_referrals_past_their_due_date(api, broker, monkeypatch) -> None:
    family_id, mother, _ = await family(api, broker, [HEALTH])
    routine = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    urgent = (await post(api, "/v1/referrals", api.team, {**rehab(family_id, mother), "priority": "urgent"},
                         201))["id"]
    draft = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    for rid in (routine, urgent):
        await post(api, f"/v1/referrals/{rid}/send", api.team)
    ten_days_on = datetime.now(UTC) + timedelta(days=10)  # past urgent's 7 days, within routine's 14
    monkeypatch.setattr(service, "now", lambda: ten_days_on)

    async def listed(overdue: str) -> list[tuple[str, bool]]:
        response = await api.get("/v1/referrals", params={"overdue": overdue}, headers=api.team)
        items = response.json()["items"]
        return sorted((r["id"], r["overdue"]) for r in items)
    assert await listed("true") == [(urgent, True)]
    assert await listed("false") == sorted([(routine, False), (draft, False)])
    inbox = (await api.get("/v1/referrals", params={"overdue": "true"}, headers=api.health)).json()["items"]
    assert [r["id"] for r in inbox] == [urgent]
