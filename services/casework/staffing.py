"""Casework use cases for staff, their stationings, absences and the makkerpar.

A family's pair is meant to last, so staffing changes are made to keep it: an FTE change is a new
stationing of the same person (same id, same families); a departure hands the person's families
over to a new member beside the one who stays; newly stationed staff give the site's waiting
families their pair. Each writes and flushes; the entrypoint (route or consumer) commits.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import domain as d
from services.casework.models import Absence, Family, Makkerpar, Staff, Stationing
from services.casework.schemas import (
    AbsenceIn,
    AbsenceRead,
    FamilyRead,
    StaffDetail,
    StaffIn,
    StaffRead,
    StationingEndRead,
    StationingIn,
    StationingRead,
)
from services.casework.service import family_for, now, read_family
from services.casework.sharing import record_family_event, record_family_event_for
from shared.auth import Principal
from shared.db import utcnow
from shared.errors import Forbidden, NotFound, Unprocessable
from shared.events import casework as ev
from shared.outbox import record_event
from shared.pagination import Page, paginate

#: Reasons a pair may be given after a pending wait (the reason the previous pair ended).
REASSIGN_REASONS = {"staff_left", "family_request", "workload", "other"}


# --- staff and stationing -----------------------------------------------------------------

def _check_dates(starts_on: date, ends_on: date | None) -> None:
    if ends_on is not None and ends_on < starts_on:
        raise Unprocessable("A stationing cannot end before it starts.",
                            fields={"body.ends_on": "before start"})


def _period(row: Stationing) -> d.StationingPeriod:
    return d.StationingPeriod(row.id, row.starts_on, row.ends_on)


async def station_staff(session: AsyncSession, *, data: StaffIn) -> StaffRead:
    """A new person in the site's team, with a first stationing (someone already in the team gets
    a new stationing instead, so they keep their id and their families)."""
    _check_dates(data.starts_on, data.ends_on)
    staff = Staff(site_id=data.site_id, display_name=data.display_name, discipline=data.discipline.value,
                  department=data.department.value, role=data.role)
    session.add(staff)
    await session.flush()
    stationing = Stationing(staff_id=staff.id, site_id=data.site_id, department=data.department.value,
                            fte=data.fte, starts_on=data.starts_on, ends_on=data.ends_on)
    session.add(stationing)
    await session.flush()
    await _announce_stationed(session, staff, stationing)
    await retry_pending(session, site_id=staff.site_id)
    return StaffRead(id=staff.id, site_id=staff.site_id, display_name=staff.display_name,
                     discipline=staff.discipline, department=staff.department, role=staff.role,
                     stationing_id=stationing.id)


async def add_stationing(session: AsyncSession, *, principal: Principal, staff_id: uuid.UUID,
                         data: StationingIn) -> StationingRead:
    """A new stationing of someone in the team: an FTE change ends the running one the day before
    (both announced, so finance counts each FTE-day once), or a return after a departure."""
    staff = await _staff_for(session, principal, staff_id)
    _check_dates(data.starts_on, data.ends_on)
    rows = await _stationings(session, [staff.id])
    cut = d.stationing_to_cut([_period(r) for r in rows], data.starts_on)
    if cut is not None:
        running = next(r for r in rows if r.id == cut.id)
        running.ends_on = data.starts_on - timedelta(days=1)
        await session.flush()
        await _announce_ended(session, running)
    stationing = Stationing(staff_id=staff.id, site_id=staff.site_id, department=staff.department,
                            fte=data.fte, starts_on=data.starts_on, ends_on=data.ends_on)
    session.add(stationing)
    staff.leaves_on = None
    await session.flush()
    await _announce_stationed(session, staff, stationing)
    await retry_pending(session, site_id=staff.site_id)
    return StationingRead.model_validate(stationing, from_attributes=True)


async def end_stationing(session: AsyncSession, *, principal: Principal, stationing_id: uuid.UUID,
                         ends_on: date) -> StationingEndRead:
    """End a stationing. If none of the person's stationings carries on, they leave the team: they
    get no new families, and their families are handed over now, while the pair can still say
    goodbye, rather than left with someone who is gone."""
    stationing = await session.get(Stationing, stationing_id, with_for_update=True)
    if stationing is None or not principal.can_see_site(stationing.site_id):
        raise NotFound("No such stationing.")
    _check_dates(stationing.starts_on, ends_on)
    staff = await session.get(Staff, stationing.staff_id, with_for_update=True)
    assert staff is not None  # a stationing's staff is a foreign key
    rows = await _stationings(session, [staff.id])
    d.check_end([_period(r) for r in rows], _period(stationing), ends_on)
    stationing.ends_on = ends_on
    leaving = d.leaves_site([_period(r) for r in rows], ends_on)
    staff.leaves_on = ends_on if leaving else None
    await session.flush()
    await _announce_ended(session, stationing)
    if leaving:
        await hand_over(session, staff=staff, ends_on=ends_on)
    return StationingEndRead(id=stationing.id, ends_on=ends_on)


async def list_staff(session: AsyncSession, *, principal: Principal, site_id: str | None, limit: int,
                     cursor: str | None) -> Page[StaffDetail]:
    """The team (a team's own site only), each person with all their stationings, in two queries."""
    if principal.is_team:
        if site_id not in (None, principal.site):
            raise Forbidden("Team staff see their own site's team.")
        site_id = principal.site
    query = select(Staff).where(Staff.site_id == site_id) if site_id else select(Staff)
    page = await paginate(session, query, key=Staff.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=lambda s: s, parse_key=uuid.UUID)
    stationings: dict[uuid.UUID, list[StationingRead]] = defaultdict(list)
    for row in await _stationings(session, [s.id for s in page.items]):
        stationings[row.staff_id].append(StationingRead.model_validate(row, from_attributes=True))
    items = [StaffDetail(id=s.id, site_id=s.site_id, display_name=s.display_name, discipline=s.discipline,
                         department=s.department, role=s.role, leaves_on=s.leaves_on,
                         stationings=stationings[s.id]) for s in page.items]
    return Page[StaffDetail](items=items, next_cursor=page.next_cursor)


async def _staff_for(session: AsyncSession, principal: Principal, staff_id: uuid.UUID) -> Staff:
    staff = await session.get(Staff, staff_id, with_for_update=True)
    if staff is None or not principal.can_see_site(staff.site_id):
        raise NotFound("No such staff member.")
    return staff


async def _stationings(session: AsyncSession, staff_ids: Collection[uuid.UUID]) -> list[Stationing]:
    return list((await session.execute(select(Stationing).where(
        Stationing.staff_id.in_(staff_ids)).order_by(Stationing.starts_on))).scalars())  # type: ignore[attr-defined]


async def _announce_stationed(session: AsyncSession, staff: Staff, stationing: Stationing) -> None:
    await record_event(session, ev.StaffStationed(
        stationing_id=stationing.id, staff_id=staff.id, site_id=stationing.site_id,
        department=stationing.department,  # type: ignore[arg-type]
        discipline=staff.discipline, role=staff.role, fte=stationing.fte,  # type: ignore[arg-type]
        starts_on=stationing.starts_on, ends_on=stationing.ends_on))


async def _announce_ended(session: AsyncSession, stationing: Stationing) -> None:
    assert stationing.ends_on is not None
    await record_event(session, ev.StationingEnded(
        stationing_id=stationing.id, staff_id=stationing.staff_id, site_id=stationing.site_id,
        department=stationing.department, ends_on=stationing.ends_on))  # type: ignore[arg-type]


def _stationed_on(day: date) -> ColumnElement[bool]:
    """The condition of a stationing running on ``day`` (both ends inclusive)."""
    return (Stationing.starts_on <= day) & (  # type: ignore[operator]
        Stationing.ends_on.is_(None) | (Stationing.ends_on >= day))  # type: ignore[union-attr,operator]


async def _present(session: AsyncSession, staff_ids: Iterable[uuid.UUID], day: date) -> set[uuid.UUID]:
    """Who of these is stationed on the day (someone who has left, or not yet started, is not)."""
    return set((await session.execute(select(Stationing.staff_id).where(
        Stationing.staff_id.in_(list(staff_ids)), _stationed_on(day)))).scalars())  # type: ignore[attr-defined]


# --- the makkerpar ------------------------------------------------------------------------

async def active_pair(session: AsyncSession, family_id: uuid.UUID) -> Makkerpar | None:
    return (await session.execute(select(Makkerpar).where(Makkerpar.family_id == family_id,
                                                          Makkerpar.active))).scalar()


_STAFF = Staff.__table__  # type: ignore[attr-defined]
_STATIONINGS = Stationing.__table__  # type: ignore[attr-defined]
_ABSENCES = Absence.__table__  # type: ignore[attr-defined]
_PAIRS = Makkerpar.__table__  # type: ignore[attr-defined]


def _families_of(member: Any) -> Any:
    """How many active pairs have the staff member in this place (first or second)."""
    return select(func.count()).where(_PAIRS.c.active, member == _STAFF.c.id).scalar_subquery()


#: The site's staff stationed today, each with whether they are away today and how many families
#: they have: one statement (it was three: the stationed, then the away and the loads among them).
_CANDIDATES = (
    select(_STAFF.c.id, _STAFF.c.discipline, _STATIONINGS.c.fte,
           exists().where(_ABSENCES.c.staff_id == _STAFF.c.id, _ABSENCES.c.from_date <= bindparam("today"),
                          _ABSENCES.c.to_date >= bindparam("today")).label("away"),
           (_families_of(_PAIRS.c.first_staff_id) + _families_of(_PAIRS.c.second_staff_id)).label("families"))
    .join_from(_STAFF, _STATIONINGS, _STATIONINGS.c.staff_id == _STAFF.c.id)
    .where(_STAFF.c.site_id == bindparam("site_id"), _STAFF.c.role == "staff", _STAFF.c.leaves_on.is_(None),
           _STATIONINGS.c.starts_on <= bindparam("today"),
           _STATIONINGS.c.ends_on.is_(None) | (_STATIONINGS.c.ends_on >= bindparam("today"))))


async def _candidates(session: AsyncSession, site_id: str, today: date,
                      keep: Collection[uuid.UUID] = ()) -> list[d.StaffLoad]:
    """Staff of the site who can take a family today: stationed, not leaving, not away — except
    that a member kept for continuity stays a candidate while away (a deputy covers)."""
    rows = (await session.execute(_CANDIDATES, {"site_id": site_id, "today": today})).all()
    return [d.StaffLoad(row.id, d.Discipline(row.discipline), int(row.families), Decimal(row.fte))
            for row in rows if not row.away or row.id in keep]


async def choose_pair(session: AsyncSession, site_id: str,
                      keep: tuple[uuid.UUID, ...] = ()) -> tuple[d.StaffLoad, d.StaffLoad] | None:
    """The pair the site can give a family today, or None while it lacks two disciplines."""
    try:
        return d.choose_pair(await _candidates(session, site_id, date.today(), keep), keep=keep)
    except d.NoEligiblePair:
        return None


@dataclass(frozen=True)
class FamilyRef:
    """What a pair's row and events need of the family (the ORM object, or a row read by Core)."""

    id: uuid.UUID
    site_id: str
    shared_with: list[str]


#: One statement for every pair, values bound per call (as the outbox's insert).
_INSERT_PAIR = _PAIRS.insert()


async def record_pair(session: AsyncSession, family: FamilyRef, pair: tuple[d.StaffLoad, d.StaffLoad], *,
                      reason_code: str, reason_text: str | None = None) -> uuid.UUID:
    """Write the chosen pair and announce it; the caller sets the family's ``pair_status``."""
    first, second = pair
    pair_id = uuid.uuid4()
    await session.execute(_INSERT_PAIR, {
        "id": pair_id, "family_id": family.id, "first_staff_id": first.staff_id,
        "second_staff_id": second.staff_id, "active": True, "reason_code": reason_code,
        "reason_text": reason_text, "assigned_at": utcnow(), "ended_at": None, "ended_reason": None})
    await record_family_event_for(session, ev.MakkerparAssigned(
        family_id=family.id, site_id=family.site_id, assignment_id=pair_id,
        staff_ids=[first.staff_id, second.staff_id], disciplines=[first.discipline, second.discipline],
        reason_code=reason_code), family.shared_with)
    return pair_id


async def record_pending(session: AsyncSession, family: FamilyRef) -> None:
    """Announce that the family waits for a pair (a visible state, not a crash)."""
    await record_family_event_for(session, ev.MakkerparPending(
        family_id=family.id, site_id=family.site_id, reason_code="fewer_than_two_disciplines"),
        family.shared_with)


async def assign_pair(session: AsyncSession, *, family: Family, reason_code: str = "enrolled",
                      reason_text: str | None = None, keep: tuple[uuid.UUID, ...] = (),
                      announce_pending: bool = True) -> bool:
    """Give the family its pair, or record that it waits for one; True if it got one.

    ``announce_pending=False`` is for retries of a family already announced as waiting.
    """
    ref = FamilyRef(family.id, family.site_id, list(family.shared_with))
    pair = await choose_pair(session, family.site_id, keep)
    family.pair_status = "pending" if pair is None else "assigned"
    await session.flush()
    if pair is None:
        if announce_pending:
            await record_pending(session, ref)
        return False
    await record_pair(session, ref, pair, reason_code=reason_code, reason_text=reason_text)
    return True


async def end_pair(session: AsyncSession, *, family: Family, pair: Makkerpar, reason_code: str) -> None:
    """The pair stops working with the family; it stays in the history with why it ended."""
    pair.active, pair.ended_at, pair.ended_reason = False, now(), reason_code
    await session.flush()
    await record_family_event(session, ev.MakkerparEnded(
        family_id=family.id, site_id=family.site_id, assignment_id=pair.id,
        staff_ids=[pair.first_staff_id, pair.second_staff_id], reason_code=reason_code))  # type: ignore[arg-type]


async def reassign(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID, reason_code: str,
                   reason_text: str) -> FamilyRead:
    """A new pair only with a reason; the old one stays in the history."""
    family = await family_for(session, principal, family_id, lock=True)
    current = await active_pair(session, family_id)
    if current is not None:
        await end_pair(session, family=family, pair=current, reason_code=reason_code)
    await assign_pair(session, family=family, reason_code=reason_code, reason_text=reason_text)
    return await read_family(session, principal=principal, family_id=family_id)


async def hand_over(session: AsyncSession, *, staff: Staff, ends_on: date) -> None:
    """Each family whose pair includes someone leaving gets a new pair: the member who stays is
    kept (continuity), the other is chosen as for any pair; if none can be, the family waits."""
    family_ids = (await session.execute(select(Makkerpar.family_id).where(
        Makkerpar.active, or_(Makkerpar.first_staff_id == staff.id, Makkerpar.second_staff_id == staff.id))
        .order_by(Makkerpar.family_id))).scalars().all()
    for family_id in family_ids:
        family = await session.get(Family, family_id, with_for_update=True)
        pair = await active_pair(session, family_id)
        if family is None or pair is None or staff.id not in (pair.first_staff_id, pair.second_staff_id):
            continue
        stays = pair.second_staff_id if pair.first_staff_id == staff.id else pair.first_staff_id
        await end_pair(session, family=family, pair=pair, reason_code="staff_left")
        await assign_pair(session, family=family, reason_code="staff_left", keep=(stays,),
                          reason_text=f"A member of the pair leaves the team on {ends_on}.")


async def retry_pending(session: AsyncSession, *, site_id: str) -> None:
    """Families of the site waiting for a pair get one now if they can, keeping whoever of their
    last pair is still there; the reason is why that pair ended (or the enrolment)."""
    waiting = (await session.execute(select(Family).where(
        Family.site_id == site_id, Family.pair_status == "pending", Family.status == "active")
        .order_by(Family.id).with_for_update())).scalars().all()
    if not waiting:
        return
    last: dict[uuid.UUID, Makkerpar] = {}
    for pair in (await session.execute(select(Makkerpar).where(
            Makkerpar.family_id.in_([f.id for f in waiting])).order_by(Makkerpar.assigned_at))).scalars():  # type: ignore[attr-defined]
        last[pair.family_id] = pair
    for family in waiting:
        previous = last.get(family.id)
        keep = (previous.first_staff_id, previous.second_staff_id) if previous else ()
        ended = previous.ended_reason if previous else None
        reason = ended if ended in REASSIGN_REASONS else "enrolled"
        if not await assign_pair(session, family=family, reason_code=reason or "enrolled", keep=keep,
                                 announce_pending=False):
            return  # the site still lacks two disciplines: the other families would fail alike


async def entry_point(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                      today: date | None = None) -> list[uuid.UUID]:
    await family_for(session, principal, family_id)
    pair = await active_pair(session, family_id)
    if pair is None:
        return []
    today = today or date.today()
    members = (pair.first_staff_id, pair.second_staff_id)
    absences = (await session.execute(select(Absence).where(
        Absence.staff_id.in_(members), Absence.from_date <= today,  # type: ignore[attr-defined]
        Absence.to_date >= today))).scalars().all()
    deputies = {a.staff_id: a.deputy_id for a in absences}
    present = await _present(session, {*members, *deputies.values()}, today)
    return d.who_to_call(members, away=set(deputies), deputies=deputies, stationed=present)


# --- absences -----------------------------------------------------------------------------

async def record_absence(session: AsyncSession, *, principal: Principal, data: AbsenceIn) -> AbsenceRead:
    """A staff member is away and names a colleague of the site as deputy (announced, without any
    reason for the absence)."""
    staff, deputy = await session.get(Staff, data.staff_id), await session.get(Staff, data.deputy_id)
    if staff is None or deputy is None or not principal.can_see_site(staff.site_id):
        raise NotFound("No such staff member.")
    if data.to_date < data.from_date or deputy.site_id != staff.site_id or deputy.id == staff.id:
        raise Unprocessable("The deputy must be another colleague of the site, for a valid period.",
                            fields={"body.deputy_id": "invalid deputy or period"})
    absence = Absence(**data.model_dump())
    session.add(absence)
    await session.flush()
    await record_event(session, ev.StaffAbsenceRecorded(
        absence_id=absence.id, site_id=staff.site_id, staff_id=staff.id, deputy_id=deputy.id,
        from_date=absence.from_date, to_date=absence.to_date))
    return AbsenceRead.model_validate(absence, from_attributes=True)
