"""Intake use cases for households: registration, screening, members' facts and the household's read.

Each writes and flushes; the entrypoint commits (HTTP via Idempotency.run). The other use cases
of the package build on the helpers here (locking, status changes, members).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import domain as d
from services.intake.area_service import load_area
from services.intake.cpr import Cpr, CprVault, InvalidCpr, parse_cpr
from services.intake.models import Household, Person, Site
from services.intake.schemas import CriterionRead, HouseholdIn, HouseholdRead, MemberIn, MemberRead
from shared.auth import Principal
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from shared.events import intake as events
from shared.outbox import record_event

ACTIVE = [s.value for s in d.HouseholdStatus if s is not d.HouseholdStatus.EXITED]


def now() -> datetime:
    return datetime.now(UTC)


# --- households ---------------------------------------------------------------------------

async def create_household(session: AsyncSession, *, vault: CprVault, data: HouseholdIn,
                           register_ref: str | None = None, today: date | None = None) -> HouseholdRead:
    """Register a candidate household with its members and screen it at once."""
    site = await session.get(Site, data.site_id)
    if site is None:
        raise Unprocessable("Unknown site.", fields={"body.site_id": "unknown site"})
    cprs = parse_members(data.members)
    await refuse_duplicates(session, vault, cprs)
    household = Household(site_id=site.id, address=data.address, register_ref=register_ref)
    session.add(household)
    await session.flush()
    for member, cpr in zip(data.members, cprs, strict=True):
        session.add(new_person(household.id, member, cpr, vault))
    await session.flush()
    await _screen(session, household, today or date.today())
    return await read_household(session, household_id=household.id, vault=vault)


def parse_members(members: Sequence[MemberIn]) -> list[Cpr]:
    problems: dict[str, str] = {}
    parsed: list[Cpr] = []
    for index, member in enumerate(members):
        try:
            parsed.append(parse_cpr(member.cpr))
        except InvalidCpr as exc:
            problems[f"body.members.{index}.cpr"] = str(exc)
    if problems:
        raise Unprocessable("Invalid CPR number.", fields=problems)
    if len({c.digits for c in parsed}) != len(parsed):
        raise Unprocessable("The same CPR number is given twice.", fields={"body.members": "duplicate CPR"})
    return parsed


async def refuse_duplicates(session: AsyncSession, vault: CprVault, cprs: Sequence[Cpr]) -> None:
    hashes = [vault.lookup_hash(c) for c in cprs]
    clash = (await session.execute(
        select(Person.id).join(Household, Household.id == Person.household_id)
        .where(Person.cpr_hash.in_(hashes), Person.active, Household.status.in_(ACTIVE)).limit(1)
    )).first()
    if clash is not None:
        raise Conflict("A person with this CPR number is already in an active household.")


def new_person(household_id: uuid.UUID, member: MemberIn, cpr: Cpr, vault: CprVault) -> Person:
    return Person(household_id=household_id, role=member.role, birth_date=cpr.birth_date,
                  cpr_ciphertext=vault.encrypt(cpr), cpr_hash=vault.lookup_hash(cpr),
                  cpr_is_replacement=cpr.is_replacement, unemployed_since=member.unemployed_since,
                  lives_at_address=member.lives_at_address)


async def active_members(session: AsyncSession, household_id: uuid.UUID) -> list[Person]:
    rows = await session.execute(select(Person).where(Person.household_id == household_id, Person.active)
                                 .order_by(Person.added_at, Person.id))
    return list(rows.scalars())


def set_status(household: Household, status: d.HouseholdStatus) -> None:
    """Every status change goes through here, so the furthest funnel stage moves with it."""
    household.status = status.value
    previous = d.HouseholdStatus(household.furthest_stage) if household.furthest_stage else None
    reached = d.furthest_stage(previous, status)
    household.furthest_stage = reached.value if reached else None


async def _screen(session: AsyncSession, household: Household, today: date) -> d.Screening:
    members = await active_members(session, household.id)
    facts = d.HouseholdFacts(household.site_id, tuple(
        d.MemberFacts(p.id, d.MemberRole(p.role), p.birth_date, p.unemployed_since, p.lives_at_address)
        for p in members), household.address)
    result = d.screen(facts, today=today, area=await load_area(session, household.site_id))
    household.eligible = result.eligible
    household.screening = [{"code": c.code, "met": c.met, "explanation": c.explanation, "state": c.state}
                           for c in result.criteria]
    household.screened_at = now()
    current = d.HouseholdStatus(household.status)
    if current in (d.HouseholdStatus.IDENTIFIED, d.HouseholdStatus.NOT_ELIGIBLE, d.HouseholdStatus.NO_ANSWER,
                   d.HouseholdStatus.CONTACTED):
        set_status(household, d.HouseholdStatus.IDENTIFIED if result.eligible
                    else d.HouseholdStatus.NOT_ELIGIBLE)
    await session.flush()
    await record_event(session, events.HouseholdScreened(
        family_id=household.id, site_id=household.site_id, eligible=result.eligible,
        criteria=[events.CriterionOutcome(code=c.code, met=c.met) for c in result.criteria]))
    return result


async def rescreen(session: AsyncSession, *, household_id: uuid.UUID, vault: CprVault,
                   today: date | None = None) -> HouseholdRead:
    household = await lock_household(session, household_id)
    await _screen(session, household, today or date.today())
    return await read_household(session, household_id=household_id, vault=vault)


async def update_member(session: AsyncSession, *, household_id: uuid.UUID, person_id: uuid.UUID,
                        changes: dict[str, Any], vault: CprVault, today: date | None = None) -> HouseholdRead:
    """Correct a member's facts and screen the household again on them."""
    household = await lock_household(session, household_id)
    person = await session.get(Person, person_id)
    if person is None or person.household_id != household.id:
        raise NotFound("No such member in this household.")
    if not changes:
        raise Unprocessable("Nothing to change.",
                            fields={"body": "give unemployed_since or lives_at_address"})
    for name, value in changes.items():
        setattr(person, name, value)
    await session.flush()
    await _screen(session, household, today or date.today())
    return await read_household(session, household_id=household_id, vault=vault)


