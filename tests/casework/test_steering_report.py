"""The steering report over real HTTP: intake, casework and finance each served by uvicorn on its
own port and its own SQLite file (the embedded path), casework composing the report from its own
outcomes and intake's and finance's aggregate endpoints.

The cohort, built through the services' APIs (intake's events handed to casework's and finance's
handlers as their consumers would): twelve Gellerup households found in the target area, nine of
them enrolled (six with a father, three with two children; every mother unemployed since March
2016); three Viby households enrolled on a site with one place (one enrolled, two waitlisted).
Casework records the parents' employment (eight of fifteen in a job or education by the period's
end, one of them in a flex job), an evaluator loads a comparison cohort, finance a budget, two
stationed staff and six families' expenditure. Every cell of the Gellerup report is compared with
the arithmetic written beside it, "<5" where the small-number rule withholds it.
"""

from __future__ import annotations

import contextlib
import csv
import io
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from services.casework import handlers as casework_handlers
from services.casework.app import create_app as casework_app
from services.finance import handlers as finance_handlers
from services.finance.app import create_app as finance_app
from services.intake.app import create_app as intake_app
from shared.broker import free_port
from shared.departments import Department
from shared.events.casework import StaffStationed
from shared.events.intake import FamilyEnrolled, Member
from tests.casework.support import announced, deliver, ok, station
from tests.e2e.test_subject_access import served
from tests.intake.factories import cpr, define_area, household_body
from tests.support import bearer, make_settings

TODAY = date.today()
YEAR = TODAY.year
PERIOD = {"period_start": f"{YEAR}-01-01", "period_end": f"{YEAR}-12-31"}
SOCIAL, HEALTH = "sociale-forhold-og-beskaeftigelse", "sundhed-og-omsorg"
VIBY_AREA = {"name": "Viby", "streets": [{"street": "Skanderborgvej"}]}
W = "<5"


async def enrol_household(intake: httpx.AsyncClient, team: dict[str, str],
                          body: dict[str, Any]) -> dict[str, Any]:
    household = await ok(await intake.post("/v1/households", json=body, headers=team), 201)
    mother = household["members"][0]["id"]
    await ok(await intake.post(f"/v1/households/{household['id']}/outreach", headers=team, json={
        "at": f"{TODAY}T08:00:00Z", "staff_id": "caseworker-anna", "outcome": "agreed"}), 201)
    await ok(await intake.post(f"/v1/households/{household['id']}/consents", headers=team, json={
        "person_id": mother, "given_by_person_id": mother, "purposes": ["coordinated_help"],
        "departments": [d.value for d in Department]}), 201)
    await ok(await intake.post(f"/v1/households/{household['id']}/enrol", headers=team))
    return household


async def hand_over(app_http: httpx.AsyncClient, handler: Any, household: dict[str, Any]) -> None:
    """Intake's family-enrolled, as casework's and finance's consumers hand it to their handlers."""
    members = [Member(person_id=m["id"], role=m["role"], birth_year=m["birth_year"])
               for m in household["members"]]
    await deliver(app_http, handler, FamilyEnrolled(family_id=household["id"], site_id=household["site_id"],
                                                    members=members,
                                                    shared_with=[d.value for d in Department]), TODAY)


def one_decimal(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.1"), ROUND_HALF_UP))


@contextlib.asynccontextmanager
async def three_services(tmp_path: Any):  # type: ignore[no-untyped-def]
    ports = {name: free_port() for name in ("intake", "casework", "finance")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    factories = {"intake": intake_app, "casework": casework_app, "finance": finance_app}
    apps = {name: factories[name](make_settings(service=name, peer_urls=dict(urls),
                                                database_url=f"sqlite+aiosqlite:///{tmp_path / name}.db"))
            for name in ports}
    async with contextlib.AsyncExitStack() as stack:
        for name, app in apps.items():
            await stack.enter_async_context(served(app, ports[name]))
        http = {name: await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60))
                for name, url in urls.items()}
        for name, client in http.items():
            client.app = apps[name]  # type: ignore[attr-defined]
            client.settings = apps[name].state.settings  # type: ignore[attr-defined]
        yield http


