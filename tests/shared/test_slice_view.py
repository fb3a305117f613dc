"""The department view of a family shows exactly the topic's slice; others get 404; reads are audited."""

from __future__ import annotations

import uuid

import httpx
import pytest

from shared.app import ServiceDefinition, build_app
from shared.audit import entries_naming
from shared.departments import Department
from shared.outbox import record_event
from shared.slices.policy import SlicePolicy, SliceRule
from tests.shared.plumbing import ThingHappened, thing
from tests.support import Broker, bearer, envelopes, make_settings, read_topic

pytestmark = pytest.mark.broker
POLICY = SlicePolicy([SliceRule(Department.HEALTH_AND_CARE, ThingHappened, ("seq",),
                                reason="test: health sees the sequence number")])


async def test_department_view_equals_the_topic_slice_and_guesses_get_404(
        broker: Broker, postgres_url: str) -> None:
    settings = make_settings(broker=broker, database_url=postgres_url)
    app = build_app(ServiceDefinition(name="intake", title="t", description="d", routers=[],
                                      policy=POLICY), settings)
    family = uuid.uuid4()
    async with app.router.lifespan_context(app):
        async with app.state.sessionmaker() as session:
            for seq in range(3):
                await record_event(session, thing(family, seq, note="private"))
            await session.commit()
        health = bearer(settings, "department_staff", department=Department.HEALTH_AND_CARE.value)
        children = bearer(settings, "department_staff",
                          department=Department.CHILDREN_AND_YOUNG_PEOPLE.value)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            view = (await http.get(f"/v1/families/{family}/slice", headers=health)).json()
            topic = await read_topic(broker.bootstrap, settings.department_topic("sundhed-og-omsorg"),
                                     expected=3)
            assert [e["data"] for e in view["events"]] == [e.data for e in envelopes(topic)]
            assert all("note" not in e["data"] for e in view["events"])
            assert (await http.get(f"/v1/families/{family}/slice", headers=children)).status_code == 404
            assert (await http.get(f"/v1/families/{uuid.uuid4()}/slice", headers=health)).status_code == 404
            team = (await http.get(f"/v1/families/{family}/slice",
                                   headers=bearer(settings, "team_staff", site="gellerup"))).json()
            assert team["events"][0]["data"]["note"] == "private"
            other_site = await http.get(f"/v1/families/{family}/slice",
                                        headers=bearer(settings, "team_staff", site="viby"))
            assert other_site.status_code == 404
            finance = await http.get(f"/v1/families/{family}/slice", headers=bearer(settings, "finance"))
            assert finance.status_code == 403
        async with app.state.sessionmaker() as session:
            rows = (await session.execute(entries_naming(session, [str(family)]))).all()
    assert [(r.role, r.department, r.outcome) for r in rows] == [
        ("department_staff", "sundhed-og-omsorg", "allowed"),
        ("department_staff", "boern-og-unge", "denied"),
        ("team_staff", None, "allowed"),
        ("team_staff", None, "denied"),
        ("finance", None, "denied"),
    ]