async def lock_household(session: AsyncSession, household_id: uuid.UUID) -> Household:
    """Lock the household first: its events then get outbox ids in commit order."""
    household = await session.get(Household, household_id, with_for_update=True)
    if household is None:
        raise NotFound("No such household.")
    return household


async def get_household_site(session: AsyncSession, household_id: uuid.UUID) -> str:
    site = (await session.execute(select(Household.site_id).where(Household.id == household_id))).scalar()
    if site is None:
        raise NotFound("No such household.")
    return str(site)


async def get_household(session: AsyncSession, household_id: uuid.UUID) -> Household:
    """The household, loaded into the session: ``read_household`` then finds it in the identity
    map, so authorising a read and answering it take one query for the row, not two."""
    household = await session.get(Household, household_id)
    if household is None:
        raise NotFound("No such household.")
    return household


async def read_household(session: AsyncSession, *, household_id: uuid.UUID, vault: CprVault) -> HouseholdRead:
    household = await session.get(Household, household_id)
    if household is None:
        raise NotFound("No such household.")
    members = await active_members(session, household_id)
    position = await waitlist_position(session, household) if household.status == "waitlisted" else None
    return HouseholdRead(
        id=household.id, site_id=household.site_id, address=household.address, status=household.status,
        eligible=household.eligible, waitlist_position=position,
        screening=[criterion_read(c) for c in household.screening or []],
        members=[MemberRead(id=p.id, role=p.role, birth_year=p.birth_date.year,
                            cpr_masked=vault.decrypt(p.cpr_ciphertext).masked(),
                            unemployed_since=p.unemployed_since, lives_at_address=p.lives_at_address)
                 for p in members])


def criterion_read(stored: dict[str, object]) -> CriterionRead:
    """A stored criterion; those screened before ``state`` was kept were met or not, never unknown."""
    state = stored.get("state") or ("met" if stored["met"] else "not_met")
    return CriterionRead(code=str(stored["code"]), met=bool(stored["met"]),
                         explanation=str(stored["explanation"]), state=state)  # type: ignore[arg-type]


def check_site(principal: Principal, site_id: str) -> None:
    """Team staff see their own site only; another site's household is reported as absent."""
    if not principal.can_see_site(site_id):
        raise NotFound("No such household.")



async def waitlist_position(session: AsyncSession, household: Household) -> int:
    ahead = (await session.execute(select(func.count()).select_from(Household).where(
        Household.site_id == household.site_id, Household.status == "waitlisted",
        Household.waitlisted_at < household.waitlisted_at))).scalar_one()
    return int(ahead) + 1


def require_site_access(principal: Principal, site_id: str | None) -> str | None:
    """Team staff are bound to their site; a filter for another site is refused."""
    if principal.is_team:
        if site_id not in (None, principal.site):
            raise Forbidden("Team staff see their own site only.")
        return principal.site
    return site_id
