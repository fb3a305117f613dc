"""The dashboard's fold over a real department topic: restart, rebuild, revocation, redelivery, access.

Events are projected through the slice policy onto the department topics of a real broker, as
the relay does; the dashboard folds them into its own SQLite file and serves the pages.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from dashboard import tables as t
from dashboard.app import remove_state
from shared.departments import Department
from shared.slices import default_policy
from tests.dashboard.support import (
    CULTURE,
    HEALTH,
    caught_up,
    dashboard_settings,
    enrolled,
    envelope_of,
    for_department,
    new_dashboard,
    publish,
    referral,
    revoked,
    site_events,
    staff_headers,
)
from tests.support import Broker, bearer, make_settings, running

pytestmark = pytest.mark.broker


for_health = for_department
_caught_up = caught_up


async def _content(http: httpx.AsyncClient, headers: dict[str, str], path: str = "/familier") -> str:
    response = await http.get(path, headers={**headers, "X-Partial": "1"})
    assert response.status_code == 200
    return response.text


async def _totals(app) -> tuple[int, int, int]:
    """Timeline entries, the families' event counters, families: a twice-folded event shows."""
    async with app.state.sessionmaker() as session:
        entries = (await session.execute(select(func.count()).select_from(t.timeline))).scalar_one()
        counted = (await session.execute(select(func.sum(t.families.c.events)))).scalar_one()
        families = (await session.execute(select(func.count()).select_from(t.families))).scalar_one()
    return entries, counted, families


async def _count(app, table, family: uuid.UUID) -> int:
    async with app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(table).where(
            table.c.family_id == str(family)))).scalar_one()


async def test_a_revocation_forgets_the_family_at_once_and_a_rebuild_does_not_bring_it_back(
        broker: Broker, tmp_path: Path) -> None:
    settings = dashboard_settings(make_settings(broker=broker), tmp_path)
    kept, withdrawn = uuid.uuid4(), uuid.uuid4()
    before = [*enrolled(withdrawn), referral(withdrawn, due_in=timedelta(days=3)), *enrolled(kept)]
    await publish(settings, broker, before)
    headers = staff_headers(settings, HEALTH)
    state = tmp_path / "health.db"
    app = new_dashboard(settings, HEALTH, state)
    async with running(app) as http:
        await _caught_up(app, for_health(before))
        page = await _content(http, headers)
        assert str(withdrawn) in page and str(kept) in page
        after = [revoked(withdrawn), referral(withdrawn, due_in=timedelta(days=1))]  # a late straggler
        await publish(settings, broker, after)
        await _caught_up(app, for_health(before) + for_health(after))
        page = await _content(http, headers)
        assert str(withdrawn) not in page and str(kept) in page
        for table in (t.families, t.members, t.timeline, t.referrals):
            assert await _count(app, table, withdrawn) == 0, table.name
        assert (await http.get(f"/familier/{withdrawn}", headers=headers)).status_code == 404
        assert str(withdrawn) not in await _content(http, headers, "/henvisninger")
    remove_state(state)
    rebuilt = new_dashboard(settings, HEALTH, state)
    async with running(rebuilt) as http:
        await _caught_up(rebuilt, for_health(before) + for_health(after))
        assert str(withdrawn) not in await _content(http, headers)
        assert await _count(rebuilt, t.timeline, withdrawn) == 0
        assert str(kept) in await _content(http, headers)


async def test_a_new_consent_naming_the_department_lets_the_family_back_in(
        broker: Broker, tmp_path: Path) -> None:
    settings = dashboard_settings(make_settings(broker=broker), tmp_path)
    family = uuid.uuid4()
    # In one batch too: consent, enrolment, withdrawal, a straggler, then a new consent and enrolment.
    events = [*enrolled(family), revoked(family), referral(family, due_in=timedelta(days=1)),
              *enrolled(family, birth_years=(1990, 2020))]
    await publish(settings, broker, events)
    app = new_dashboard(settings, HEALTH, tmp_path / "health.db")
    headers = staff_headers(settings, HEALTH)
    async with running(app) as http:
        await _caught_up(app, for_health(events))
        page = await _content(http, headers, f"/familier/{family}")
        assert "mor 1990" in page and "mor 1985" not in page
        assert "Ingen henvisninger" in page  # the straggler before the new consent stayed out
        assert await _count(app, t.timeline, family) == 2


