"""The evaluation's further measures through the REST API, each figure checked against a count
made by hand from the cohort the test builds: spouses and adult children as their own group,
young people starting a youth education, the family-reported questions, and a comparison
cohort (kontrolgruppe) loaded by an evaluator and set beside the project's figures."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from services.casework import handlers
from shared.departments import Department
from shared.events.intake import FamilyEnrolled, Member
from tests.casework.support import announced, deliver, ok
from tests.support import bearer

START, END = date(2019, 9, 1), date(2023, 6, 30)


def figure(value: str | None, numerator: int, denominator: int, families: int) -> dict[str, Any]:
    return {"value": value, "numerator": numerator, "denominator": denominator, "families": families}


class Family:
    """A family as intake enrols it: a mother, maybe a father and a spouse or adult child
    (``other_adult``, born 2000), a teenager born 2005 and a child born 2014."""

    def __init__(self, *, father: bool, other_adult: bool) -> None:
        self.id = uuid.uuid4()
        self.mother = uuid.uuid4()
        self.father = uuid.uuid4() if father else None
        self.other = uuid.uuid4() if other_adult else None
        self.teen, self.child = uuid.uuid4(), uuid.uuid4()

    def members(self) -> list[Member]:
        given = [(self.mother, "mother", 1985), (self.father, "father", 1983),
                 (self.other, "other_adult", 2000),
                 (self.teen, "child", 2005), (self.child, "child", 2014)]
        return [Member(person_id=p, role=role, birth_year=born) for p, role, born in given  # type: ignore[arg-type]
                if p is not None]


async def enrol(cw: Any, family: Family, on: date) -> None:
    await deliver(cw, handlers.on_family_enrolled, FamilyEnrolled(
        family_id=family.id, site_id="gellerup", members=family.members(),
        shared_with=[d.value for d in Department]), on)


async def record(cw: Any, family: Family, kind: str, expect: int = 201, **body: Any) -> Any:
    body = {k: str(v) if isinstance(v, date | uuid.UUID) else v for k, v in body.items()}
    return await ok(await cw.post(f"/v1/families/{family.id}/measurements/{kind}", headers=cw.team,
                                  json=body), expect)


async def build_cohort(cw: Any) -> list[Family]:
    """Ten families: 15 parents (3 in a job at the end), 6 spouses or adult children (4 in job or
    education), 16 young people aged 15–25 in 2023 (10 teenagers, 6 other adults; 6 started a
    youth education in the period), 20 children (8 used the fritidspas)."""
    cohort = [Family(father=i < 5, other_adult=i >= 4) for i in range(10)]
    for i, family in enumerate(cohort):
        await enrol(cw, family, START + timedelta(days=i))
    parents = [p for f in cohort for p in (f.mother, f.father) if p]
    assert len(parents) == 15
    for n, (family, person) in enumerate((f, p) for f in cohort for p in (f.mother, f.father) if p):
        await record(cw, family, "employment", person_id=person, status="unemployed", since=date(2018, 1, 1))
        if n < 3:
            await record(cw, family, "employment", person_id=person, status="ordinary_job",
                         since=date(2022, 1, 1))
    others = [f for f in cohort if f.other]
    for family, status in zip(others, ["ordinary_job", "ordinary_job", "education", "education",
                                       "unemployed", "unemployed"], strict=True):
        await record(cw, family, "employment", person_id=family.other, status=status, since=date(2021, 5, 1))
    # A job after the period's end is not the period's outcome.
    await record(cw, others[4], "employment", person_id=others[4].other, status="flex_job",
                 since=date(2023, 9, 1))
    for family in cohort[:5]:
        await record(cw, family, "youth-education", person_id=family.teen, started_on=date(2021, 8, 10),
                     programme="eud")
    await record(cw, cohort[5], "youth-education", person_id=cohort[5].teen, started_on=date(2023, 8, 10),
                 programme="stx")  # after the period
    await record(cw, others[0], "youth-education", person_id=others[0].other, started_on=date(2020, 8, 10),
                 programme="hf")
    for family in cohort[:8]:
        await record(cw, family, "fritidspas", person_id=family.child, activity="football",
                     on=date(2022, 3, 1))
    return cohort


async def test_spouses_young_people_and_family_answers_are_reported_as_counted_by_hand(cw) -> None:
    cohort = await build_cohort(cw)

    # Surplus energy: four mothers 2 → 4, two mothers 3 → 3; one answered only once; a later
    # answer after the period does not count. Trust: three fathers 1 → 3.
    for n, family in enumerate(cohort[:7]):
        start, later = (2, 4) if n < 4 else (3, 3)
        await record(cw, family, "family-answer", person_id=family.mother, question="surplus_energy",
                     answer=start, occasion="start", at="2019-10-01T10:00:00Z")
        if n < 6:
            await record(cw, family, "family-answer", person_id=family.mother, question="surplus_energy",
                         answer=later, occasion="follow_up", at="2023-03-01T10:00:00Z")
    await record(cw, cohort[0], "family-answer", person_id=cohort[0].mother, question="surplus_energy",
                 answer=1, occasion="follow_up", at="2023-09-01T10:00:00Z")
    for family in cohort[:3]:
        for answer, occasion, at in ((1, "start", "2019-10-01T10:00:00Z"),
                                     (3, "follow_up", "2022-10-01T10:00:00Z")):
            await record(cw, family, "family-answer", person_id=family.father,
                         question="trust_in_municipality",
                         answer=answer, occasion=occasion, at=at)

    report = await ok(await cw.get("/v1/outcomes", headers=cw.leader, params={
        "period_start": str(START), "period_end": str(END)}))
    assert report["parents_in_job_or_education"] == figure("20.0", 3, 15, 10)  # no spouse among them
    assert report["other_adults_in_job_or_education"] == figure("66.7", 4, 6, 6)
    assert report["youth_education_started"] == figure("37.5", 6, 16, 10)
    answers = {q["question"]: q for q in report["family_reported"]}
    assert answers["surplus_energy"] == {
        "question": "surplus_energy", "scale": 5, "respondents": 6, "families": 6,
        "average_at_start": "2.33", "average_now": "3.67", "change": "1.33",  # 14/6, 22/6, 8/6
        "improved": figure("66.7", 4, 6, 6)}
    assert answers["trust_in_municipality"] == {
        "question": "trust_in_municipality", "scale": 4, "respondents": 3, "families": 3,
        "average_at_start": "1.00", "average_now": "3.00", "change": "2.00",
        "improved": figure("100.0", 3, 3, 3)}
    assert answers["quality_of_life"]["respondents"] == 0 and answers["quality_of_life"]["change"] is None

    # Codes only in the events; the answer carries its scale.
    started = await announced(cw, "youth-education-started")
    assert len(started) == 7 and set(started[0]) >= {"person_id", "started_on", "programme"}
    answered = await announced(cw, "family-answer-recorded")
    assert answered[0]["scale"] == 5 and answered[0]["question"] == "surplus_energy"


async def test_measures_refuse_the_wrong_member_or_a_point_beyond_the_scale(cw) -> None:
    family = Family(father=False, other_adult=False)
    await enrol(cw, family, START)
    too_young = await record(cw, family, "youth-education", 422, person_id=family.child,
                             started_on=date(2022, 8, 10), programme="eud")
    assert [e["field"] for e in too_young["errors"]] == ["body.person_id"]
    child = await record(cw, family, "family-answer", 422, person_id=family.teen, question="wellbeing",
                         answer=3, occasion="start", at="2022-01-01T10:00:00Z")
    assert [e["field"] for e in child["errors"]] == ["body.person_id"]
    beyond = await record(cw, family, "family-answer", 422, person_id=family.mother,
                          question="trust_in_municipality", answer=5, occasion="start",
                          at="2022-01-01T10:00:00Z")
    assert [e["field"] for e in beyond["errors"]] == ["body.answer"]
    assert await announced(cw, "family-answer-recorded") == []


def csv_records(users: int, total: int) -> bytes:
    rows = ["pseudonym,measure,value"] + [f"k{n:03d},children_using_fritidspas,{int(n < users)}"
                                          for n in range(total)]
    return "\n".join(rows).encode()


async def test_an_evaluator_sets_a_comparison_cohort_beside_the_project(cw) -> None:
    await build_cohort(cw)
    evaluator = bearer(cw.settings, "evaluator")
    period = {"code": "kontrolgruppe-gellerup", "period_start": str(START), "period_end": str(END)}

    # Pseudonymised records: 8 of 40 children used the fritidspas (20 %); the project's 8 of 20.
    loaded = await ok(await cw.post("/v1/comparison-cohorts/import", headers={
        **evaluator, "Content-Type": "text/csv"}, params=period, content=csv_records(8, 40)), 201)
    assert loaded["source"] == "records" and loaded["records"] == 40
    assert loaded["figures"] == [{"measure": "children_using_fritidspas", "numerator": 8, "denominator": 40}]
    report = await ok(await cw.get(f"/v1/comparison-cohorts/{loaded['id']}/report", headers=evaluator))
    assert report["measures"] == [{
        "measure": "children_using_fritidspas", "project": figure("40.0", 8, 20, 8),  # users' families
        "comparison": {"value": "20.0", "numerator": 8, "denominator": 40}, "difference_points": "20.0",
        "ratio": "2.00"}]

    # Aggregates: parents 30 of 100 against the project's 3 of 15; young people 0 of 10.
    aggregates = await ok(await cw.post("/v1/comparison-cohorts", headers=evaluator, json={
        **period, "figures": [{"measure": "parents_in_job_or_education", "numerator": 30, "denominator": 100},
                              {"measure": "youth_education_started", "numerator": 0,
                               "denominator": 10}]}), 201)
    coordination = bearer(cw.settings, "coordination")
    report = await ok(await cw.get(f"/v1/comparison-cohorts/{aggregates['id']}/report", headers=coordination,
                                   params={"site_id": "gellerup"}))
    assert report["measures"] == [
        {"measure": "parents_in_job_or_education", "project": figure("20.0", 3, 15, 10),
         "comparison": {"value": "30.0", "numerator": 30, "denominator": 100},
         "difference_points": "-10.0", "ratio": "0.67"},  # 20 − 30; (3/15) / (30/100) = 0.666…
        {"measure": "youth_education_started", "project": figure("37.5", 6, 16, 10),
         "comparison": {"value": "0.0", "numerator": 0, "denominator": 10},
         "difference_points": "37.5", "ratio": None}]  # nothing to divide by

    # A CPR-shaped pseudonym, an unknown measure, more counted than the group: nothing loaded.
    bad = (b"pseudonym,measure,value\n0101901234,children_using_fritidspas,1\nk1,shoe_size,1\n"
           b"k2,network_yes_now,2\n" + "k3,network_yes_now,\u00b2\n".encode())
    refused = await cw.post("/v1/comparison-cohorts/import", params=period, content=bad,
                            headers={**evaluator, "Content-Type": "text/csv"})
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == [
        "body.line.2", "body.line.3", "body.line.4", "body.line.5"]
    assert "0101901234" not in refused.text
    for odd in (b"a\nb\rc\xc2\x85d\x0be", b"\xff\xfe", b"measure,numerator,denominator\n"):
        refused = await cw.post("/v1/comparison-cohorts/import", params=period, content=odd,
                                headers={**evaluator, "Content-Type": "text/csv"})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body"
    backwards = await cw.post("/v1/comparison-cohorts", headers=evaluator, json={
        **period, "period_end": "2019-01-01", "figures": [
            {"measure": "network_yes_now", "numerator": 1, "denominator": 2}]})
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "body.period_end"
    loaded_events = await announced(cw, "comparison-cohort-loaded")
    assert [e["source"] for e in loaded_events] == ["records", "aggregates"]

    # Only an evaluator loads; a team leader reads neither the cohort nor its report.
    leader_load = await cw.post("/v1/comparison-cohorts", headers=cw.leader, json={
        **period, "figures": [{"measure": "network_yes_now", "numerator": 1, "denominator": 2}]})
    assert leader_load.status_code == 403
    assert (await cw.get(f"/v1/comparison-cohorts/{loaded['id']}", headers=cw.leader)).status_code == 403
    assert (await cw.get(f"/v1/comparison-cohorts/{uuid.uuid4()}", headers=evaluator)).status_code == 404
