"""The steering report (for the steering group, the coordination group and the Magistrate):
one period, one site or all sites, composed by casework from the services' own aggregates.

Why here, and how (docs/architecture.md, "The steering report"): casework holds most of the
figures (outcomes, comparison cohorts) and computes them itself; intake's funnel, sites
(capacity and waitlist) and cohort profile, and finance's co-financing and savings by area, are
asked for over REST at their aggregate endpoints (addresses in ``OTO_PEER_URLS``), forwarding the
caller's own token, exactly as intake composes the subject-access report. Those endpoints answer
counts and sums only, so no personal data crosses a service boundary and no service reads
another's database. A peer that does not answer fails the report (503): a steering report
silently missing its money is worse than none.

The figures become :class:`~services.casework.suppression.Cell` s, the small-number rule decides
which read "<5", and :mod:`services.casework.steering_render` writes JSON, CSV or HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import comparison
from services.casework import measures as m
from services.casework import outcomes as report
from services.casework.domain import Figure
from services.casework.suppression import LIMIT, SUPPRESSED, Cell, Group, suppress
from shared.errors import ServiceUnavailable, Unprocessable

PEER_TIMEOUT_SECONDS = 10.0
#: The budget years finance answers for (its ``year`` parameter); the money is the period's end year's.
FINANCE_YEARS = (2019, 2100)
#: Outcome figures that are a change between two counts rather than a share of one in another.
CHANGES = frozenset({"absence_change", "leisure_jobs_change", "wellbeing_change"})
FIGURES = ("parents_in_job_or_education", "flex_job_share_of_those", "early_retirement_pension",
           "absence_change", "network_yes_at_start", "network_yes_now", "leisure_jobs_change",
           "wellbeing_change", "children_using_fritidspas", "other_adults_in_job_or_education",
           "youth_education_started")

Value = int | Decimal | str | None


class ColumnRead(BaseModel):
    key: str
    label: str
    unit: str = Field(description="families, persons, per cent, points, øre, DKK, places, years or text")


class RowRead(BaseModel):
    key: str
    label: str
    values: dict[str, Value] = Field(
        description='Per column: the figure, "<5" when withheld, null when undefined')


class SectionRead(BaseModel):
    key: str
    title: str
    definition: str
    columns: list[ColumnRead]
    rows: list[RowRead]


class SteeringReportRead(BaseModel):
    """The steering report: aggregates only, small numbers withheld (see docs/services.md)."""

    site_id: str | None
    period_start: date
    period_end: date
    finance_year: int = Field(description="The budget year of the money sections: the period's end year")
    comparison_cohort_id: UUID | None
    generated_at: datetime
    small_number_limit: int = Field(description="Counts from 1 to this minus one are shown as \"<5\"")
    suppressed_as: str
    sections: list[SectionRead]


@dataclass
class Sheet:
    """The report being built: sections with their cells and the groups that add up."""

    sections: list[tuple[str, str, str, list[ColumnRead], list[tuple[str, str]]]] = field(
        default_factory=list)
    cells: dict[str, Cell] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)

    def section(self, key: str, title: str, definition: str, columns: list[tuple[str, str, str]]) -> str:
        self.sections.append((key, title, definition, [ColumnRead(key=k, label=lbl, unit=u)
                                                       for k, lbl, u in columns], []))
        return key

    def row(self, section: str, key: str, label: str) -> None:
        next(s for s in self.sections if s[0] == section)[4].append((key, label))

    def put(self, key: str, value: int | Decimal | None, *, counts: bool = False, hidden: bool = False,
            depends_on: tuple[str, ...] = (), withheld: bool = False) -> None:
        self.cells[key] = Cell(key, value, counts=counts, hidden=hidden, depends_on=depends_on,
                               withheld=withheld)


# --- gathering ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Peers:
    """Where intake and finance answer, and the caller's headers to forward."""

    urls: Mapping[str, str]
    authorization: str
    correlation_id: str | None = None


