"""Playwright on Debian's chromium (never Playwright's own download), with the page's console errors
and every request it makes recorded, axe-core's check, and screenshots as test artefacts."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTEFACTS = Path(__file__).resolve().parents[1] / "artefacts" / "dashboard"


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), "install Debian's chromium: apt-get install -y chromium (.ci/run does)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watched:
    """A page and what it did: console errors, failed requests, and every host it asked."""

    page: Page
    errors: list[str] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.hosts <= {"127.0.0.1"}, self.hosts


async def watched_page(browser: Browser) -> Watched:
    context = await browser.new_context(locale="da-DK", timezone_id="Europe/Copenhagen")
    page = await context.new_page()
    watched = Watched(page)
    page.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watched.errors.append(str(e)))
    page.on("request", lambda r: watched.hosts.add(urlsplit(r.url).hostname or r.url)
            if not r.url.startswith("data:") else None)
    return watched


async def log_in(watched: Watched, base_url: str, token: str) -> None:
    """Through the login form, as staff would: paste the token, submit."""
    page = watched.page
    await page.goto(f"{base_url}/familier")
    assert "/login" in page.url
    await page.fill("#token", token)
    await page.click("form.login button[type=submit]")
    await page.wait_for_url(f"{base_url}/familier")
    await page.wait_for_selector("body[data-live=on]")


async def serious_violations(page: Page) -> list[str]:
    results = await Axe().run(page)
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)" for v in results.response["violations"]
            if v.get("impact") in {"serious", "critical"}]


async def screenshot(page: Page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
