"""End to end through the real broker: a family withdraws one department from its consent, and
that department receives nothing new about the family while the other keeps receiving.

Intake and casework run together on SQLite files (the embedded path). The family consents to
Sundhed og Omsorg and Sociale Forhold og Beskæftigelse, then withdraws Sundhed og Omsorg only.
A health goal and an employment goal made afterwards: the employment goal reaches its department,
the health goal reaches nobody — not on the topic, not through casework's REST view.
"""

from __future__ import annotations

import contextlib

import pytest

from services.casework.app import create_app as casework_app
from services.intake.app import create_app as intake_app
from tests.intake.factories import define_area, household_body
from tests.support import Broker, bearer, envelopes, eventually, make_settings, read_topic, running

pytestmark = [pytest.mark.broker, pytest.mark.slow]
HEALTH, SOCIAL = "sundhed-og-omsorg", "sociale-forhold-og-beskaeftigelse"


def kinds(events) -> list[str]:
    return [e.type.split(".")[4] for e in events]


async def test_a_withdrawn_department_gets_nothing_new_and_the_other_keeps_its_slice(
        broker: Broker, tmp_path) -> None:
    namespace = make_settings().topic_namespace
    apps = {name: factory(make_settings(broker=broker, service=name, topic_namespace=namespace,
                                        database_url=f"sqlite+aiosqlite:///{tmp_path / name}.db"))
            for name, factory in (("intake", intake_app), ("casework", casework_app))}
    async with contextlib.AsyncExitStack() as stack:
        http = {name: await stack.enter_async_context(running(app)) for name, app in apps.items()}
        settings = apps["intake"].state.settings
        team = bearer(settings, "team_staff", site="gellerup")
        await define_area(http["intake"], bearer(settings, "admin"))
        household = (await http["intake"].post("/v1/households", json=household_body(), headers=team)).json()
        family, mother = household["id"], household["members"][0]["id"]
        await http["intake"].post(f"/v1/households/{family}/outreach", headers=team, json={
            "at": "2026-03-02T16:30:00Z", "outcome": "agreed"})
        consent = (await http["intake"].post(f"/v1/households/{family}/consents", headers=team, json={
            "person_id": mother, "given_by_person_id": mother, "departments": [HEALTH, SOCIAL],
            "purposes": ["coordinated_help", "health", "employment"]})).json()
        assert (await http["intake"].post(f"/v1/households/{family}/enrol", headers=team)).status_code == 200
        goal = f"/v1/families/{family}/goals"

        async def goal_made(area: str) -> bool:
            made = await http["casework"].post(goal, headers=team, json={
                "life_area": area, "own_words": "Det vil vi gerne", "person_id": mother})
            return made.status_code == 201
        assert await eventually(lambda: goal_made("health"), timeout=30)  # before: Health sees it

        withdrawn = await http["intake"].post(f"/v1/households/{family}/consents/{consent['id']}/revoke",
                                              headers=team, json={"departments": [HEALTH]})
        assert withdrawn.status_code == 200, withdrawn.text
        consumer = apps["casework"].state.consumers[0]
        # casework handled the consent, the enrolment and now the withdrawal
        assert await eventually(lambda: _handled(consumer, 3), timeout=30)
        assert await goal_made("health") and await goal_made("employment")

        health = envelopes(await read_topic(broker.bootstrap, settings.department_topic(HEALTH), expected=5))
        social = envelopes(await read_topic(broker.bootstrap, settings.department_topic(SOCIAL), expected=5))
        health_goals = [e.data["life_area"] for e in health if kinds([e]) == ["goal-changed"]]
        assert health_goals == ["health"]  # the one from before the withdrawal only
        assert kinds([e for e in health if e.source == "/oto/intake"]) == [
            "consent-given", "family-enrolled", "consent-revoked"]
        assert [e.data["life_area"] for e in social if kinds([e]) == ["goal-changed"]] == ["employment"]
        # Over REST the department reads what its topic carried while consent covered it, no more.
        view = (await http["casework"].get(f"/v1/families/{family}/slice",
                                           headers=bearer(settings, "department_staff", department=HEALTH)))
        assert [e["data"] for e in view.json()["events"]] == [e.data for e in health
                                                               if e.source == "/oto/casework"]


async def _handled(consumer, n: int) -> bool:
    return consumer.handled >= n
