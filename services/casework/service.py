"""Casework use cases for families, the plan, escalation and measurements.

Each writes and flushes; the entrypoint commits. Staff, stationing and the makkerpar are in
``staffing.py``, contacts and job first in ``work.py``, the outcomes report in ``outcomes.py``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import domain as d
from services.casework import measures
from services.casework.models import (
    Action,
    Escalation,
    Family,
    FamilyMember,
    Goal,
    Makkerpar,
    Measurement,
    PlanVersion,
)
from services.casework.schemas import (
    ActionRead,
    EscalationIn,
    EscalationRead,
    FamilyAnswerIn,
    FamilyRead,
    FamilySummary,
    GoalIn,
    GoalRead,
    GoalStateIn,
    MeasurementRead,
    PairRead,
    PlanRead,
    YouthEducationIn,
)
from services.casework.sharing import record_family_event
from shared.auth import Principal
from shared.consent import is_adult
from shared.errors import Forbidden, NotFound, Unprocessable
from shared.events import casework as ev
from shared.pagination import Page, paginate


def now() -> datetime:
    return datetime.now(UTC)


# --- families -----------------------------------------------------------------------------

async def family_for(session: AsyncSession, principal: Principal, family_id: uuid.UUID,
                     lock: bool = False) -> Family:
    """The family if the caller's site has it; another site's family is reported as absent."""
    family = await session.get(Family, family_id, with_for_update=lock)
    if family is None or not principal.can_see_site(family.site_id):
        raise NotFound("No such family.")
    return family


async def require_member(session: AsyncSession, family_id: uuid.UUID, person_id: uuid.UUID,
                         field: str) -> FamilyMember:
    """A person named in a body must belong to this family: someone of another family (or no one)
    is a wrong value of that field, answered alike so nothing leaks about other families."""
    member = await session.get(FamilyMember, person_id)
    if member is None or member.family_id != family_id:
        raise Unprocessable("Not a member of the family.", fields={field: "not a member"})
    return member


async def register_family(session: AsyncSession, *, family_id: uuid.UUID, site_id: str,
                          members: list[tuple[uuid.UUID, str, int]]) -> Family:
    family = await session.get(Family, family_id, with_for_update=True)
    if family is None:
        family = Family(id=family_id, site_id=site_id)
        session.add(family)
        await session.flush()
    for person_id, role, birth_year in members:
        if await session.get(FamilyMember, person_id) is None:
            session.add(FamilyMember(person_id=person_id, family_id=family_id, role=role,
                                     birth_year=birth_year))
    await session.flush()
    return family


def pair_read(pair: Makkerpar) -> PairRead:
    return PairRead(staff_ids=[pair.first_staff_id, pair.second_staff_id], reason_code=pair.reason_code,
                    assigned_at=pair.assigned_at, ended_at=pair.ended_at, ended_reason=pair.ended_reason)


async def read_family(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID) -> FamilyRead:
    family = await family_for(session, principal, family_id)
    pairs = (await session.execute(select(Makkerpar).where(Makkerpar.family_id == family_id)
                                   .order_by(Makkerpar.assigned_at))).scalars().all()
    active = [pair_read(p) for p in pairs if p.active]
    return FamilyRead(id=family.id, site_id=family.site_id, status=family.status,
                      pair_status=family.pair_status, pair=active[0] if active else None,
                      pair_history=[pair_read(p) for p in pairs])


async def list_families(session: AsyncSession, *, principal: Principal, site_id: str | None,
                        status: str | None, pair_status: str | None, limit: int,
                        cursor: str | None) -> Page[FamilySummary]:
    """The site's families (team staff: their own site only); the coordination group may filter by
    site. The page's pairs come in one query, not one per family."""
    if principal.is_team:
        if site_id not in (None, principal.site):
            raise Forbidden("Team staff see their own site's families.")
        site_id = principal.site
    query = select(Family)
    if site_id:
        query = query.where(Family.site_id == site_id)
    if status:
        query = query.where(Family.status == status)
    if pair_status:
        query = query.where(Family.pair_status == pair_status)
    page = await paginate(session, query, key=Family.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=lambda f: f, parse_key=uuid.UUID)
    pairs = {p.family_id: p for p in (await session.execute(select(Makkerpar).where(
        Makkerpar.active, Makkerpar.family_id.in_([f.id for f in page.items])))).scalars()}  # type: ignore[attr-defined]
    items = [FamilySummary(id=f.id, site_id=f.site_id, status=f.status, pair_status=f.pair_status,
                           enrolled_on=f.enrolled_on,
                           pair=pair_read(pairs[f.id]) if f.id in pairs else None) for f in page.items]
    return Page[FamilySummary](items=items, next_cursor=page.next_cursor)


