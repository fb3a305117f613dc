"""The dashboards in a real browser (Debian's chromium driven by Playwright).

An enrolment made through intake's API appears live on the dashboard of the department the
family's consent names and not on another's; overdue referrals are highlighted; a revocation
removes the family from the open page; every view passes axe-core with no serious or critical
violation, is usable by keyboard, logs no console error and asks no host but 127.0.0.1.
Screenshots of the views go to tests/artefacts/dashboard/ (git-ignored).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from services.intake.app import create_app as intake_app
from tests.dashboard.browser import chromium, log_in, screenshot, serious_violations, watched_page
from tests.dashboard.support import (
    CULTURE,
    HEALTH,
    caught_up,
    dashboard_settings,
    enrolled,
    for_department,
    new_dashboard,
    publish,
    referral,
    revoked,
    served,
    site_events,
    staff_headers,
)
from tests.intake.factories import define_area, household_body
from tests.support import Broker, bearer, make_settings, running

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def token(settings, department) -> str:
    return staff_headers(settings, department)["Authorization"].split()[1]


async def test_an_enrolment_through_intake_appears_live_on_its_departments_dashboard_only(
        broker: Broker, tmp_path: Path) -> None:
    settings = make_settings(broker=broker, service="intake",
                             database_url=f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    board = dashboard_settings(settings, tmp_path)
    async with (running(intake_app(settings)) as intake,
                served(new_dashboard(board, HEALTH, tmp_path / "health.db")) as health_url,
                served(new_dashboard(board, CULTURE, tmp_path / "culture.db")) as culture_url,
                chromium() as browser):
        health, culture = await watched_page(browser), await watched_page(browser)
        await log_in(health, health_url, token(board, HEALTH))
        await log_in(culture, culture_url, token(board, CULTURE))

        team = bearer(settings, "team_staff", site="gellerup")
        await define_area(intake, bearer(settings, "admin"))
        household = (await intake.post("/v1/households", json=household_body(), headers=team)).json()
        family, mother = household["id"], household["members"][0]["id"]
        await intake.post(f"/v1/households/{family}/outreach", headers=team, json={
            "at": "2026-03-02T16:30:00Z", "outcome": "agreed"})
        consent = await intake.post(f"/v1/households/{family}/consents", headers=team, json={
            "person_id": mother, "given_by_person_id": mother, "purposes": ["coordinated_help"],
            "departments": [HEALTH.value]})
        assert consent.status_code == 201
        assert (await intake.post(f"/v1/households/{family}/enrol", headers=team)).status_code == 200

        # No reload: the open page gets the family through its live stream.
        row = health.page.locator(f"tr[data-family='{family}']", has_text="Indskrevet")
        await row.wait_for()  # the consent comes first, then the enrolment
        assert "mor 1985" in (await row.inner_text())
        await screenshot(health.page, "familier-live")
        # Culture's page stays as it was; its topic never carried the family (consent names Health).
        assert await culture.page.locator(f"tr[data-family='{family}']").count() == 0
        assert family not in await culture.page.content()
        await health.page.click(f"tr[data-family='{family}'] a")
        await health.page.wait_for_selector("ol.timeline li")
        assert "Indskrevet" in await health.page.inner_text("ol.timeline")
        await screenshot(health.page, "familie-tidslinje")
        assert await serious_violations(health.page) == []
        health.assert_clean()
        culture.assert_clean()


async def test_overdue_referrals_are_highlighted_a_revocation_removes_the_family_and_every_view_is_accessible(
        broker: Broker, tmp_path: Path) -> None:
    board = dashboard_settings(make_settings(broker=broker), tmp_path)
    late_family, fine_family = uuid.uuid4(), uuid.uuid4()
    events = [*enrolled(late_family), *enrolled(fine_family, site="viby"),
              referral(late_family, due_in=timedelta(days=-3)),
              referral(fine_family, due_in=timedelta(days=10), site="viby",
                       offer="health-visitor-home-visits"),
              *site_events(), *site_events(site="viby")]
    await publish(board, broker, events)
    app = new_dashboard(board, HEALTH, tmp_path / "health.db")
    async with served(app) as url, chromium() as browser:
        health = await watched_page(browser)
        await log_in(health, url, token(board, HEALTH))
        page = health.page
        await caught_up(app, for_department(events))  # the partitions are folded in any order

        await page.goto(f"{url}/henvisninger")
        late = page.locator("tr.overdue")
        assert await late.count() == 1
        assert "Overskredet" in await late.inner_text()
        assert "physical-rehabilitation" in await late.inner_text()
        fine = page.locator("tr", has_text="health-visitor-home-visits")
        assert await fine.get_attribute("class") in ("", None)
        await screenshot(page, "henvisninger")

        for path, name in (("/familier", "familier"), ("/henvisninger", "henvisninger"),
                           ("/medarbejdere", "medarbejdere"), ("/oekonomi", "oekonomi"),
                           (f"/familier/{late_family}", "familie")):
            await page.goto(f"{url}{path}")
            await page.wait_for_selector("body[data-live=on]")
            assert await serious_violations(page) == [], path
            await screenshot(page, name)
        await page.goto(f"{url}/oekonomi")
        assert "30.864,20 kr." in await page.inner_text("table")  # øre shown as Danish kroner
        await page.goto(f"{url}/medarbejdere")
        assert "0.5 årsværk i dag" in await page.inner_text("#main")

        # Keyboard only: skip link first, then the menu, a filter and a family link, all by Tab/Enter.
        await page.goto(f"{url}/familier")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Spring til indhold"
        await _tab_to(page, "a[href='/henvisninger']")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{url}/henvisninger")
        await _tab_to(page, "#site")
        await page.keyboard.press("ArrowDown")  # the first site in the list
        await _tab_to(page, "form.filters button[type=submit]")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{url}/henvisninger?site=gellerup*")
        assert await page.locator("tbody tr").count() == 1
        for view in ("/medarbejdere", "/oekonomi"):  # the other views' filter, by keyboard too
            await page.goto(f"{url}{view}")
            await _tab_to(page, "#site")
            await page.keyboard.press("ArrowDown")
            await _tab_to(page, "form.filters button[type=submit]")
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{url}{view}?site=gellerup*")
        await page.goto(f"{url}/familier")
        await _tab_to(page, "#q")
        await page.keyboard.type(str(late_family))
        await page.keyboard.press("Enter")  # the search submits from the field
        await page.wait_for_url(f"{url}/familier?*q={late_family}*")
        assert await page.locator("tbody tr").count() == 1
        await _tab_to(page, f"a[href='/familier/{late_family}']")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{url}/familier/{late_family}")

        # A revocation: the open list loses the family at once, without a reload.
        await page.goto(f"{url}/familier")
        await page.wait_for_selector("body[data-live=on]")
        await page.locator(f"tr[data-family='{late_family}']").wait_for()
        await publish(board, broker, [revoked(late_family)])
        await page.locator(f"tr[data-family='{late_family}']").wait_for(state="detached")
        assert await page.locator(f"tr[data-family='{fine_family}']").count() == 1
        await screenshot(page, "familier-efter-tilbagekaldelse")
        health.assert_clean()


async def _tab_to(page, selector: str, limit: int = 40) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    target = page.locator(selector).first
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{selector} cannot be reached by keyboard")


async def test_a_restart_keeps_the_page_and_a_rebuild_gives_the_same_page(
        broker: Broker, tmp_path: Path) -> None:
    from dashboard.app import remove_state

    board = dashboard_settings(make_settings(broker=broker), tmp_path)
    families = [uuid.uuid4() for _ in range(3)]
    events = [*(e for f in families for e in enrolled(f)), referral(families[0], due_in=timedelta(days=-1)),
              *site_events(), revoked(families[2])]
    await publish(board, broker, events[:-1])
    await publish(board, broker, events[-1:])
    state = tmp_path / "health.db"
    views = ("/familier", "/henvisninger", "/medarbejdere", "/oekonomi", f"/familier/{families[0]}")
    async with chromium() as browser:
        watched = await watched_page(browser)
        pages: list[dict[str, str]] = []
        for attempt in ("first", "restart", "rebuild"):
            if attempt == "rebuild":
                remove_state(state)
            app = new_dashboard(board, HEALTH, state)
            async with served(app) as url:
                await log_in(watched, url, token(board, HEALTH))
                if attempt != "restart":  # a restart shows its state before it consumes anything
                    await caught_up(app, for_department(events))
                shown = {}
                for view in views:
                    await watched.page.goto(f"{url}{view}")
                    shown[view] = await watched.page.inner_html("#indhold")
                pages.append(shown)
                await watched.page.context.clear_cookies()
                await watched.page.goto("about:blank")  # close the live stream before the server stops
        assert str(families[2]) not in pages[0]["/familier"] and str(families[0]) in pages[0]["/familier"]
        assert pages[1] == pages[0]  # a restart resumes from its own file
        assert pages[2] == pages[0]  # a rebuild from offset 0 gives the same pages
        watched.assert_clean()
