"""Casework use cases for contacts, plan actions and job first (openings, matches, follow-ups)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import domain as d
from services.casework.models import (
    Action,
    Contact,
    EmployerFollowUp,
    Family,
    Goal,
    JobMatch,
    JobOpening,
    Staff,
)
from services.casework.schemas import (
    ActionRead,
    ActionStatusRead,
    ContactRead,
    FollowUpRead,
    FollowUpsRead,
    MatchRead,
    OpeningRead,
)
from services.casework.service import family_for, new_plan_version, require_member
from services.casework.sharing import record_family_event
from shared.auth import Principal
from shared.errors import NotFound, Unprocessable
from shared.events import casework as ev
from shared.outbox import record_event
from shared.pagination import Page, paginate

# --- contacts -----------------------------------------------------------------------------


async def record_contact(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                         kind: str, at: datetime, staff_ids: list[uuid.UUID],
                         participant_ids: list[uuid.UUID], note: str) -> ContactRead:
    family = await family_for(session, principal, family_id, lock=True)
    for index, person in enumerate(participant_ids):
        await require_member(session, family_id, person, f"body.participant_ids.{index}")
    for index, staff_id in enumerate(staff_ids):
        staff = await session.get(Staff, staff_id)
        if staff is None or staff.site_id != family.site_id:
            raise Unprocessable("Not staff of the family's site.",
                                fields={f"body.staff_ids.{index}": "unknown"})
    contact = Contact(family_id=family_id, kind=kind, at=at.astimezone(UTC), note=note,
                      staff_ids=[str(s) for s in staff_ids],
                      participant_ids=[str(p) for p in participant_ids])
    session.add(contact)
    await session.flush()
    await record_family_event(session, ev.ContactRecorded(family_id=family_id, site_id=family.site_id,
                                                   contact_id=contact.id, kind=kind,  # type: ignore[arg-type]
                                                   at=contact.at, staff_ids=staff_ids))
    return ContactRead.model_validate(contact, from_attributes=True)


async def list_contacts(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID, limit: int,
                        cursor: str | None) -> Page[ContactRead]:
    """The family's contacts, notes included: the list is the team's own (the note never leaves it)."""
    await family_for(session, principal, family_id)
    return await paginate(session, select(Contact).where(Contact.family_id == family_id),
                          key=Contact.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=lambda c: ContactRead.model_validate(c, from_attributes=True),
                          parse_key=uuid.UUID)


# --- plan actions -------------------------------------------------------------------------

async def add_action(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                     goal_id: uuid.UUID, description: str, owner: str, due_on: date | None) -> ActionRead:
    """An action is part of the plan: it makes a new plan version and is announced (without its
    description, which is the team's and the family's own text)."""
    family = await family_for(session, principal, family_id, lock=True)
    goal = await session.get(Goal, goal_id)
    if goal is None or goal.family_id != family_id:
        raise NotFound("No such goal.")
    action = Action(goal_id=goal_id, description=description, owner=owner, due_on=due_on)
    session.add(action)
    await session.flush()
    plan = await new_plan_version(session, family)
    await record_family_event(session, ev.PlanActionAdded(
        family_id=family.id, site_id=family.site_id, action_id=action.id, goal_id=goal.id,
        life_area=goal.life_area, due_on=due_on, plan_version=plan.version))  # type: ignore[arg-type]
    return ActionRead.model_validate(action, from_attributes=True)


async def set_action_status(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                            action_id: uuid.UUID, status: str) -> ActionStatusRead:
    family = await family_for(session, principal, family_id, lock=True)
    action = await session.get(Action, action_id)
    goal = await session.get(Goal, action.goal_id) if action else None
    if action is None or goal is None or goal.family_id != family_id:
        raise NotFound("No such action.")
    if action.status != "open":
        raise d.CaseworkConflict(f"The action is already {action.status}.")
    action.status = status
    await session.flush()
    plan = await new_plan_version(session, family)
    await record_family_event(session, ev.PlanActionStatusChanged(
        family_id=family.id, site_id=family.site_id, action_id=action.id, goal_id=goal.id,
        life_area=goal.life_area, status=status, plan_version=plan.version))  # type: ignore[arg-type]
    return ActionStatusRead(id=action.id, status=status)


# --- job first ----------------------------------------------------------------------------

async def open_job(session: AsyncSession, *, principal: Principal, site_id: str, employer: str, role: str,
                   hours_per_week: Decimal, kind: str) -> OpeningRead:
    if not principal.can_see_site(site_id):
        raise Unprocessable("Openings are registered for the team's own site.",
                            fields={"body.site_id": "other site"})
    opening = JobOpening(site_id=site_id, employer=employer, role=role, hours_per_week=hours_per_week,
                         kind=kind)
    session.add(opening)
    await session.flush()
    await record_event(session, ev.JobOpeningRegistered(
        opening_id=opening.id, site_id=site_id, kind=kind, hours_per_week=hours_per_week))  # type: ignore[arg-type]
    return OpeningRead.model_validate(opening, from_attributes=True)


async def list_openings(session: AsyncSession, *, principal: Principal, status: str | None,
                        kind: str | None, limit: int, cursor: str | None) -> Page[OpeningRead]:
    """The team's own site's openings (employers and roles, no personal data)."""
    query = select(JobOpening).where(JobOpening.site_id == principal.site)
    if status:
        query = query.where(JobOpening.status == status)
    if kind:
        query = query.where(JobOpening.kind == kind)
    return await paginate(session, query, key=JobOpening.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=lambda o: OpeningRead.model_validate(o, from_attributes=True),
                          parse_key=uuid.UUID)


async def _opening_for(session: AsyncSession, principal: Principal, opening_id: uuid.UUID) -> JobOpening:
    opening = await session.get(JobOpening, opening_id)
    if opening is None or not principal.can_see_site(opening.site_id):
        raise NotFound("No such job opening.")
    return opening


async def _match_for(session: AsyncSession, principal: Principal,
                     match_id: uuid.UUID) -> tuple[JobMatch, JobOpening, Family]:
    """The match, its opening and its family (row locked, as events for it follow)."""
    match = await session.get(JobMatch, match_id, with_for_update=True)
    opening = await session.get(JobOpening, match.opening_id) if match else None
    if match is None or opening is None or not principal.can_see_site(opening.site_id):
        raise NotFound("No such job match.")
    family = await session.get(Family, match.family_id, with_for_update=True)
    assert family is not None  # a match's family is a foreign key
    return match, opening, family


async def propose(session: AsyncSession, *, principal: Principal, opening_id: uuid.UUID,
                  family_id: uuid.UUID, person_id: uuid.UUID) -> MatchRead:
    opening = await _opening_for(session, principal, opening_id)
    family = await family_for(session, principal, family_id, lock=True)
    await require_member(session, family_id, person_id, "body.person_id")
    match = JobMatch(opening_id=opening_id, family_id=family_id, person_id=person_id)
    session.add(match)
    await session.flush()
    await _announce(session, family.site_id, match, opening)
    return await _match_read(session, match)


async def decide(session: AsyncSession, *, principal: Principal, match_id: uuid.UUID, state: d.MatchState,
                 starts_on: date | None) -> MatchRead:
    match, opening, _family = await _match_for(session, principal, match_id)
    match.state = d.transition_match(d.MatchState(match.state), state).value
    if state is d.MatchState.PLACED:
        if starts_on is None:
            raise Unprocessable("A placement needs its start date.", fields={"body.starts_on": "required"})
        match.starts_on, opening.status = starts_on, "filled"
    await session.flush()
    await _announce(session, opening.site_id, match, opening)
    if state is d.MatchState.PLACED:
        assert match.starts_on is not None
        await record_family_event(session, ev.PlacementStarted(
            family_id=match.family_id, site_id=opening.site_id, match_id=match.id, person_id=match.person_id,
            job_kind=opening.kind, starts_on=match.starts_on, hours_per_week=opening.hours_per_week))  # type: ignore[arg-type]
    return await _match_read(session, match)


async def follow_up(session: AsyncSession, *, principal: Principal, match_id: uuid.UUID, on: date,
                    expectations_aligned: bool, note: str) -> FollowUpsRead:
    match, opening, family = await _match_for(session, principal, match_id)
    if match.state != d.MatchState.PLACED:
        raise d.CaseworkConflict("Employer follow-ups are for placements.")
    row = EmployerFollowUp(match_id=match_id, on=on, expectations_aligned=expectations_aligned, note=note)
    session.add(row)
    await session.flush()
    await record_family_event(session, ev.EmployerFollowUpRecorded(
        family_id=family.id, site_id=opening.site_id, match_id=match.id, person_id=match.person_id, on=on,
        expectations_aligned=expectations_aligned))
    return FollowUpsRead(match_id=match_id, follow_ups=(await _follow_ups(session, [match_id]))[match_id])


async def list_matches(session: AsyncSession, *, principal: Principal, opening_id: uuid.UUID | None,
                       family_id: uuid.UUID | None, limit: int, cursor: str | None) -> Page[MatchRead]:
    """The team's site's matches, by opening or by family; an opening or family of another site is
    absent (404). The page's follow-ups come in one query."""
    query = select(JobMatch).join(JobOpening, JobOpening.id == JobMatch.opening_id).where(  # type: ignore[arg-type]
        JobOpening.site_id == principal.site)
    if opening_id is not None:
        await _opening_for(session, principal, opening_id)
        query = query.where(JobMatch.opening_id == opening_id)
    if family_id is not None:
        await family_for(session, principal, family_id)
        query = query.where(JobMatch.family_id == family_id)
    page = await paginate(session, query, key=JobMatch.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=lambda m: m, parse_key=uuid.UUID)
    follow_ups = await _follow_ups(session, [m.id for m in page.items])
    return Page[MatchRead](items=[_read(m, follow_ups[m.id]) for m in page.items],
                           next_cursor=page.next_cursor)