async def build_cohort(http: dict[str, httpx.AsyncClient]) -> str:
    """Build the cohort the module's docstring tells of; the comparison cohort's id."""
    intake, cw, fin = http["intake"], http["casework"], http["finance"]
    settings = intake.settings  # type: ignore[attr-defined]
    admin = bearer(settings, "admin")
    team = bearer(settings, "team_staff", site="gellerup", subject="caseworker-anna")
    await define_area(intake, admin)
    await define_area(intake, admin, site_id="viby", area=VIBY_AREA)
    await ok(await intake.post("/v1/sites", headers=admin,
                               json={"id": "viby", "name": "Viby", "capacity": 1}), 201)
    gellerup = []
    for n in range(9):
        members = [{"cpr": cpr(85), "role": "mother", "unemployed_since": "2016-03-01"}]
        members += [{"cpr": cpr(83), "role": "father"}] if n < 6 else []
        members += [{"cpr": cpr(15, century_digit=4), "role": "child"}]
        members += [{"cpr": cpr(17, century_digit=4), "role": "child"}] if n >= 6 else []
        gellerup.append(await enrol_household(intake, team, household_body(members=members)))
    for _ in range(3):  # found in the area, not (yet) reached
        await ok(await intake.post("/v1/households", json=household_body(), headers=team), 201)
    viby_team = bearer(settings, "team_staff", site="viby", subject="caseworker-anna")
    for _ in range(3):
        await enrol_household(intake, viby_team, household_body(site_id="viby",
                                                                 address="Skanderborgvej 100, 8260 Viby J"))

    for household in gellerup:
        await hand_over(cw, casework_handlers.on_family_enrolled, household)
        await hand_over(fin, finance_handlers.on_family_enrolled, household)
    cw_team = bearer(settings, "team_staff", site="gellerup")
    for n, household in enumerate(gellerup):
        for member in household["members"]:
            if member["role"] == "child":
                continue
            since = "2016-03-01" if member["role"] == "mother" else "2020-01-01"
            statuses = [("unemployed", since)]
            if member["role"] == "mother" and n < 5:
                statuses.append(("ordinary_job", f"{YEAR}-06-01"))
            if member["role"] == "mother" and n == 5:
                statuses.append(("flex_job", f"{YEAR}-06-01"))
            if member["role"] == "father" and n < 2:
                statuses.append(("education", f"{YEAR}-09-01"))
            for status, on in statuses:
                await ok(await cw.post(f"/v1/families/{household['id']}/measurements/employment",
                                       headers=cw_team, json={"person_id": member["id"], "status": status,
                                                              "since": on}), 201)
    cohort = await ok(await cw.post("/v1/comparison-cohorts", headers=bearer(settings, "evaluator"), json={
        "code": "kontrolgruppe-gellerup", **PERIOD, "figures": [
            {"measure": "parents_in_job_or_education", "numerator": 30, "denominator": 100},
            {"measure": "early_retirement_pension", "numerator": 10, "denominator": 100}]}), 201)

    for department in (SOCIAL, HEALTH):
        await station(cw, "job_consultant", department, starts_on=TODAY - timedelta(days=60))
    for payload in await announced(cw, "staff-stationed"):
        await deliver(fin, finance_handlers.on_staff_stationed, StaffStationed.model_validate(payload), TODAY)
    finance = bearer(settings, "finance")
    await ok(await fin.post("/v1/budgets", headers=finance, json={
        "site_id": "gellerup", "year": YEAR, "total_ore": 680_000_000, "pool_ore": 350_000_000}), 201)
    # A foundation pays 100 M øre of the råderum's part this year.
    await ok(await fin.post("/v1/grants", headers=finance, json={
        "site_id": "gellerup", "code": "pilot-foundation-grant", "funder": "private-foundation",
        "period_start": f"{YEAR}-01-01", "period_end": f"{YEAR}-12-31", "amount_ore": 100_000_000,
        "pays_for": "pool"}), 201)
    # A caretaker's tip; the team registered the first family from it.
    partner = bearer(settings, "partner", subject="caretaker-gellerup")
    tip = await ok(await intake.post("/v1/tips", headers=partner, json={
        "site_id": "gellerup", "address": "Gudrunsvej 10, 1. th", "reason": "long_term_unemployment"}), 201)
    await ok(await intake.post(f"/v1/tips/{tip['id']}/follow-up", headers=team, json={
        "outcome": "registered", "household_id": gellerup[0]["id"]}), 200)
    for n, household in enumerate(gellerup[:6]):
        areas = {"income_support": {"baseline_ore": 18_000_000, "current_ore": 0 if n < 4 else 18_000_000}}
        if n < 3:
            areas["service_act"] = {"baseline_ore": 5_000_000, "current_ore": 3_000_000}
        await ok(await fin.put(f"/v1/families/{household['id']}/costs", headers=finance,
                               json={"site_id": "gellerup", "areas": areas}))
    return str(cohort["id"])