async def test_a_restart_resumes_a_rebuild_gives_the_same_pages_and_a_redelivery_changes_nothing(
        broker: Broker, tmp_path: Path) -> None:
    settings = dashboard_settings(make_settings(broker=broker), tmp_path)
    families = [uuid.uuid4() for _ in range(3)]
    events = [e for f in families for e in enrolled(f)]
    events += [referral(families[0], due_in=timedelta(days=-2)), *site_events()]
    sent = await publish(settings, broker, events)
    headers = staff_headers(settings, HEALTH)
    state = tmp_path / "health.db"
    views = ("/familier", "/henvisninger", "/medarbejdere", "/oekonomi", f"/familier/{families[0]}")
    app = new_dashboard(settings, HEALTH, state)
    async with running(app) as http:
        await _caught_up(app, for_health(events))
        first = {view: await _content(http, headers, view) for view in views}
        folded = await _totals(app)
    assert all(str(f) in first["/familier"] for f in families)
    restarted = new_dashboard(settings, HEALTH, state)
    async with running(restarted) as http:
        # The state is there before anything is consumed again.
        assert {view: await _content(http, headers, view) for view in views} == first
        await publish(settings, broker, sent)  # the same events again: at-least-once delivery
        extra = enrolled(uuid.uuid4())
        await publish(settings, broker, extra)
        await _caught_up(restarted, for_health(events) + for_health(extra))  # repeats counted too
        assert await _totals(restarted) == (folded[0] + 2, folded[1] + 2, folded[2] + 1)  # nothing refolded
        assert {view: await _content(http, headers, view) for view in views[1:]} == {
            v: first[v] for v in views[1:]}
        again = await _content(http, headers)
    remove_state(state)
    rebuilt = new_dashboard(settings, HEALTH, state)
    async with running(rebuilt) as http:
        await _caught_up(rebuilt, for_health(events) + for_health(extra))
        assert await _content(http, headers) == again
        assert {view: await _content(http, headers, view) for view in views[1:]} == {
            v: first[v] for v in views[1:]}


async def test_a_poison_message_is_skipped_and_the_fold_goes_on(broker: Broker, tmp_path: Path) -> None:
    settings = dashboard_settings(make_settings(broker=broker), tmp_path)
    topic = settings.department_topic(HEALTH.value)
    family = uuid.uuid4()
    await publish(settings, broker, [])
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        bad = envelope_of(enrolled(family)[1])
        bad = bad.with_data({**bad.data, "members": "not a list"})
        await producer.send_and_wait(topic, b"{not json", key=str(family).encode())
        await producer.send_and_wait(topic, bad.value(), key=bad.key_bytes(), headers=bad.headers())
    finally:
        await producer.stop()
    events = enrolled(family)
    await publish(settings, broker, events)
    app = new_dashboard(settings, HEALTH, tmp_path / "health.db")
    async with running(app) as http:
        await _caught_up(app, for_health(events))
        assert str(family) in await _content(http, staff_headers(settings, HEALTH))
        assert await _count(app, t.members, family) == 2


async def test_only_staff_of_the_department_get_in_and_the_token_stays_out_of_urls(
        broker: Broker, tmp_path: Path) -> None:
    settings = dashboard_settings(make_settings(broker=broker), tmp_path)
    app = new_dashboard(settings, HEALTH, tmp_path / "health.db")
    async with running(app) as http:
        anonymous = await http.get("/familier")
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
        assert (await http.get("/live")).status_code == 401
        for headers in (staff_headers(settings, CULTURE), bearer(settings, "team_staff", site="gellerup"),
                        bearer(settings, "admin")):
            assert (await http.get("/familier", headers=headers)).status_code == 403
        assert (await http.get("/live", headers=staff_headers(settings, CULTURE))).status_code == 403
        refused = await http.post("/login", content="token=garbage&next=/henvisninger",
                                  headers={"content-type": "application/x-www-form-urlencoded"})
        assert refused.status_code == 303 and "error=1" in refused.headers["location"]
        token = staff_headers(settings, HEALTH)["Authorization"].split()[1]
        accepted = await http.post("/login", content=f"token={token}&next=//evil.example/",
                                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert accepted.status_code == 303 and accepted.headers["location"] == "/familier"
        cookie = accepted.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert token not in accepted.headers["location"]
        http.cookies.set("oto_dashboard_token", token)
        page = await http.get("/familier")
        assert page.status_code == 200 and "Familier" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        bad_query = await http.get("/familier?page=0")
        assert bad_query.status_code == 422
        assert bad_query.headers["content-type"] == "application/problem+json"
        assert bad_query.json()["errors"][0]["field"] == "query.page"
        backslash = await http.post("/login", content=f"token={token}&next=/%5Cevil.example/",
                                    headers={"content-type": "application/x-www-form-urlencoded"})
        assert backslash.headers["location"] == "/familier"


def test_every_event_type_a_department_can_receive_has_a_handler() -> None:
    from dashboard.fold import handlers

    for department in Department:
        expected = {r.event for r in default_policy().rules if r.department is department}
        assert set(handlers(department)) == expected