async def _follow_ups(session: AsyncSession,
                      match_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[FollowUpRead]]:
    found: dict[uuid.UUID, list[FollowUpRead]] = defaultdict(list)
    for row in (await session.execute(select(EmployerFollowUp).where(
            EmployerFollowUp.match_id.in_(match_ids)).order_by(EmployerFollowUp.on))).scalars():  # type: ignore[attr-defined]
        found[row.match_id].append(FollowUpRead.model_validate(row, from_attributes=True))
    return found


async def _announce(session: AsyncSession, site_id: str, match: JobMatch, opening: JobOpening) -> None:
    await record_family_event(session, ev.JobMatchDecided(
        family_id=match.family_id, site_id=site_id, match_id=match.id, opening_id=opening.id,
        person_id=match.person_id, job_kind=opening.kind, decision=match.state))  # type: ignore[arg-type]


async def _match_read(session: AsyncSession, match: JobMatch) -> MatchRead:
    return _read(match, (await _follow_ups(session, [match.id]))[match.id])


def _read(match: JobMatch, follow_ups: list[FollowUpRead]) -> MatchRead:
    return MatchRead(id=match.id, opening_id=match.opening_id, family_id=match.family_id,
                     person_id=match.person_id, state=match.state, starts_on=match.starts_on,
                     follow_ups=follow_ups)
