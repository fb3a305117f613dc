"""Outreach names who knocked: a staff member of the site, learnt from casework's events on the
real broker, or the caller. Anything else — a name, a note, a CPR number — is refused with 422
and never reaches intake's topic (PostgreSQL, real broker)."""

from __future__ import annotations

import uuid

import pytest

from shared.events.casework import StaffStationed
from shared.observability import CPR_SHAPE
from tests.intake.test_api import api, create  # noqa: F401  (api: fixture)
from tests.support import Broker, envelopes, eventually, publish, read_topic

pytestmark = pytest.mark.broker


def stationed(site: str) -> StaffStationed:
    return StaffStationed(stationing_id=uuid.uuid4(), staff_id=uuid.uuid4(), site_id=site,
                          department="sundhed-og-omsorg", discipline="health_visitor", role="staff", fte="1",
                          starts_on="2026-01-01")


async def test_outreach_names_a_staff_member_of_the_site_or_the_caller(api, broker: Broker) -> None:  # noqa: F811
    here, elsewhere = stationed("gellerup"), stationed("viby")
    await publish(api.settings, broker.bootstrap, [here, elsewhere])
    consumer = api._transport.app.state.consumers[0]
    assert await eventually(lambda: _handled(consumer, 2), timeout=30)
    hid = (await create(api))["id"]
    path = f"/v1/households/{hid}/outreach"

    for wrong in ("Fatima Hassan", "0101901234", "010190-1234", "ringede, ingen svar",
                  str(elsewhere.staff_id), str(uuid.uuid4())):
        refused = await api.post(path, headers=api.team, json={
            "at": "2026-03-02T16:30:00Z", "staff_id": wrong, "outcome": "not_home"})
        assert refused.status_code == 422, wrong
        assert [e["field"] for e in refused.json()["errors"]] == ["body.staff_id"]
        assert wrong not in refused.text
    for who in (str(here.staff_id), "team_staff-user", None):
        made = await api.post(path, headers=api.team, json={
            "at": "2026-03-02T16:30:00Z", "outcome": "not_home", **({"staff_id": who} if who else {})})
        assert made.status_code == 201, made.text

    events = envelopes(await read_topic(broker.bootstrap, api.settings.domain_topic(), expected=4))
    attempts = [e.data["staff_id"] for e in events if e.type.split(".")[4] == "outreach-attempt-recorded"]
    assert attempts == [str(here.staff_id), "team_staff-user", "team_staff-user"]
    assert not any(CPR_SHAPE.search(str(e.data)) or "Fatima" in str(e.data) for e in events)


async def _handled(consumer, n: int) -> bool:
    return consumer.handled >= n
