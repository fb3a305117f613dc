"""Casework use cases for contacts, plan actions and job first (openings, matches, follow-ups)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import domain as d
from services.casework.models import (
    Action,
    Contact,
    EmployerFollowUp,
    FamilyMember,
    Goal,
    JobMatch,
    JobOpening,
    Staff,
)
from services.casework.service import family_for
from shared.auth import Principal
from shared.errors import NotFound, Unprocessable
from shared.events import casework as ev
from shared.outbox import record_event


async def _member(session: AsyncSession, family_id: uuid.UUID, person_id: uuid.UUID, field: str) -> None:
    member = await session.get(FamilyMember, person_id)
    if member is None or member.family_id != family_id:
        raise Unprocessable("Not a member of the family.", fields={field: "not a member"})


async def record_contact(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                         kind: str, at: datetime, staff_ids: list[uuid.UUID],
                         participant_ids: list[uuid.UUID], note: str) -> dict[str, Any]:
    family = await family_for(session, principal, family_id, lock=True)
    for index, person in enumerate(participant_ids):
        await _member(session, family_id, person, f"body.participant_ids.{index}")
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
    await record_event(session, ev.ContactRecorded(family_id=family_id, site_id=family.site_id,
                                                   contact_id=contact.id, kind=kind,  # type: ignore[arg-type]
                                                   at=contact.at, staff_ids=staff_ids))
    return {"id": contact.id, "kind": kind, "at": contact.at, "note": note}


async def add_action(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                     goal_id: uuid.UUID, description: str, owner: str, due_on: date | None) -> dict[str, Any]:
    await family_for(session, principal, family_id, lock=True)
    goal = await session.get(Goal, goal_id)
    if goal is None or goal.family_id != family_id:
        raise NotFound("No such goal.")
    action = Action(goal_id=goal_id, description=description, owner=owner, due_on=due_on)
    session.add(action)
    await session.flush()
    return {"id": action.id, "goal_id": goal_id, "status": action.status, "due_on": due_on}


async def set_action_status(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                            action_id: uuid.UUID, status: str) -> dict[str, Any]:
    await family_for(session, principal, family_id, lock=True)
    action = await session.get(Action, action_id)
    goal = await session.get(Goal, action.goal_id) if action else None
    if action is None or goal is None or goal.family_id != family_id:
        raise NotFound("No such action.")
    if action.status != "open":
        raise d.CaseworkConflict(f"The action is already {action.status}.")
    action.status = status
    await session.flush()
    return {"id": action.id, "status": status}


async def open_job(session: AsyncSession, *, principal: Principal, site_id: str, employer: str, role: str,
                   hours_per_week: Decimal, kind: str) -> dict[str, Any]:
    if not principal.can_see_site(site_id):
        raise Unprocessable("Openings are registered for the team's own site.",
                            fields={"body.site_id": "other site"})
    opening = JobOpening(site_id=site_id, employer=employer, role=role, hours_per_week=hours_per_week,
                         kind=kind)
    session.add(opening)
    await session.flush()
    return {"id": opening.id, "site_id": site_id, "kind": kind, "status": opening.status}


async def propose(session: AsyncSession, *, principal: Principal, opening_id: uuid.UUID,
                  family_id: uuid.UUID, person_id: uuid.UUID) -> dict[str, Any]:
    opening = await session.get(JobOpening, opening_id)
    if opening is None or not principal.can_see_site(opening.site_id):
        raise NotFound("No such job opening.")
    family = await family_for(session, principal, family_id, lock=True)
    await _member(session, family_id, person_id, "body.person_id")
    match = JobMatch(opening_id=opening_id, family_id=family_id, person_id=person_id)
    session.add(match)
    await session.flush()
    await _announce(session, family.site_id, match, opening)
    return _match_read(match)


async def decide(session: AsyncSession, *, principal: Principal, match_id: uuid.UUID, state: d.MatchState,
                 starts_on: date | None) -> dict[str, Any]:
    match = await session.get(JobMatch, match_id, with_for_update=True)
    opening = await session.get(JobOpening, match.opening_id) if match else None
    if match is None or opening is None or not principal.can_see_site(opening.site_id):
        raise NotFound("No such job match.")
    match.state = d.transition_match(d.MatchState(match.state), state).value
    if state is d.MatchState.PLACED:
        if starts_on is None:
            raise Unprocessable("A placement needs its start date.", fields={"body.starts_on": "required"})
        match.starts_on, opening.status = starts_on, "filled"
    await session.flush()
    await _announce(session, opening.site_id, match, opening)
    if state is d.MatchState.PLACED:
        assert match.starts_on is not None
        await record_event(session, ev.PlacementStarted(
            family_id=match.family_id, site_id=opening.site_id, match_id=match.id, person_id=match.person_id,
            job_kind=opening.kind, starts_on=match.starts_on, hours_per_week=opening.hours_per_week))  # type: ignore[arg-type]
    return _match_read(match)


async def follow_up(session: AsyncSession, *, principal: Principal, match_id: uuid.UUID, on: date,
                    expectations_aligned: bool, note: str) -> dict[str, Any]:
    match = await session.get(JobMatch, match_id)
    opening = await session.get(JobOpening, match.opening_id) if match else None
    if match is None or opening is None or not principal.can_see_site(opening.site_id):
        raise NotFound("No such job match.")
    if match.state != d.MatchState.PLACED:
        raise d.CaseworkConflict("Employer follow-ups are for placements.")
    row = EmployerFollowUp(match_id=match_id, on=on, expectations_aligned=expectations_aligned, note=note)
    session.add(row)
    await session.flush()
    followups = (await session.execute(select(EmployerFollowUp).where(EmployerFollowUp.match_id == match_id)
                                       .order_by(EmployerFollowUp.on))).scalars().all()
    return {"match_id": match_id, "follow_ups": [{"on": f.on, "expectations_aligned": f.expectations_aligned}
                                                 for f in followups]}


async def _announce(session: AsyncSession, site_id: str, match: JobMatch, opening: JobOpening) -> None:
    await record_event(session, ev.JobMatchDecided(
        family_id=match.family_id, site_id=site_id, match_id=match.id, opening_id=opening.id,
        person_id=match.person_id, job_kind=opening.kind, decision=match.state))  # type: ignore[arg-type]


def _match_read(match: JobMatch) -> dict[str, Any]:
    return {"id": match.id, "opening_id": match.opening_id, "person_id": match.person_id,
            "state": match.state, "starts_on": match.starts_on}
