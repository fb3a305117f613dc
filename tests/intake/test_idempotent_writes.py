"""Idempotent writes through intake's real routes: the route returns its own model, and a replay
answers with the first answer's bytes and status code, marked, and is audited like the first."""

from __future__ import annotations

import uuid

from tests.intake.factories import household_body
from tests.intake.test_api import api, consent  # noqa: F401  (api: fixture)
from tests.support import bearer


def _keyed(http, key: str | None = None) -> dict[str, str]:
    return {**http.team, "Idempotency-Key": key or str(uuid.uuid4())}


async def _post_entries(http, subject: str, endpoint: str) -> int:
    audit = await http.get("/audit", params={"subject_id": subject}, headers=bearer(http.settings, "admin"))
    assert audit.status_code == 200, audit.text
    return sum(1 for entry in audit.json()["items"] if entry["endpoint"] == endpoint)


async def test_a_replayed_registration_is_the_first_answer_byte_for_byte_and_audited_again(api) -> None:  # noqa: F811
    headers, body = _keyed(api), household_body()
    first = await api.post("/v1/households", json=body, headers=headers)
    second = await api.post("/v1/households", json=body, headers=headers)
    assert first.status_code == second.status_code == 201, first.text
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    household = first.json()
    assert household["members"][0]["cpr_masked"].endswith("-XXXX")
    assert await _post_entries(api, household["id"], "POST /v1/households") == 2
    listed = await api.get("/v1/households", headers=api.team)
    assert [h["id"] for h in listed.json()["items"]].count(household["id"]) == 1

    changed = await api.post("/v1/households", json=household_body(), headers=headers)
    assert changed.status_code == 409


async def test_a_replayed_enrolment_keeps_its_200_and_a_new_key_is_a_new_answer(api) -> None:  # noqa: F811
    household = (await api.post("/v1/households", json=household_body(), headers=api.team)).json()
    await consent(api, household)
    headers = _keyed(api)
    path = f"/v1/households/{household['id']}/enrol"
    first = await api.post(path, headers=headers)
    second = await api.post(path, headers=headers)
    assert first.status_code == second.status_code == 200, first.text
    assert second.content == first.content and first.json()["status"] == "enrolled"
    assert second.headers["idempotent-replayed"] == "true"
    assert await _post_entries(api, household["id"], f"POST {path}") == 2
    again = await api.post(path, headers=_keyed(api))  # not a replay: enrolled already, refused
    assert again.status_code == 409


async def test_a_route_answering_a_report_replays_it(api) -> None:  # noqa: F811
    headers = {**bearer(api.settings, "system"), "Idempotency-Key": "expire-2026-11-29"}
    first = await api.post("/v1/consents/expire-due", headers=headers)
    second = await api.post("/v1/consents/expire-due", headers=headers)
    assert first.status_code == second.status_code == 200, first.text
    assert first.json() == {"expired": 0} and second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
