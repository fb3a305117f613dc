"""The outcomes report through the REST API on a cohort shaped like the Gellerup pilot.

62 families with 97 adults are enrolled during the period (intake's events, handed to casework's
handler) and their measurements recorded through the API: 50 adults end the period in job or
education (33 of them in flex jobs), 20 clarified to early retirement pension, 27 unemployed.
Around them is what the report must leave out: statuses after the period's end, children with a
job, a family enrolled after the period, a family that left before it, answers, scores and terms
outside it. The figures are what the data implies, computed by the report.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from tests.casework.support import Enrolled, enrol, leave, ok

START, END = date(2019, 9, 1), date(2023, 6, 30)
FINAL = ["flex_job"] * 33 + ["ordinary_job"] * 12 + ["education"] * 5 + ["early_retirement_pension"] * 20 + [
    "unemployed"] * 27


def figure(value: str | None, numerator: int, denominator: int, families: int) -> dict[str, Any]:
    return {"value": value, "numerator": numerator, "denominator": denominator, "families": families}


async def record(cw: Any, family: Enrolled, kind: str, **body: Any) -> None:
    body = {k: str(v) if isinstance(v, date | uuid.UUID) else v for k, v in body.items()}
    await ok(await cw.post(f"/v1/families/{family.id}/measurements/{kind}", headers=cw.team, json=body), 201)


async def test_the_report_on_a_pilot_shaped_cohort_gives_the_figures_the_data_implies(cw) -> None:
    cohort = [await enrol(cw, adults=2 if i < 35 else 1, children=1, on=START + timedelta(days=7 * i))
              for i in range(62)]
    adults = [(family, person) for family in cohort for person in family.adults]
    assert (len(cohort), len(adults)) == (62, 97)
    for (family, person), status in zip(adults, FINAL, strict=True):
        await record(cw, family, "employment", person_id=person, status="unemployed", since=date(2018, 1, 1))
        if status != "unemployed":
            await record(cw, family, "employment", person_id=person, status=status, since=date(2022, 3, 1))
    unemployed = [a for a, status in zip(adults, FINAL, strict=True) if status == "unemployed"]
    for family, person in unemployed[:5]:  # a job after the period is not the period's outcome
        await record(cw, family, "employment", person_id=person, status="flex_job", since=date(2023, 9, 1))
    for family in cohort[:3]:  # a child with a job is no parent
        await record(cw, family, "employment", person_id=family.children[0], status="ordinary_job",
                     since=date(2022, 1, 1))

    # The network question for 30 adults: 16 said no at the start, all say yes at the follow-up;
    # a later answer after the period's end does not change "now".
    for n, (family, person) in enumerate(adults[:30]):
        await record(cw, family, "network", person_id=person, answer=1 if n < 16 else 3, occasion="start",
                     at=f"{START + timedelta(days=30)}T10:00:00Z")
        await record(cw, family, "network", person_id=person, answer=4, occasion="follow_up",
                     at="2023-03-01T10:00:00Z")
    for family, person in adults[:4]:
        await record(cw, family, "network", person_id=person, answer=1, occasion="follow_up",
                     at="2023-10-01T10:00:00Z")
    # Wellbeing for 20 families, 5 then 6; a score after the period does not count.
    for family in cohort[:20]:
        await record(cw, family, "wellbeing", score=5, at="2019-10-01T10:00:00Z")
        await record(cw, family, "wellbeing", score=6, at="2023-05-01T10:00:00Z")
    await record(cw, cohort[0], "wellbeing", score=1, at="2023-12-01T10:00:00Z")
    # School absence for 10 children, 10 % then 7.5 %; a term after the period does not count.
    for family in cohort[:10]:
        for term, percent in (("2019-autumn", "10"), ("2023-spring", "7.5"), ("2023-autumn", "30")):
            await record(cw, family, "school-absence", person_id=family.children[0], term=term,
                         absence_percent=percent)

    late = await enrol(cw, adults=2, on=END + timedelta(days=30))  # enrolled after the period
    gone = await enrol(cw, adults=1, on=START - timedelta(days=200))  # left before it
    await leave(cw, gone, on=START - timedelta(days=10))
    for family in (late, gone):
        for person in family.adults:
            await record(cw, family, "employment", person_id=person, status="flex_job",
                         since=date(2019, 1, 1))

    report = await ok(await cw.get("/v1/outcomes", headers=cw.leader, params={
        "period_start": str(START), "period_end": str(END)}))

    def families_of(statuses: set[str]) -> int:
        return len({family.id for (family, _), s in zip(adults, FINAL, strict=True) if s in statuses})

    working = {"flex_job", "ordinary_job", "education"}
    assert report["parents_in_job_or_education"] == figure("51.5", 50, 97, 62)  # ≈ 52 %
    assert report["flex_job_share_of_those"] == figure("66.0", 33, 50, families_of(working))  # ≈ 2 of 3
    assert report["early_retirement_pension"] == figure("20.6", 20, 97, 62)  # ≈ 21 %
    assert report["network_yes_at_start"] == figure("46.7", 14, 30, len({f.id for f, _ in adults[:30]}))
    assert report["network_yes_now"] == figure("100.0", 30, 30, len({f.id for f, _ in adults[:30]}))
    assert report["wellbeing_change"] == figure("20.0", 20, 20, 20)
    assert report["absence_change"] == figure("-25.0", 10, 10, 10)

    # A period that ends before the jobs began (all 62 enrolled by then) sees everyone unemployed.
    early = await ok(await cw.get("/v1/outcomes", headers=cw.leader, params={
        "period_start": str(START), "period_end": "2021-12-31"}))
    assert early["parents_in_job_or_education"] == figure("0.0", 0, 97, 62)
    assert early["early_retirement_pension"] == figure("0.0", 0, 97, 62)
    # The first year: only the families enrolled in it count.
    first_year = await ok(await cw.get("/v1/outcomes", headers=cw.leader, params={
        "period_start": str(START), "period_end": str(START + timedelta(days=7 * 9))}))
    assert first_year["parents_in_job_or_education"]["families"] == 10
    bad = await cw.get("/v1/outcomes", headers=cw.leader, params={"period_start": str(END),
                                                                   "period_end": str(START)})
    assert bad.status_code == 422
