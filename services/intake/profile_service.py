"""The cohort profile use case: read the enrolled families' facts and hand them to the domain.

Nothing but the aggregate leaves: no id, date of birth or address is in the answer.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.intake import profile as p
from services.intake.domain import MemberRole
from services.intake.models import Household, Person
from services.intake.schemas import ChildrenCountRead, ProfileRead
from shared.errors import Unprocessable


async def cohort_profile(session: AsyncSession, *, site_id: str | None, period_start: date,
                         period_end: date) -> ProfileRead:
    """Profile the families enrolled in the period (at one site, or all), as they were when enrolled.

    "As they were": members added after the enrolment are not counted, and unemployment is
    measured up to the enrolment day. Two queries, whatever the size of the cohort.
    """
    if period_end < period_start:
        raise Unprocessable("The period ends before it starts.", fields={"query.period_end": "before start"})
    query = select(col(Household.id), col(Household.enrolled_at)).where(
        col(Household.enrolled_at).is_not(None))
    if site_id:
        query = query.where(col(Household.site_id) == site_id)
    enrolled = {household: at for household, at in (await session.execute(query)).all()
                if p.in_period(at.astimezone(UTC).date(), period_start=period_start, period_end=period_end)}
    members: dict[uuid.UUID, list[Person]] = defaultdict(list)
    if enrolled:
        rows = await session.execute(select(Person).where(col(Person.household_id).in_(enrolled),
                                                          col(Person.active)))
        for person in rows.scalars():
            if person.added_at <= enrolled[person.household_id]:
                members[person.household_id].append(person)
    families = [_at_enrolment(at.astimezone(UTC).date(), members[household])
                for household, at in enrolled.items()]
    result = p.profile(families)
    return ProfileRead(
        site_id=site_id, period_start=period_start, period_end=period_end, small_number_limit=result.limit,
        suppressed=result.suppressed, families=result.families, adults=result.adults,
        children=result.children, average_children_per_family=result.average_children_per_family,
        children_per_family=[ChildrenCountRead(children=k, families=v)
                             for k, v in result.children_per_family],
        unemployed_parents=result.unemployed_parents, unemployment_days_total=result.unemployment_days_total,
        average_unemployment_years=result.average_unemployment_years)


def _at_enrolment(enrolled_on: date, members: list[Person]) -> p.FamilyAtEnrolment:
    adults = [m for m in members if MemberRole(m.role).is_adult]
    days = [p.unemployment_days(m.unemployed_since, enrolled_on) for m in adults]
    return p.FamilyAtEnrolment(
        enrolled_on=enrolled_on, adults=len(adults),
        children_at_home=sum(1 for m in members if not MemberRole(m.role).is_adult and m.lives_at_address),
        unemployment_days=tuple(d for d in days if d is not None))