# --- the plan -----------------------------------------------------------------------------

async def add_goal(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                   data: GoalIn) -> PlanRead:
    family = await family_for(session, principal, family_id, lock=True)
    if data.person_id is not None:
        await require_member(session, family.id, data.person_id, "body.person_id")
    goal = Goal(family_id=family.id, person_id=data.person_id, life_area=data.life_area,
                own_words=data.own_words, review_on=data.review_on)
    session.add(goal)
    await session.flush()
    plan = await new_plan_version(session, family)
    await _goal_changed(session, family, goal, plan.version)
    return plan


async def change_goal(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                      goal_id: uuid.UUID, data: GoalStateIn) -> PlanRead:
    family = await family_for(session, principal, family_id, lock=True)
    goal = await session.get(Goal, goal_id)
    if goal is None or goal.family_id != family.id:
        raise NotFound("No such goal.")
    if data.state.value != goal.state:
        goal.state = d.transition_goal(d.GoalState(goal.state), data.state).value
    goal.achievement = data.achievement or goal.achievement
    await session.flush()
    plan = await new_plan_version(session, family)
    await _goal_changed(session, family, goal, plan.version)
    return plan


async def set_wishes(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                     wishes: str) -> PlanRead:
    """The family's own dreams and wishes head the plan; a change is a new version. The event
    says only that they changed: the words are the family's and stay in the team."""
    family = await family_for(session, principal, family_id, lock=True)
    family.wishes = wishes
    await session.flush()
    plan = await new_plan_version(session, family)
    await record_family_event(session, ev.PlanWishesUpdated(family_id=family.id, site_id=family.site_id,
                                                     plan_version=plan.version))
    return plan


async def new_plan_version(session: AsyncSession, family: Family) -> PlanRead:
    """Store the whole plan as it is now (wishes, goals and their actions) as the next version.

    The caller holds the family's row lock, so two changes cannot take the same number.
    """
    goals = (await session.execute(select(Goal).where(Goal.family_id == family.id)
                                   .order_by(Goal.id))).scalars().all()
    actions: dict[uuid.UUID, list[ActionRead]] = defaultdict(list)
    for action in (await session.execute(select(Action).join(Goal, Goal.id == Action.goal_id)  # type: ignore[arg-type]
                                         .where(Goal.family_id == family.id)
                                         .order_by(Action.id))).scalars():
        actions[action.goal_id].append(ActionRead.model_validate(action, from_attributes=True))
    latest = (await session.execute(select(func.max(PlanVersion.version)).where(
        PlanVersion.family_id == family.id))).scalar() or 0
    plan = PlanRead(family_id=family.id, version=latest + 1, wishes=family.wishes, goals=[
        GoalRead.model_validate(g, from_attributes=True).model_copy(update={"actions": actions[g.id]})
        for g in goals])
    session.add(PlanVersion(family_id=family.id, version=plan.version, snapshot=plan.model_dump(mode="json")))
    await session.flush()
    return plan


async def _goal_changed(session: AsyncSession, family: Family, goal: Goal, version: int) -> None:
    await record_family_event(session, ev.GoalChanged(
        family_id=family.id, site_id=family.site_id, goal_id=goal.id, person_id=goal.person_id,
        life_area=goal.life_area, state=goal.state, achievement=goal.achievement,  # type: ignore[arg-type]
        plan_version=version))


async def plan_version(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                       version: int | None) -> PlanRead:
    """The plan as of ``version`` (the latest when None). Every family starts with version 0, the
    empty plan, so a new family's plan is an empty plan rather than a 404."""
    await family_for(session, principal, family_id)
    empty = PlanRead(family_id=family_id, version=0, wishes="", goals=[])
    if version == 0:
        return empty
    query = select(PlanVersion).where(PlanVersion.family_id == family_id)
    query = query.where(PlanVersion.version == version) if version else query.order_by(
        PlanVersion.version.desc()).limit(1)  # type: ignore[attr-defined]
    found = (await session.execute(query)).scalar()
    if found is None:
        if version is None:
            return empty
        raise NotFound("No such plan version.")
    return PlanRead.model_validate(found.snapshot)


# --- escalation ---------------------------------------------------------------------------

