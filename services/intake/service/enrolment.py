"""Intake use cases for enrolment, the site's waitlist, exit, and members joining later."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import domain as d
from services.intake.cpr import CprVault
from services.intake.models import Household, Site
from services.intake.schemas import HouseholdRead, MemberIn
from services.intake.service.consents import departments_covered, shared_with
from services.intake.service.households import (
    active_members,
    get_household_site,
    lock_household,
    new_person,
    now,
    parse_members,
    read_household,
    refuse_duplicates,
    set_status,
    waitlist_position,
)
from shared.errors import Conflict, Unprocessable
from shared.events import intake as events
from shared.outbox import record_event


async def enrol(session: AsyncSession, *, household_id: uuid.UUID, vault: CprVault) -> HouseholdRead:
    """Enrol if the site has room, else put the family on the site's ordered waitlist."""
    site_id = await get_household_site(session, household_id)
    site = await session.get(Site, site_id, with_for_update=True)  # serialises capacity decisions
    household = await lock_household(session, household_id)
    assert site is not None
    if household.status != "consented":
        raise Conflict(f"Only a consented household can be enrolled; this one is {household.status}.")
    has_consent = bool(await departments_covered(session, household_id, date.today()))
    enrolled = await _count(session, site_id, "enrolled")
    decision = d.decide_enrolment(has_consent=has_consent, enrolled=enrolled, capacity=site.capacity)
    if decision is d.HouseholdStatus.ENROLLED:
        await _enrol_now(session, household)
    else:
        set_status(household, decision)
        household.waitlisted_at = now()
        await session.flush()
        await record_event(session, events.FamilyWaitlisted(
            family_id=household.id, site_id=site_id, position=await waitlist_position(session, household)))
    return await read_household(session, household_id=household_id, vault=vault)


async def _enrol_now(session: AsyncSession, household: Household) -> None:
    set_status(household, d.transition(d.HouseholdStatus(household.status), d.HouseholdStatus.ENROLLED))
    household.enrolled_at = now()
    await session.flush()
    members = await active_members(session, household.id)
    await record_event(session, events.FamilyEnrolled(
        family_id=household.id, site_id=household.site_id,
        members=[events.Member(person_id=p.id, role=p.role, birth_year=p.birth_date.year)  # type: ignore[arg-type]
                 for p in members], shared_with=await shared_with(session, household.id)))


async def _count(session: AsyncSession, site_id: str, status: str) -> int:
    return int((await session.execute(select(func.count()).select_from(Household).where(
        Household.site_id == site_id, Household.status == status))).scalar_one())


async def exit_family(session: AsyncSession, *, household_id: uuid.UUID, reason: str,
                      vault: CprVault) -> HouseholdRead:
    """Exit with a reason; a freed place goes at once to the first family on the waitlist."""
    site_id = await get_household_site(session, household_id)
    await session.get(Site, site_id, with_for_update=True)
    household = await lock_household(session, household_id)
    was_enrolled = household.status == "enrolled"
    set_status(household, d.transition(d.HouseholdStatus(household.status), d.HouseholdStatus.EXITED))
    household.exited_at, household.exit_reason = now(), d.ExitReason(reason).value
    await session.flush()
    await record_event(session, events.FamilyExited(
        family_id=household.id, site_id=site_id, reason=reason,  # type: ignore[arg-type]
        shared_with=await shared_with(session, household.id)))
    if was_enrolled:
        await _offer_place(session, site_id)
    return await read_household(session, household_id=household_id, vault=vault)


async def _offer_place(session: AsyncSession, site_id: str) -> None:
    """Give the freed place to the first waitlisted family whose consent still covers (never
    enrol without consent: it may have been withdrawn or have expired while the family waited)."""
    waiting = (await session.execute(select(Household.id).where(
        Household.site_id == site_id, Household.status == "waitlisted")
        .order_by(Household.waitlisted_at, Household.id))).scalars().all()
    today = date.today()
    next_id = d.next_from_waitlist([(household_id, await departments_covered(session, household_id, today))
                                    for household_id in waiting])
    if next_id is not None:
        await _enrol_now(session, await lock_household(session, next_id))


async def add_member(session: AsyncSession, *, household_id: uuid.UUID, member: MemberIn,
                     vault: CprVault, today: date | None = None) -> HouseholdRead:
    """A spouse or adult child at the address joins the family."""
    household = await lock_household(session, household_id)
    if household.status == "exited":
        raise Conflict("The family has exited.")
    cpr = parse_members([member])[0]
    if member.role == "child" or d.one_year_before(today or date.today()).year - cpr.birth_date.year < 17:
        raise Unprocessable("Only adults are added later.", fields={"body.role": "must be an adult"})
    await refuse_duplicates(session, vault, [cpr])
    person = new_person(household.id, member, cpr, vault)
    session.add(person)
    await session.flush()
    if household.status == "enrolled":
        await record_event(session, events.MemberAdded(
            family_id=household.id, site_id=household.site_id,
            member=events.Member(person_id=person.id, role=member.role, birth_year=cpr.birth_date.year),
            shared_with=await shared_with(session, household.id)))
    return await read_household(session, household_id=household_id, vault=vault)
