"""The outcomes report: the Gellerup evaluation's measures, computed from the measurements each
time it is asked for (never stored), for the families taking part in the period."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import domain as d
from services.casework.models import Family, FamilyMember, Measurement
from services.casework.schemas import OutcomesRead
from shared.consent import is_adult
from shared.errors import Unprocessable


async def outcomes(session: AsyncSession, *, site_id: str | None, period_start: date,
                   period_end: date) -> OutcomesRead:
    """Select the families taking part in the period (see ``domain.enrolled_in_period``), sort
    their members' measurements into adults and children by the roles intake gave them, and let
    the domain compute each figure. Three queries, whatever the number of families."""
    if period_end < period_start:
        raise Unprocessable("The period ends before it starts.", fields={"query.period_end": "before start"})
    families = select(Family.id, Family.enrolled_on, Family.exited_on)
    if site_id:
        families = families.where(Family.site_id == site_id)
    period = {"period_start": period_start, "period_end": period_end}
    cohort = [family for family, enrolled_on, exited_on in (await session.execute(families)).all()
              if d.enrolled_in_period(enrolled_on, exited_on, **period)]
    members = {person: (family, role) for person, family, role in (await session.execute(
        select(FamilyMember.person_id, FamilyMember.family_id, FamilyMember.role).where(
            FamilyMember.family_id.in_(cohort)))).all()}  # type: ignore[attr-defined]
    rows = (await session.execute(select(Measurement).where(Measurement.family_id.in_(cohort))  # type: ignore[attr-defined]
                                  .order_by(Measurement.at))).scalars().all()

    statuses: dict[uuid.UUID, list[tuple[date, d.EmploymentStatus]]] = defaultdict(list)
    network: dict[uuid.UUID, list[d.NetworkAnswer]] = defaultdict(list)
    absences: dict[uuid.UUID, list[tuple[str, Decimal]]] = defaultdict(list)
    leisure: list[d.LeisureJob] = []
    wellbeing: list[d.Assessment] = []
    pass_users: set[uuid.UUID] = set()
    for m in rows:
        v = m.value
        if m.kind == "employment" and m.person_id:
            statuses[m.person_id].append((date.fromisoformat(str(v["since"])),
                                          d.EmploymentStatus(str(v["status"]))))
        elif m.kind == "network" and m.person_id:
            network[m.person_id].append(d.NetworkAnswer(_day(v["at"]), str(v["occasion"]),
                                                        int(str(v["answer"]))))
        elif m.kind == "school_absence" and m.person_id:
            absences[m.person_id].append((str(v["term"]), Decimal(str(v["absence_percent"]))))
        elif m.kind == "leisure_job":
            ended = v.get("ended_on")
            leisure.append(d.LeisureJob(m.family_id, date.fromisoformat(str(v["started_on"])),
                                        date.fromisoformat(str(ended)) if ended else None))
        elif m.kind == "wellbeing":
            wellbeing.append(d.Assessment(m.family_id, _day(v["at"]), int(str(v["score"]))))
        elif m.kind == "fritidspas" and m.person_id and _within(v["on"], period_start, period_end):
            pass_users.add(m.person_id)

    adults = [d.AdultRecord(family, tuple(statuses.get(person, ())), tuple(network.get(person, ())))
              for person, (family, role) in members.items() if is_adult(role)]
    children = {person: family for person, (family, role) in members.items() if role == "child"}
    child_records = [d.ChildRecord(children[person], tuple(terms)) for person, terms in absences.items()
                     if person in children]
    users = pass_users & children.keys()
    report = d.outcomes_report(
        adults, child_records, period_start=period_start, period_end=period_end, leisure_jobs=leisure,
        wellbeing=wellbeing, fritidspas=(len(users), len(children), len({children[p] for p in users})))
    return OutcomesRead(site_id=site_id, period_start=period_start, period_end=period_end, **{
        name: getattr(report, name).__dict__ for name in report.__dataclass_fields__})


def _day(value: object) -> date:
    """The day of a recorded time (measurements store their times as ISO text)."""
    return datetime.fromisoformat(str(value)).date()


def _within(value: object, start: date, end: date) -> bool:
    return start <= date.fromisoformat(str(value)) <= end
