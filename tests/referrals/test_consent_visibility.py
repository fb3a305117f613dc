"""What a department sees of a family's referrals: only what was sent to it, and after its consent
is revoked nothing new — over REST and on its topic (real broker, PostgreSQL)."""

from __future__ import annotations

import json

import pytest

from shared.events.intake import ConsentRevoked
from tests.referrals.test_api import api, family, handled, post, rehab  # noqa: F401  (api: fixture)
from tests.support import Broker, bearer, envelopes, publish, read_topic

pytestmark = pytest.mark.broker
HEALTH, CHILDREN = "sundhed-og-omsorg", "boern-og-unge"


async def _inbox(api, headers) -> list[str]:  # noqa: F811
    return [r["id"] for r in (await api.get("/v1/referrals", headers=headers)).json()["items"]]


async def test_a_draft_is_the_teams_until_it_is_sent(api, broker: Broker) -> None:  # noqa: F811
    family_id, mother, _ = await family(api, broker, [HEALTH])
    rid = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    assert (await api.get(f"/v1/referrals/{rid}", headers=api.health)).status_code == 404
    assert await _inbox(api, api.health) == []
    drafts = await api.get("/v1/referrals", params={"status": "draft"}, headers=api.health)
    assert drafts.json()["items"] == []
    assert (await api.post(f"/v1/referrals/{rid}/status", headers=api.health,
                           json={"business_status": "set"})).status_code == 404
    await post(api, f"/v1/referrals/{rid}/send", api.team)
    received = (await api.get(f"/v1/referrals/{rid}", headers=api.health)).json()
    assert received["state"] == "sent" and received["fields"]["health_concern_code"] == "back_pain"
    assert await _inbox(api, api.health) == [rid]


async def test_after_revocation_the_department_gets_nothing_new_and_keeps_what_it_received(
        api, broker: Broker) -> None:  # noqa: F811
    family_id, mother, consent = await family(api, broker, [HEALTH])
    sent = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await post(api, f"/v1/referrals/{sent}/send", api.team)
    await post(api, f"/v1/referrals/{sent}/accept", api.health)
    draft = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]
    await publish(api.settings, broker.bootstrap, [ConsentRevoked(
        family_id=family_id, site_id="gellerup", consent_id=consent, person_id=mother, departments=[HEALTH])])
    await handled(api, 3)
    states = {r: (await api.get(f"/v1/referrals/{r}", headers=api.team)).json()["state"]
              for r in (sent, draft)}
    assert states == {sent: "on_hold", draft: "cancelled"}
    # A draft the team makes now, for a department without consent, stays the team's too.
    later = (await post(api, "/v1/referrals", api.team, rehab(family_id, mother), 201))["id"]

    # Its own case record: the referral it received, as it stood, now on hold; nothing else.
    assert await _inbox(api, api.health) == [sent]
    record = (await api.get(f"/v1/referrals/{sent}", headers=api.health)).json()
    assert record["state"] == "on_hold" and record["fields"]["health_concern_code"] == "back_pain"
    assert record["reason"] is None
    for unseen in (draft, later):
        assert (await api.get(f"/v1/referrals/{unseen}", headers=api.health)).status_code == 404

    # On its topic: the hold of the referral it worked on, never the cancellation of the draft.
    domain = envelopes(await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=7))
    cancelled = [e for e in domain if e.type.split(".")[4] == "referral-cancelled"]
    assert [e.data["referral_id"] for e in cancelled] == [draft] and cancelled[0].data["received_by"] is None
    topic = envelopes(await read_topic(broker.bootstrap, api.settings.department_topic(HEALTH), expected=3))
    assert [(e.type.split(".")[4], e.data["referral_id"]) for e in topic] == [
        ("referral-sent", sent), ("referral-accepted", sent), ("referral-put-on-hold", sent)]
    # The REST view of the family shows the department exactly that.
    view = (await api.get(f"/v1/families/{family_id}/slice", headers=api.health)).json()
    assert [e["data"] for e in view["events"]] == [e.data for e in topic]
    children = bearer(api.settings, "department_staff", department=CHILDREN)
    assert (await api.get(f"/v1/families/{family_id}/slice", headers=children)).status_code == 404


@pytest.mark.parametrize(("offer", "fields", "refused"), [
    ("physical-rehabilitation", {"health_concern_code": "0101901234"}, "health_concern_code"),
    ("physical-rehabilitation", {"health_concern_code": "ondt i ryggen, tager ikke sin medicin"},
     "health_concern_code"),
    ("health-visitor", {"birth_year": "010190-1234"}, "birth_year"),
    ("health-visitor", {"birth_year": "1850"}, "birth_year"),
    ("debt-counselling", {"household_size": "0101901234", "debt_overview": "high"}, "household_size"),
    ("debt-counselling", {"household_size": "4", "debt_overview": "Fatima skylder 80.000 kr"},
     "debt_overview"),
])
async def test_an_offers_fields_are_typed_and_free_text_or_a_cpr_number_is_refused(
        api, broker: Broker, offer: str, fields: dict, refused: str) -> None:  # noqa: F811
    family_id, mother, _ = await family(api, broker, [HEALTH])
    person = {"person_id": str(mother)} if offer != "debt-counselling" else {}
    body = {**rehab(family_id, mother), "offer_code": offer, "fields": {**person, **fields}}
    response = await api.post("/v1/referrals", headers=api.team, json=body)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"body.fields.{refused}"]
    assert "0101901234" not in response.text and "010190-1234" not in response.text
    # Nor through the draft's fields later: a good draft, then the same value put into it.
    good = {"physical-rehabilitation": {"health_concern_code": "back_pain"}, "health-visitor": {
        "birth_year": "2024"}, "debt-counselling": {"household_size": "4", "debt_overview": "high"}}[offer]
    rid = (await post(api, "/v1/referrals", api.team, {**body, "fields": {**person, **good}}, 201))["id"]
    put = await api.put(f"/v1/referrals/{rid}/fields", headers=api.team,
                        json={"fields": {**person, **fields}})
    assert put.status_code == 422 and [e["field"] for e in put.json()["errors"]] == [f"body.fields.{refused}"]
    domain = envelopes(await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=1))
    hostile = [v for v in fields.values() if len(v) >= 10]  # a CPR number or free text
    assert not [v for e in domain for v in hostile if v in json.dumps(e.data, ensure_ascii=False)]
