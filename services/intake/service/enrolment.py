"""Intake use cases for enrolment, the site's waitlist, exit, and members joining later."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import domain as d
from services.intake.cpr import CprVault
from services.intake.models import Household, Site
from services.intake.schemas import HouseholdRead, MemberIn
from services.intake.service.answers import household_answer
from services.intake.service.consents import departments_covered, shared_with
from services.intake.service.households import (
    active_members,
    change_status,
    get_household_site,
    lock_household,
    lock_household_row,
    new_person,
    now,
    parse_members,
    read_household,
    refuse_duplicates,
    set_status,
)
from shared.departments import Department
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events import intake as events
from shared.outbox import record_event

_households = Household.__table__  # type: ignore[attr-defined]
_sites = Site.__table__  # type: ignore[attr-defined]
#: The household's site, locked (only the site: ``FOR UPDATE OF sites``) before the household.
_LOCK_SITE = (select(_sites.c.id, _sites.c.capacity).join(_households, _households.c.site_id == _sites.c.id)
              .where(_households.c.id == bindparam("household_id")).with_for_update(of=_sites))
_COUNT = select(func.count()).select_from(_households).where(
    _households.c.site_id == bindparam("site_id"), _households.c.status == bindparam("status"))


async def enrol(session: AsyncSession, *, household_id: uuid.UUID, vault: CprVault) -> HouseholdRead:
    """Enrol if the site has room, else put the family on the site's ordered waitlist."""
    site = (await session.execute(_LOCK_SITE, {"household_id": household_id})).first()
    if site is None:  # serialises capacity decisions: the site first, then the household
        raise NotFound("No such household.")
    household = await lock_household_row(session, household_id)
    if household.status != "consented":
        raise Conflict(f"Only a consented household can be enrolled; this one is {household.status}.")
    covered = await departments_covered(session, household_id, date.today())
    enrolled = int((await session.execute(_COUNT, {"site_id": site.id, "status": "enrolled"})).scalar_one())
    decision = d.decide_enrolment(has_consent=bool(covered), enrolled=enrolled, capacity=site.capacity)
    if decision is d.HouseholdStatus.ENROLLED:
        status = d.transition(d.HouseholdStatus(household.status), d.HouseholdStatus.ENROLLED)
        await change_status(session, household, status, stamp="enrolled_at")
    else:
        await change_status(session, household, decision, stamp="waitlisted_at")
    view = await household_answer(session, household_id, vault)
    if decision is d.HouseholdStatus.ENROLLED:
        await record_event(session, events.FamilyEnrolled(
            family_id=household.id, site_id=household.site_id,
            members=[events.Member(person_id=m.id, role=m.role, birth_year=m.birth_year)  # type: ignore[arg-type]
                     for m in view.read.members],
            shared_with=[department.value for department in Department if department in covered]))
    else:
        await record_event(session, events.FamilyWaitlisted(
            family_id=household.id, site_id=site.id, position=view.read.waitlist_position))
    return view.read


async def _enrol_now(session: AsyncSession, household: Household) -> None:
    set_status(household, d.transition(d.HouseholdStatus(household.status), d.HouseholdStatus.ENROLLED))
    household.enrolled_at = now()
    await session.flush()
    members = await active_members(session, household.id)
    await record_event(session, events.FamilyEnrolled(
        family_id=household.id, site_id=household.site_id,
        members=[events.Member(person_id=p.id, role=p.role, birth_year=p.birth_date.year)  # type: ignore[arg-type]
                 for p in members], shared_with=await shared_with(session, household.id)))


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
