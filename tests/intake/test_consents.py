"""Consent per department and purpose through intake's API (PostgreSQL) and its events (real broker):
purpose codes only, one department withdrawn at a time, the history and the receipt written from it."""

from __future__ import annotations

import pytest

from shared.observability import CPR_SHAPE
from tests.intake.test_api import api, create, outreach  # noqa: F401  (api: fixture)
from tests.support import Broker, envelopes, read_topic

pytestmark = pytest.mark.broker
HEALTH, SOCIAL, CHILDREN = "sundhed-og-omsorg", "sociale-forhold-og-beskaeftigelse", "boern-og-unge"


def kind(envelope) -> str:
    return ".".join(envelope.type.split(".")[4:])


async def invited(api) -> tuple[str, str]:  # noqa: F811
    household = await create(api)
    await outreach(api, household["id"], "agreed")
    return household["id"], household["members"][0]["id"]


@pytest.mark.parametrize(("body", "field"), [
    ({"purposes": ["0101901234"]}, "body.purposes.0"),
    ({"purposes": ["coordinated_help", "010190-1234"]}, "body.purposes.1"),
    ({"purposes": ["samarbejde om familiens ønsker"]}, "body.purposes.0"),
    ({"purposes": ["employment"]}, "body.departments.0"),  # no purpose for Sundhed og Omsorg
    ({"purposes": ["health", "school_cooperation"]}, "body.purposes.1"),  # Børn og Unge is not named
])
async def test_purposes_are_codes_from_the_closed_list_and_fit_each_department(
        api, broker: Broker, body: dict, field: str) -> None:  # noqa: F811
    hid, mother = await invited(api)
    refused = await api.post(f"/v1/households/{hid}/consents", headers=api.team, json={
        "person_id": mother, "given_by_person_id": mother, "departments": [HEALTH], **body})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in refused.json()["errors"]]
    assert not CPR_SHAPE.search(refused.text)
    assert (await api.get(f"/v1/households/{hid}/consents", headers=api.team)).json() == []
    events = envelopes(await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=3, timeout=3))
    assert [kind(e) for e in events] == ["household-screened.v1", "outreach-attempt-recorded.v1"]


async def test_one_department_is_withdrawn_and_the_history_is_what_the_receipt_shows(
        api, broker: Broker) -> None:  # noqa: F811
    hid, mother = await invited(api)
    given = await api.post(f"/v1/households/{hid}/consents", headers=api.team, json={
        "person_id": mother, "given_by_person_id": mother, "departments": [HEALTH, SOCIAL],
        "purposes": ["coordinated_help", "health", "employment"]})
    assert given.status_code == 201, given.text
    consent = given.json()
    assert consent["grants"] == [
        {"department": HEALTH, "purposes": ["coordinated_help", "health"], "withdrawn": False},
        {"department": SOCIAL, "purposes": ["coordinated_help", "employment"], "withdrawn": False}]
    path = f"/v1/households/{hid}/consents/{consent['id']}"

    withdrawn = await api.post(f"{path}/revoke", headers=api.team, json={"departments": [HEALTH]})
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "given"
    assert [g["withdrawn"] for g in withdrawn.json()["grants"]] == [True, False]
    again = await api.post(f"{path}/revoke", headers=api.team, json={"departments": [HEALTH]})
    assert again.status_code == 409
    never = await api.post(f"{path}/revoke", headers=api.team, json={"departments": [CHILDREN]})
    assert never.status_code == 422 and [e["field"] for e in never.json()["errors"]] == ["body.departments.0"]
    renewed = await api.post(f"{path}/renew", headers=api.team, json={"expires_on": "2030-01-01"})
    assert renewed.status_code == 200, renewed.text

    record = (await api.get(path, headers=api.team)).json()
    assert record == (await api.get(f"/v1/households/{hid}/consents", headers=api.team)).json()[0]
    assert [(h["state"], h["departments"], h["expires_on"]) for h in record["history"]] == [
        ("given", [HEALTH, SOCIAL], None), ("withdrawn", [HEALTH], None), ("renewed", [SOCIAL], "2030-01-01")]
    days = [h["at"][:10] for h in record["history"]]
    assert record["receipt"].splitlines() == [
        "Samtykke / consent — Opgang til Opgang",
        "Consent of: mother born 1985.",
        f"{days[0]}: given for Sundhed og Omsorg (coordinated_help, health); Sociale Forhold og "
        "Beskæftigelse (coordinated_help, employment); valid until withdrawn.",
        f"{days[1]}: withdrawn for Sundhed og Omsorg.",
        f"{days[2]}: renewed for Sociale Forhold og Beskæftigelse; valid until 2030-01-01.",
        "You can withdraw it, or one department of it, at any time by telling your makkerpar."]

    rest = await api.post(f"{path}/revoke", headers=api.team)
    assert rest.status_code == 200 and rest.json()["state"] == "withdrawn"
    assert rest.json()["history"][-1]["departments"] == [SOCIAL]

    events = envelopes(await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=6))
    consent_events = [(kind(e), e.data["departments"], e.data.get("covered_after")) for e in events
                      if e.data.get("consent_id") == consent["id"]]
    assert consent_events == [
        ("consent-given.v2", [HEALTH, SOCIAL], [SOCIAL, HEALTH]),
        ("consent-revoked.v1", [HEALTH], [SOCIAL]),
        ("consent-given.v2", [SOCIAL], [SOCIAL]),
        ("consent-revoked.v1", [SOCIAL], [])]
    assert events[-2].data["grants"] == [{"department": SOCIAL,
                                          "purposes": ["coordinated_help", "employment"]}]
    on_health = envelopes(await read_topic(broker.bootstrap, api.settings.department_topic(HEALTH),
                                           expected=2))
    assert [kind(e) for e in on_health] == ["consent-given.v2", "consent-revoked.v1"]
    assert "purposes" not in on_health[0].data and "grants" not in on_health[0].data