async def _get(client: httpx.AsyncClient, peers: Peers, service: str, path: str,
               params: Mapping[str, Any], *, absent_ok: bool = False) -> Any:
    """The peer's JSON answer; ``absent_ok``: None for a 404 (a site without a budget)."""
    base = peers.urls.get(service)
    if base is None:
        raise ServiceUnavailable(f"No address is configured for {service} (OTO_PEER_URLS).")
    headers = {"authorization": peers.authorization,
               **({"x-request-id": peers.correlation_id} if peers.correlation_id else {})}
    try:
        response = await client.get(f"{base.rstrip('/')}{path}", headers=headers,
                                    params={k: v for k, v in params.items() if v is not None})
    except httpx.HTTPError:
        raise ServiceUnavailable(f"{service} did not answer the steering report's request.") from None
    if absent_ok and response.status_code == 404:
        return None
    if response.status_code != 200:
        raise ServiceUnavailable(f"{service} answered the steering report's request for {path} with "
                                 f"{response.status_code}.")
    return response.json()


async def steering_report(session: AsyncSession, *, site_id: str | None, period_start: date,
                          period_end: date, comparison_cohort_id: UUID | None,
                          peers: Peers) -> SteeringReportRead:
    """Gather every section's aggregates, apply the small-number rule and return the report."""
    comparison._period(period_start, period_end, "query")
    year = period_end.year
    if not FINANCE_YEARS[0] <= year <= FINANCE_YEARS[1]:
        raise Unprocessable("The period must end in a year finance keeps budgets for.",
                            fields={"query.period_end": f"year {FINANCE_YEARS[0]}–{FINANCE_YEARS[1]}"})
    outcomes = await report.outcomes(session, site_id=site_id, period_start=period_start,
                                     period_end=period_end)
    cohort = (await comparison.get_cohort(session, cohort_id=comparison_cohort_id)
              if comparison_cohort_id else None)
    period = {"site_id": site_id, "period_start": period_start.isoformat(),
              "period_end": period_end.isoformat()}
    async with httpx.AsyncClient(timeout=PEER_TIMEOUT_SECONDS) as client:
        funnel = await _get(client, peers, "intake", "/v1/funnel", {"site_id": site_id})
        sites = await _get(client, peers, "intake", "/v1/sites", {})
        profile = await _get(client, peers, "intake", "/v1/profile", period)
        site_ids = [s["id"] for s in sites if site_id in (None, s["id"])]
        answers = [await _get(client, peers, "finance", "/v1/allocations", {"site_id": s, "year": year},
                              absent_ok=True) for s in site_ids]
        allocations = [a for a in answers if a is not None]
        funding = await _get(client, peers, "finance", "/v1/funding", {"site_id": site_id, "year": year})
        savings = await _get(client, peers, "finance", "/v1/savings/areas",
                             {"site_id": site_id, "year": year, "years": 4})
    sheet = Sheet()
    add_funnel(sheet, funnel["counts"])
    add_partner_tips(sheet, funnel.get("identified_by_partner_tip") or {})
    add_capacity(sheet, [s for s in sites if s["id"] in site_ids], all_sites=site_id is None)
    add_profile(sheet, profile)
    ours = outcomes.model_dump(mode="json")
    beside = [m.compare(f.measure, Figure(**getattr(outcomes, f.measure).model_dump()), f.numerator,
                        f.denominator) for f in (cohort.figures if cohort else [])]
    add_outcomes(sheet, ours, {c.measure: c for c in beside})
    add_cofinancing(sheet, allocations)
    add_funding(sheet, funding_rows(funding))
    add_savings(sheet, savings)
    return finish(sheet, site_id=site_id, period_start=period_start, period_end=period_end, year=year,
                  comparison_cohort_id=comparison_cohort_id)