async def escalate(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                   data: EscalationIn) -> EscalationRead:
    family = await family_for(session, principal, family_id, lock=True)
    taken = (await session.execute(select(Escalation.step).where(
        Escalation.family_id == family_id, Escalation.task_ref == data.task_ref)
        .order_by(Escalation.at))).scalars().all()
    target = data.target_department.value if data.target_department else None
    d.check_escalation([d.EscalationStep(s) for s in taken], data.step, target)
    if data.person_id is not None:
        await require_member(session, family.id, data.person_id, "body.person_id")
    escalation = Escalation(family_id=family_id, task_ref=data.task_ref, step=data.step.value,
                            target_department=target, offer_code=data.offer_code, person_id=data.person_id,
                            priority=data.priority, reason_code=data.reason_code,
                            requested_by=data.requested_by)
    session.add(escalation)
    await session.flush()
    await record_family_event(session, ev.EscalationRaised(
        family_id=family.id, site_id=family.site_id, escalation_id=escalation.id, step=data.step.value,
        target_department=target, offer_code=data.offer_code, person_id=data.person_id,  # type: ignore[arg-type]
        priority=data.priority, requested_by=data.requested_by, reason_code=data.reason_code))
    return EscalationRead.model_validate(escalation, from_attributes=True)


async def list_escalations(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                           task_ref: str | None, limit: int, cursor: str | None) -> Page[EscalationRead]:
    await family_for(session, principal, family_id)
    query = select(Escalation).where(Escalation.family_id == family_id)
    if task_ref:
        query = query.where(Escalation.task_ref == task_ref)
    return await paginate(session, query, key=Escalation.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=lambda e: EscalationRead.model_validate(e, from_attributes=True),
                          parse_key=uuid.UUID)


# --- outcome measurements -----------------------------------------------------------------

async def measure(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID, kind: str,
                  person_id: uuid.UUID | None, value: dict[str, Any], event: Any) -> MeasurementRead:
    family = await family_for(session, principal, family_id, lock=True)
    if person_id is not None:
        await require_member(session, family_id, person_id, "body.person_id")
    row = Measurement(family_id=family_id, person_id=person_id, kind=kind, value=value)
    session.add(row)
    await session.flush()
    await record_family_event(session, event(family_id=family.id, site_id=family.site_id, **(
        {"person_id": person_id} if person_id else {}), **value))
    return MeasurementRead.model_validate(row, from_attributes=True)


async def record_youth_education(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                                 data: YouthEducationIn) -> MeasurementRead:
    """Record that a member aged 15–25 started a youth education (the age is by birth year)."""
    await family_for(session, principal, family_id)
    member = await require_member(session, family_id, data.person_id, "body.person_id")
    if not measures.is_young(member.birth_year, data.started_on):
        raise Unprocessable("Youth education is measured for members aged 15–25.",
                            fields={"body.person_id": "not aged 15-25 when starting"})
    return await _measure_from(session, principal, family_id, "youth_education", data,
                               ev.YouthEducationStarted)


async def record_family_answer(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                               data: FamilyAnswerIn) -> MeasurementRead:
    """Record an adult's own answer to one of the family-reported questions."""
    await family_for(session, principal, family_id)
    member = await require_member(session, family_id, data.person_id, "body.person_id")
    if not is_adult(member.role):
        raise Unprocessable("The family-reported questions are asked of adults.",
                            fields={"body.person_id": "not an adult"})
    if data.answer > measures.QUESTIONS[data.question]:
        raise Unprocessable("The answer is beyond the question's scale.",
                            fields={"body.answer": f"at most {measures.QUESTIONS[data.question]}"})
    return await _measure_from(session, principal, family_id, "family_question", data,
                               ev.FamilyAnswerRecorded, scale=measures.QUESTIONS[data.question])


async def _measure_from(session: AsyncSession, principal: Principal, family_id: uuid.UUID, kind: str,
                        data: BaseModel, event: Any, **extra: Any) -> MeasurementRead:
    values = data.model_dump(mode="json")
    person_id = uuid.UUID(values.pop("person_id"))
    return await measure(session, principal=principal, family_id=family_id, kind=kind, person_id=person_id,
                         value=values, event=lambda **fields: event(**fields, **extra))


async def list_measurements(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                            kind: str | None, limit: int, cursor: str | None) -> Page[MeasurementRead]:
    await family_for(session, principal, family_id)
    query = select(Measurement).where(Measurement.family_id == family_id)
    if kind:
        query = query.where(Measurement.kind == kind)
    return await paginate(session, query, key=Measurement.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=lambda m: MeasurementRead.model_validate(m, from_attributes=True),
                          parse_key=uuid.UUID)