def cells(report: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {s["key"]: {r["key"]: r["values"] for r in s["rows"]} for s in report["sections"]}


def expected_gellerup() -> dict[str, dict[str, dict[str, Any]]]:
    days = (TODAY - date(2016, 3, 1)).days  # every mother unemployed since then, enrolled today
    empty = {"numerator": 0, "denominator": 0, "families": 0, "value": None, "comparison": None,
             "difference_points": None, "ratio": None}
    outcomes = {measure: dict(empty) for measure in (
        "absence_change", "network_yes_at_start", "network_yes_now", "leisure_jobs_change",
        "wellbeing_change", "other_adults_in_job_or_education", "youth_education_started",
        *(f"family_reported_{q}" for q in ("health_mastery", "wellbeing", "surplus_energy",
                                          "quality_of_life", "trust_in_municipality")))}
    outcomes |= {
        # 9 mothers + 6 fathers with a status; 5 + 1 mothers and 2 fathers in a job or education.
        "parents_in_job_or_education": {
            "numerator": 8, "denominator": 15, "families": 9, "value": "53.3", "comparison": "30.0",
            "difference_points": "23.3",  # (8/15 − 30/100) × 100 = 23.33
            "ratio": "1.78"},  # (8/15) ÷ (30/100) = 1.777…
        # 1 of the 8 in a flex job: "<5", and so its share.
        "flex_job_share_of_those": {**empty, "numerator": W, "denominator": 8, "families": 6, "value": W},
        # Nobody used the fritidspas: 0 of the families' 12 children.
        "children_using_fritidspas": {**empty, "denominator": 12, "value": "0.0"},
        "early_retirement_pension": {
            "numerator": 0, "denominator": 15, "families": 9, "value": "0.0", "comparison": "10.0",
            "difference_points": "-10.0", "ratio": "0.00"},
    }
    return {
        # Found 12, of them 9 reached every stage to enrolment.
        "funnel": {"identified": {"families": 12}, "contacted": {"families": 9}, "invited": {"families": 9},
                   "consented": {"families": 9}, "enrolled": {"families": 9}},
        # One family, registered from a caretaker's tip and enrolled: "<5" at every stage.
        "partner_tips": {stage: {"families": W} for stage in
                         ("identified", "contacted", "invited", "consented", "enrolled")},
        "capacity": {"gellerup": {"capacity": 75, "enrolled": 9, "waitlisted": 0}},
        "profile": {
            "families": {"value": 9}, "adults": {"value": 15}, "children": {"value": 12},
            "average_children_per_family": {"value": "1.3"},  # 12 / 9
            "unemployed_parents": {"value": 9},
            "average_unemployment_years": {"value": one_decimal(Decimal(9 * days) / (9 * Decimal("365.25")))},
            # 6 families with one child, 3 with two: the 3 is withheld, and the 6 with it.
            "children_0": {"value": 0}, "children_1": {"value": W}, "children_2": {"value": W}},
        "outcomes": outcomes,
        # 680 M øre budget, 350 M råderum of which the foundation pays 100 M; the rest split by equal
        # FTE-days between two departments.
        "cofinancing": {"total": {"amount_ore": 680_000_000}, "pool": {"amount_ore": 250_000_000},
                        SOCIAL: {"amount_ore": 165_000_000}, "boern-og-unge": {"amount_ore": 0},
                        HEALTH: {"amount_ore": 165_000_000}, "kultur-og-borgerservice": {"amount_ore": 0}},
        "funding": {"pilot-foundation-grant": {"amount_ore": 100_000_000}},
        # Six families with figures: income support 6 × 18 M before, 2 × 18 M now; Serviceloven for 3,
        # 5 M → 3 M each; Barnets Lov none.
        "savings": {
            "income_support": {"families": 6, "baseline_per_year_ore": 108_000_000,
                               "current_per_year_ore": 36_000_000, "savings_per_year_ore": 72_000_000,
                               "average_per_family_per_year_ore": 12_000_000},
            "service_act": {"families": 6, "baseline_per_year_ore": 15_000_000,
                            "current_per_year_ore": 9_000_000, "savings_per_year_ore": 6_000_000,
                            "average_per_family_per_year_ore": 1_000_000},
            "childrens_act": {"families": 6, "baseline_per_year_ore": 0, "current_per_year_ore": 0,
                              "savings_per_year_ore": 0, "average_per_family_per_year_ore": 0},
            "total": {"families": 6, "baseline_per_year_ore": 123_000_000, "current_per_year_ore": 45_000_000,
                      "savings_per_year_ore": 78_000_000, "average_per_family_per_year_ore": 13_000_000}},
        "break_even": {"over_years_ore": {"amount_ore": 312_000_000, "value": None},  # 78 M × 4
                       # the råderum after the foundation's 100 M: 350 M − 100 M
                       "pool_per_year_ore": {"amount_ore": 250_000_000, "value": None},
                       "pool_over_years_ore": {"amount_ore": 1_000_000_000, "value": None},
                       "break_even": {"amount_ore": None, "value": 0},  # 78 M < 250 M
                       # ⌈250 M × 6 ÷ 78 M⌉ = ⌈19.2⌉
                       "families_to_break_even": {"amount_ore": None, "value": 20}},
    }


@pytest.mark.slow
async def test_the_steering_report_gives_every_cell_the_cohort_implies_with_small_numbers_withheld(
        tmp_path) -> None:
    async with three_services(tmp_path) as http:
        cohort_id = await build_cohort(http)
        settings = http["casework"].settings  # type: ignore[attr-defined]
        coordination = bearer(settings, "coordination")
        params = {**PERIOD, "site_id": "gellerup", "comparison_cohort_id": cohort_id}
        report = await ok(await http["casework"].get("/v1/reports/steering", headers=coordination,
                                                     params=params))
        as_csv = await http["casework"].get("/v1/reports/steering", headers=coordination,
                                            params={**params, "format": "csv"})
        as_html = await http["casework"].get("/v1/reports/steering", headers=coordination,
                                             params={**params, "format": "html"})
        everywhere = await ok(await http["casework"].get("/v1/reports/steering", headers=coordination,
                                                         params=PERIOD))
        refused = {role: (await http["casework"].get("/v1/reports/steering", params=params, headers=bearer(
            settings, role, **claims))).status_code for role, claims in (
            ("team_staff", {"site": "gellerup"}), ("team_leader", {"site": "gellerup"}), ("finance", {}),
            ("evaluator", {}), ("department_staff", {"department": SOCIAL}))}
        backwards = await http["casework"].get("/v1/reports/steering", headers=coordination, params={
            "period_start": f"{YEAR}-12-31", "period_end": f"{YEAR}-01-01"})
        far = await http["casework"].get("/v1/reports/steering", headers=coordination, params={
            "period_start": "2200-01-01", "period_end": "2200-12-31"})
        # Finance stops answering (its address leads nowhere): no report without its money.
        settings.peer_urls["finance"] = f"http://127.0.0.1:{free_port()}"
        partial = await http["casework"].get("/v1/reports/steering", headers=coordination, params=params)

    assert report["small_number_limit"] == 5 and report["suppressed_as"] == W
    assert cells(report) == expected_gellerup()

    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert {(r["section"], r["row"], r["column"]): r["value"] for r in rows} == {
        (s, r, c): "" if v is None else str(v)
        for s, section in expected_gellerup().items()
        for r, values in section.items() for c, v in values.items()}

    assert as_html.headers["content-type"].startswith("text/html")
    page = as_html.text.lower()
    assert "<svg" in page and "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page and "&lt;5" in page

    # All sites: Viby's one enrolled family is withheld, and Gellerup's nine with it, since the
    # total of ten shows; the two on Viby's waitlist are the whole waitlist, withheld both.
    capacity = cells(everywhere)["capacity"]
    assert capacity["gellerup"] == {"capacity": 75, "enrolled": W, "waitlisted": 0}
    assert capacity["viby"] == {"capacity": 1, "enrolled": W, "waitlisted": W}
    assert capacity["all"]["enrolled"] == 10 and capacity["all"]["waitlisted"] == W
    assert cells(everywhere)["funnel"] == {"identified": {"families": 15}, "contacted": {"families": 12},
                                          "invited": {"families": 12}, "consented": {"families": 12},
                                          "enrolled": {"families": 10}}

    assert set(refused.values()) == {403}
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "query.period_end"
    assert far.status_code == 422 and far.json()["errors"][0]["field"] == "query.period_end"
    assert partial.status_code == 503 and partial.headers["content-type"] == "application/problem+json"