def finish(sheet: Sheet, *, site_id: str | None, period_start: date, period_end: date, year: int,
           comparison_cohort_id: UUID | None) -> SteeringReportRead:
    """Apply the small-number rule to every cell and lay the sections out."""
    withheld = suppress(sheet.cells, sheet.groups)

    def shown(key: str) -> Value:
        cell = sheet.cells.get(key)
        if cell is None:
            return None
        return SUPPRESSED if key in withheld else cell.value

    sections = [SectionRead(key=key, title=title, definition=definition, columns=columns,
                            rows=[RowRead(key=r, label=label,
                                          values={c.key: shown(f"{key}.{r}.{c.key}") for c in columns})
                                  for r, label in rows])
                for key, title, definition, columns, rows in sheet.sections]
    return SteeringReportRead(site_id=site_id, period_start=period_start, period_end=period_end,
                              finance_year=year, comparison_cohort_id=comparison_cohort_id,
                              generated_at=datetime.now(UTC), small_number_limit=LIMIT,
                              suppressed_as=SUPPRESSED, sections=sections)


# --- the sections ---------------------------------------------------------------------------

def add_funnel(sheet: Sheet, counts: Mapping[str, int]) -> None:
    _add_stages(sheet, "funnel", "Outreach funnel", (
        "Families that ever reached each stage (cumulative, so a family enrolled also counts as "
        "identified, contacted and screened), from intake's funnel; not limited to the period."), counts)


def add_partner_tips(sheet: Sheet, counts: Mapping[str, int]) -> None:
    _add_stages(sheet, "partner_tips", "Identified by a partner's tip", (
        "Of the funnel above, the families a partner (caretakers, the housing-social plan's staff, "
        "civil-society organisations) passed on and the team registered from the tip, by the "
        "furthest stage reached; from intake's funnel."), counts)


def _add_stages(sheet: Sheet, key: str, title: str, note: str, counts: Mapping[str, int]) -> None:
    """A section of families counted by the furthest funnel stage they reached."""
    s = sheet.section(key, title, note, [("families", "Families", "families")])
    for stage, count in counts.items():
        sheet.row(s, stage, stage.replace("_", " ").capitalize())
        sheet.put(f"{s}.{stage}.families", count, counts=True)


def add_capacity(sheet: Sheet, sites: list[Mapping[str, Any]], *, all_sites: bool) -> None:
    s = sheet.section("capacity", "Capacity and waitlist", (
        "Per site today: places (capacity), families enrolled and families on the waitlist, from "
        "intake's sites. With all sites, the last row adds them up."),
        [("capacity", "Places", "places"), ("enrolled", "Enrolled", "families"),
         ("waitlisted", "On the waitlist", "families")])
    for site in sites:
        sheet.row(s, site["id"], site["name"])
        sheet.put(f"{s}.{site['id']}.capacity", site["capacity"])
        sheet.put(f"{s}.{site['id']}.enrolled", site["enrolled"], counts=True)
        sheet.put(f"{s}.{site['id']}.waitlisted", site["waitlisted"], counts=True)
    if all_sites:
        sheet.row(s, "all", "All sites")
        for column in ("capacity", "enrolled", "waitlisted"):
            sheet.put(f"{s}.all.{column}", sum(site[column] for site in sites), counts=column != "capacity")
            if column != "capacity":
                sheet.groups.append(Group(f"{s}.all.{column}",
                                          tuple(f"{s}.{site['id']}.{column}" for site in sites)))


def add_profile(sheet: Sheet, profile: Mapping[str, Any]) -> None:
    s = sheet.section("profile", "The cohort at enrolment", (
        "Families enrolled in the period, as they were when enrolled (intake's cohort profile): "
        "adults and children at home, the average number of children, the parents unemployed on "
        "the enrolment day and their average years of unemployment."),
        [("value", "Figure", "families, persons or average")])
    whole = profile["suppressed"]
    rows = (("families", "Families", True), ("adults", "Adults", True),
            ("children", "Children at home", True),
            ("average_children_per_family", "Children per family (average)", False),
            ("unemployed_parents", "Parents unemployed at enrolment", True),
            ("average_unemployment_years", "Years of unemployment (average)", False))
    for key, label, counts in rows:
        sheet.row(s, key, label)
        value = profile.get(key)
        number = None if value is None else (int(value) if counts else Decimal(str(value)))
        sheet.put(f"{s}.{key}.value", number,
                  counts=counts, withheld=whole or (counts and value is None),
                  depends_on={"average_children_per_family": (f"{s}.families.value", f"{s}.children.value"),
                              "average_unemployment_years": (f"{s}.unemployed_parents.value",)}.get(key, ()))
    parts = []
    for cell in profile.get("children_per_family", []):
        key = f"children_{cell['children']}"
        sheet.row(s, key, f"Families with {cell['children']} children at home")
        sheet.put(f"{s}.{key}.value", cell["families"], counts=True, withheld=cell["families"] is None)
        parts.append(f"{s}.{key}.value")
    if parts:
        sheet.groups.append(Group(f"{s}.families.value", tuple(parts)))


