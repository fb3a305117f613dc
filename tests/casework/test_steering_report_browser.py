"""The steering report's HTML in a real headless browser (Debian's chromium through Playwright):
it renders its charts and tables, runs no script, and asks for nothing beyond 127.0.0.1 — the
page is complete as served. A screenshot is kept in tests/artefacts/ (git-ignored) to look at."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from tests.casework.test_steering_report import PERIOD, build_cohort, three_services
from tests.support import bearer

playwright = pytest.importorskip("playwright.async_api")

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTEFACTS = Path(__file__).resolve().parents[1] / "artefacts"


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
async def test_the_html_report_renders_in_chromium_without_a_request_leaving_the_machine(tmp_path) -> None:
    async with three_services(tmp_path) as http:
        cohort_id = await build_cohort(http)
        casework = http["casework"]
        token = bearer(casework.settings, "coordination")  # type: ignore[attr-defined]
        query = urlencode({**PERIOD, "site_id": "gellerup", "comparison_cohort_id": cohort_id,
                           "format": "html"})
        url = str(casework.base_url.join(f"/v1/reports/steering?{query}"))
        requested: list[str] = []
        async with playwright.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            context = await browser.new_context(extra_http_headers=token, java_script_enabled=True,
                                                viewport={"width": 1000, "height": 1400})
            context.on("request", lambda request: requested.append(request.url))
            page = await context.new_page()
            response = await page.goto(url, wait_until="networkidle")
            assert response is not None and response.status == 200
            title = await page.title()
            charts = await page.locator("svg").count()
            tables = await page.locator("table").count()
            scripts = await page.locator("script").count()
            bars = await page.locator("svg rect").count()
            withheld = await page.locator("td", has_text="<5").count()
            ARTEFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTEFACTS / "steering-report.png"), full_page=True)
            await browser.close()

    assert title.startswith("Steering report: gellerup")
    assert charts >= 5 and tables == 9 and scripts == 0 and bars > 0 and withheld > 0
    assert requested and all(urlsplit(u).hostname == "127.0.0.1" for u in requested), requested
    assert (ARTEFACTS / "steering-report.png").stat().st_size > 10_000
