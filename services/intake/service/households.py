"""Intake use cases for households: registration, screening, members' facts and the household's read.

Each writes and flushes; the entrypoint commits (HTTP via Idempotency.run). The other use cases
of the package build on the helpers here (locking, status changes, members).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Insert

from services.intake import areas as a
from services.intake import domain as d
from services.intake.area_service import load_area
from services.intake.cpr import Cpr, CprVault, InvalidCpr, parse_cpr
from services.intake.models import Household, Person, Site, TargetArea, TargetAreaStreet
from services.intake.schemas import CriterionRead, HouseholdIn, HouseholdRead, MemberIn, MemberRead
from shared.audit import know_members
from shared.auth import Principal
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from shared.events import intake as events
from shared.outbox import record_event

ACTIVE = [s.value for s in d.HouseholdStatus if s is not d.HouseholdStatus.EXITED]

# Statements of the frequent writes, built once with bound values: SQLAlchemy keys its compiled
# cache by a statement's structure and recomputes that key for every statement built anew.
_households = Household.__table__  # type: ignore[attr-defined]
_persons = Person.__table__  # type: ignore[attr-defined]
_sites = Site.__table__  # type: ignore[attr-defined]
_areas = TargetArea.__table__  # type: ignore[attr-defined]
_streets = TargetAreaStreet.__table__  # type: ignore[attr-defined]
#: An active person of an active household holding one of the CPR numbers (by look-up hash).
_CLASH = (select(_persons.c.id).join(_households, _households.c.id == _persons.c.household_id)
          .where(_persons.c.cpr_hash.in_(bindparam("hashes", expanding=True)), _persons.c.active,
                 _households.c.status.in_(ACTIVE)).limit(1))
#: What registering checks, in one statement: the site (no row: unknown), its area and streets
#: (none: no area defined) and the first clash (``_CLASH``).
_REGISTRATION = (select(_sites.c.id, _areas.c.name.label("area"), _streets.c.street, _streets.c.from_number,
                        _streets.c.to_number, _streets.c.side,
                        _CLASH.scalar_subquery().label("clash"))
                 .select_from(_sites.outerjoin(_areas, _areas.c.site_id == _sites.c.id)
                              .outerjoin(_streets, _streets.c.site_id == _areas.c.site_id))
                 .where(_sites.c.id == bindparam("site_id")).order_by(_streets.c.id))
_SITE_OF = select(_households.c.site_id).where(_households.c.id == bindparam("household_id"))
_INSERT_HOUSEHOLD = _households.insert()
_LOCK = (select(_households.c.id, _households.c.site_id, _households.c.status, _households.c.furthest_stage)
         .where(_households.c.id == bindparam("household_id")).with_for_update())
#: A status change with the furthest stage it reaches, and with the time it stamps, if any.
_STATUS = {stamp: update(_households).where(_households.c.id == bindparam("household_id")).values(
    status=bindparam("status"), furthest_stage=bindparam("furthest"),
    **({stamp: bindparam("at")} if stamp else {})) for stamp in (None, "enrolled_at", "waitlisted_at")}
#: ``_LOCK`` with the household's persons (only the household's row is locked).
_LOCK_WITH_PEOPLE = (select(_households.c.id, _households.c.site_id, _households.c.status,
                            _households.c.furthest_stage, _persons.c.id.label("person_id"), _persons.c.role,
                            _persons.c.birth_date, _persons.c.active)
                     .select_from(_households.outerjoin(_persons,
                                                        _persons.c.household_id == _households.c.id))
                     .where(_households.c.id == bindparam("household_id"))
                     .order_by(_persons.c.added_at, _persons.c.id).with_for_update(of=_households))


def now() -> datetime:
    return datetime.now(UTC)


# --- households ---------------------------------------------------------------------------

async def create_household(session: AsyncSession, *, vault: CprVault, data: HouseholdIn,
                           register_ref: str | None = None, today: date | None = None) -> HouseholdRead:
    """Register a candidate household with its members and screen it at once.

    On Core, in as few statements as the rules allow: one reads the site, its target area and any
    active household already holding one of the CPR numbers; the household is inserted already
    screened, its members in one statement; the answer is built from what was written (no read
    back), and the audit entry is told the members (no lookup)."""
    try:
        cprs = parse_members(data.members)
    except Unprocessable:
        await _registration_facts(session, data.site_id, [])  # an unknown site is reported first
        raise
    area = await _registration_facts(session, data.site_id, [vault.lookup_hash(c) for c in cprs])
    household_id, created = uuid.uuid4(), now()
    people = [_person_row(household_id, member, cpr, vault)
              for member, cpr in zip(data.members, cprs, strict=True)]
    facts = d.HouseholdFacts(data.site_id, tuple(
        d.MemberFacts(p["id"], d.MemberRole(p["role"]), p["birth_date"], p["unemployed_since"],
                      p["lives_at_address"]) for p in people), data.address)
    result = d.screen(facts, today=today or date.today(), area=area)
    status = d.HouseholdStatus.IDENTIFIED if result.eligible else d.HouseholdStatus.NOT_ELIGIBLE
    screening = stored_criteria(result)
    await session.execute(_INSERT_HOUSEHOLD, {
        "id": household_id, "site_id": data.site_id, "address": data.address, "register_ref": register_ref,
        "status": status.value, "furthest_stage": stage_after(None, status), "eligible": result.eligible,
        "screening": screening, "screened_at": now(), "waitlisted_at": None, "enrolled_at": None,
        "exited_at": None, "exit_reason": None, "created_at": created})
    await session.execute(_insert_people(len(people)), {
        f"{column}_{index}": value for index, row in enumerate(people) for column, value in row.items()})
    await record_event(session, events.HouseholdScreened(
        family_id=household_id, site_id=data.site_id, eligible=result.eligible,
        criteria=[events.CriterionOutcome(code=c.code, met=c.met) for c in result.criteria]))
    know_members(session, str(household_id), [str(p["id"]) for p in people])
    return HouseholdRead(
        id=household_id, site_id=data.site_id, address=data.address, status=status.value,
        eligible=result.eligible, waitlist_position=None, screening=[criterion_read(c) for c in screening],
        members=[MemberRead(id=p["id"], role=p["role"], birth_year=cpr.birth_date.year,
                            cpr_masked=cpr.masked(), unemployed_since=p["unemployed_since"],
                            lives_at_address=p["lives_at_address"])
                 for p, cpr in zip(people, cprs, strict=True)])


@functools.cache
def _insert_people(count: int) -> Insert:
    """One ``INSERT`` of ``count`` persons, built once per count: a household's members in one
    statement (the driver's executemany costs more CPU than the statement itself)."""
    return _persons.insert().values([{c.name: bindparam(f"{c.name}_{index}", type_=c.type)
                                      for c in _persons.columns} for index in range(count)])


async def _registration_facts(session: AsyncSession, site_id: str, hashes: list[str]) -> a.Area | None:
    """The site's target area (None: none defined); refuses an unknown site (422) and a CPR
    number already in an active household (409)."""
    rows = (await session.execute(_REGISTRATION, {"site_id": site_id, "hashes": hashes})).all()
    if not rows:
        raise Unprocessable("Unknown site.", fields={"body.site_id": "unknown site"})
    if rows[0].clash is not None:
        raise Conflict("A person with this CPR number is already in an active household.")
    if rows[0].area is None:
        return None
    return a.Area(rows[0].area, tuple(a.StreetRange(r.street, r.from_number, r.to_number, a.Side(r.side))
                                      for r in rows if r.street is not None))


def _person_row(household_id: uuid.UUID, member: MemberIn, cpr: Cpr, vault: CprVault) -> dict[str, Any]:
    """A member's row, as ``new_person`` makes it (every column, so one statement serves all)."""
    return {"id": uuid.uuid4(), "household_id": household_id, "role": member.role,
            "birth_date": cpr.birth_date, "cpr_ciphertext": vault.encrypt(cpr),
            "cpr_hash": vault.lookup_hash(cpr),
            "cpr_is_replacement": cpr.is_replacement, "unemployed_since": member.unemployed_since,
            "lives_at_address": member.lives_at_address, "active": True, "added_at": now()}


def stored_criteria(result: d.Screening) -> list[dict[str, Any]]:
    """The screening's criteria as the household row keeps them."""
    return [{"code": c.code, "met": c.met, "explanation": c.explanation, "state": c.state}
            for c in result.criteria]


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
    clash = (await session.execute(_CLASH, {"hashes": [vault.lookup_hash(c) for c in cprs]})).first()
    if clash is not None:
        raise Conflict("A person with this CPR number is already in an active household.")


def new_person(household_id: uuid.UUID, member: MemberIn, cpr: Cpr, vault: CprVault) -> Person:
    return Person(**_person_row(household_id, member, cpr, vault))


async def active_members(session: AsyncSession, household_id: uuid.UUID) -> list[Person]:
    rows = await session.execute(select(Person).where(Person.household_id == household_id, Person.active)
                                 .order_by(Person.added_at, Person.id))
    return list(rows.scalars())


def set_status(household: Household, status: d.HouseholdStatus) -> None:
    """Every status change goes through here, so the furthest funnel stage moves with it."""
    household.status = status.value
    household.furthest_stage = stage_after(household.furthest_stage, status)


def stage_after(furthest: str | None, status: d.HouseholdStatus) -> str | None:
    """The furthest funnel stage once a household whose furthest was ``furthest`` is in ``status``."""
    reached = d.furthest_stage(d.HouseholdStatus(furthest) if furthest else None, status)
    return reached.value if reached else None


async def _screen(session: AsyncSession, household: Household, today: date) -> d.Screening:
    members = await active_members(session, household.id)
    facts = d.HouseholdFacts(household.site_id, tuple(
        d.MemberFacts(p.id, d.MemberRole(p.role), p.birth_date, p.unemployed_since, p.lives_at_address)
        for p in members), household.address)
    result = d.screen(facts, today=today, area=await load_area(session, household.site_id))
    household.eligible = result.eligible
    household.screening = stored_criteria(result)
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


async def lock_household_row(session: AsyncSession, household_id: uuid.UUID) -> Row[Any]:
    """``lock_household`` on Core for the frequent writes: the row's id, site, status and furthest
    stage, locked, without loading the household into the session."""
    household = (await session.execute(_LOCK, {"household_id": household_id})).first()
    if household is None:
        raise NotFound("No such household.")
    return household


async def change_status(session: AsyncSession, household: Row[Any], status: d.HouseholdStatus, *,
                        stamp: str | None = None) -> None:
    """``set_status`` on Core: the status, the furthest stage it reaches, and ``stamp`` (the time
    column the change sets: ``enrolled_at`` or ``waitlisted_at``) now."""
    values = {"household_id": household.id, "status": status.value,
              "furthest": stage_after(household.furthest_stage, status)}
    await session.execute(_STATUS[stamp], {**values, "at": now()} if stamp else values)


class Held(NamedTuple):
    """A person the household holds or held (``active``: still a member)."""

    id: uuid.UUID
    role: str
    birth_date: date
    active: bool


async def lock_household_with_people(session: AsyncSession,
                                     household_id: uuid.UUID) -> tuple[Row[Any], list[Held]]:
    """``lock_household_row`` and every person the household has held, in member order, in one
    statement; the caller tells the audit entry them all (``know_members``)."""
    rows = (await session.execute(_LOCK_WITH_PEOPLE, {"household_id": household_id})).all()
    if not rows:
        raise NotFound("No such household.")
    return rows[0], [Held(r.person_id, r.role, r.birth_date, r.active)
                     for r in rows if r.person_id is not None]


async def get_household_site(session: AsyncSession, household_id: uuid.UUID) -> str:
    site = (await session.execute(_SITE_OF, {"household_id": household_id})).scalar()
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