def add_outcomes(sheet: Sheet, outcomes: Mapping[str, Any], compared: Mapping[str, m.Comparison]) -> None:
    s = sheet.section("outcomes", "Outcome measures", (
        "Casework's outcomes report for the period (each measure's definition is in "
        "docs/services.md): the persons counted (numerator) of those it is about (denominator), "
        "their families, and the share or change in per cent. With a comparison cohort, its share "
        "beside ours, the difference in percentage points and the ratio."),
        [("numerator", "Counted", "persons"), ("denominator", "Of", "persons"),
         ("families", "Families", "families"), ("value", "Share or change", "per cent"),
         ("comparison", "Comparison cohort", "per cent"),
         ("difference_points", "Difference", "points"), ("ratio", "Ratio", "ratio")])
    for measure in FIGURES:
        figure = outcomes[measure]
        sheet.row(s, measure, measure.replace("_", " ").capitalize())
        base = f"{s}.{measure}"
        own = (f"{base}.numerator", f"{base}.denominator")
        sheet.put(f"{base}.numerator", figure["numerator"], counts=True)
        sheet.put(f"{base}.denominator", figure["denominator"], counts=True)
        sheet.put(f"{base}.families", figure["families"], counts=True)
        sheet.put(f"{base}.value", _dec(figure["value"]), depends_on=own)
        if measure not in CHANGES:
            # What is not counted is the denominator's rest: "18 of 20" tells of the 2 as well.
            sheet.put(f"{base}.rest", figure["denominator"] - figure["numerator"], counts=True, hidden=True)
            sheet.groups.append(Group(f"{base}.denominator", (f"{base}.numerator", f"{base}.rest")))
        if (match := compared.get(measure)) is not None:
            theirs = (f"{base}.comparison_numerator", f"{base}.comparison_denominator")
            sheet.put(theirs[0], match.comparison.numerator, counts=True, hidden=True)
            sheet.put(theirs[1], match.comparison.denominator, counts=True, hidden=True)
            sheet.put(f"{base}.comparison", match.comparison.value, depends_on=theirs)
            sheet.put(f"{base}.difference_points", match.difference_points, depends_on=own + theirs)
            sheet.put(f"{base}.ratio", match.ratio, depends_on=own + theirs)
    for question in outcomes.get("family_reported", []):
        key = f"family_reported_{question['question']}"
        base = f"{s}.{key}"
        sheet.row(s, key, f"Family-reported: {question['question'].replace('_', ' ')} (change in points)")
        improved = question["improved"]
        sheet.put(f"{base}.numerator", improved["numerator"], counts=True)
        sheet.put(f"{base}.denominator", question["respondents"], counts=True)
        sheet.put(f"{base}.families", question["families"], counts=True)
        sheet.put(f"{base}.value", _dec(question["change"]), depends_on=(f"{base}.denominator",))
        sheet.put(f"{base}.rest", question["respondents"] - improved["numerator"], counts=True, hidden=True)
        sheet.groups.append(Group(f"{base}.denominator", (f"{base}.numerator", f"{base}.rest")))


def add_cofinancing(sheet: Sheet, allocations: list[Mapping[str, Any]]) -> None:
    s = sheet.section("cofinancing", "Co-financing", (
        "Finance's allocation of the year's budget: the råderum (pool) part and each department's "
        "share of the rest by its stationed FTE-days, summed over the sites shown (øre in JSON and "
        "CSV, DKK on the page)."),
        [("amount_ore", "Amount (øre)", "øre")])
    departments: dict[str, int] = {}
    for allocation in allocations:
        for department, amount in allocation["departments"].items():
            departments[department] = departments.get(department, 0) + amount
    rows = [("total", "Budget", sum(a["total_ore"] for a in allocations)),
            ("pool", "Råderum (pool)", sum(a["pool_ore"] for a in allocations))]
    rows += [(d, d.replace("-", " ").capitalize(), amount) for d, amount in departments.items()]
    for key, label, amount in rows:
        sheet.row(s, key, label)
        sheet.put(f"{s}.{key}.amount_ore", amount)


def funding_rows(sites: list[Mapping[str, Any]]) -> list[tuple[str, str, int]]:
    """The grants that pay part of the year, as (code, label, amount in øre), from finance's
    ``GET /v1/funding`` (per site: each grant's part of the year); a grant given to several sites
    under one code is summed. The label says who pays and for what, both codes."""
    amounts: dict[str, int] = {}
    labels: dict[str, str] = {}
    for site in sites:
        for grant in site.get("grants", []) or []:
            code = str(grant["code"])
            amounts[code] = amounts.get(code, 0) + int(grant["amount_ore"])
            labels[code] = f"{grant['funder']} ({grant['pays_for']})"
    return [(code, labels[code], amount) for code, amount in sorted(amounts.items())]


def add_funding(sheet: Sheet, rows: list[tuple[str, str, int]]) -> None:
    s = sheet.section("funding", "External funding", (
        "Grants from outside the municipality (e.g. a foundation) in the year, as finance allocates "
        "them; they reduce what the råderum and the departments pay."),
        [("amount_ore", "Amount (øre)", "øre")])
    for code, label, amount in rows:
        sheet.row(s, code, label)
        sheet.put(f"{s}.{code}.amount_ore", amount)


def add_savings(sheet: Sheet, savings: Mapping[str, Any]) -> None:
    s = sheet.section("savings", "Savings by area", (
        "Finance's savings by area for the year, over the families with an expenditure figure: the "
        "yearly expenditure before enrolment (baseline) and now, the savings (baseline − now) and "
        "the average per family. Sums over fewer than 5 families are withheld with the count."),
        [("families", "Families", "families"), ("baseline_per_year_ore", "Before (øre/year)", "øre"),
         ("current_per_year_ore", "Now (øre/year)", "øre"),
         ("savings_per_year_ore", "Savings (øre/year)", "øre"),
         ("average_per_family_per_year_ore", "Per family (øre/year)", "øre")])
    for area in [*savings["areas"], savings["total"]]:
        base = f"{s}.{area['area']}"
        sheet.row(s, area["area"], area["area"].replace("_", " ").capitalize())
        sheet.put(f"{base}.families", area["families"], counts=True)
        for column in ("baseline_per_year_ore", "current_per_year_ore", "savings_per_year_ore",
                       "average_per_family_per_year_ore"):
            sheet.put(f"{base}.{column}", area[column], depends_on=(f"{base}.families",))
    total = f"{s}.{savings['total']['area']}.families"
    b = sheet.section("break_even", "Break-even", (
        "The yearly savings over `years` (4) years against the råderum's contribution for the "
        "year and over the years; break-even when the yearly savings cover the yearly råderum; and "
        "the fewest families whose average savings would cover it."),
        [("amount_ore", "Amount (øre)", "øre"), ("value", "Figure", "yes (1) or no (0), families")])
    for key, label, column in (("over_years_ore", "Savings over 4 years", "amount_ore"),
                               ("pool_per_year_ore", "Råderum per year", "amount_ore"),
                               ("pool_over_years_ore", "Råderum over 4 years", "amount_ore"),
                               ("break_even", "Break-even (1 = yes, 0 = no)", "value"),
                               ("families_to_break_even", "Families needed to break even", "value")):
        sheet.row(b, key, label)
        value = savings[key]
        sheet.put(f"{b}.{key}.{column}", int(value) if value is not None else None,
                  depends_on=() if key.startswith("pool") else (total,))


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
