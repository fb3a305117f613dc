"""Casework use cases. Each writes and flushes; the entrypoint commits."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import domain as d
from services.casework.models import (
    Absence,
    Escalation,
    Family,
    FamilyMember,
    Goal,
    Makkerpar,
    Measurement,
    PlanVersion,
    Staff,
    Stationing,
)
from services.casework.schemas import (
    AbsenceIn,
    EscalationIn,
    FamilyRead,
    GoalIn,
    GoalRead,
    GoalStateIn,
    OutcomesRead,
    PairRead,
    PlanRead,
    StaffIn,
    StaffRead,
)
from shared.auth import Principal
from shared.errors import NotFound, Unprocessable
from shared.events import casework as ev
from shared.outbox import record_event


def now() -> datetime:
    return datetime.now(UTC)


# --- staff and stationing -----------------------------------------------------------------

async def station_staff(session: AsyncSession, *, data: StaffIn) -> StaffRead:
    if data.ends_on is not None and data.ends_on < data.starts_on:
        raise Unprocessable("A stationing cannot end before it starts.",
                            fields={"body.ends_on": "before start"})
    staff = Staff(site_id=data.site_id, display_name=data.display_name, discipline=data.discipline.value,
                  department=data.department.value, role=data.role)
    session.add(staff)
    await session.flush()
    stationing = Stationing(staff_id=staff.id, site_id=data.site_id, department=data.department.value,
                            fte=data.fte, starts_on=data.starts_on, ends_on=data.ends_on)
    session.add(stationing)
    await session.flush()
    await record_event(session, ev.StaffStationed(
        stationing_id=stationing.id, staff_id=staff.id, site_id=staff.site_id,
        department=staff.department,  # type: ignore[arg-type]
        discipline=staff.discipline, role=data.role, fte=data.fte, starts_on=data.starts_on,
        ends_on=data.ends_on))
    return StaffRead(id=staff.id, site_id=staff.site_id, display_name=staff.display_name,
                     discipline=staff.discipline, department=staff.department, role=staff.role,
                     stationing_id=stationing.id)


async def end_stationing(session: AsyncSession, *, principal: Principal, stationing_id: uuid.UUID,
                         ends_on: date) -> dict[str, Any]:
    stationing = await session.get(Stationing, stationing_id, with_for_update=True)
    if stationing is None or not principal.can_see_site(stationing.site_id):
        raise NotFound("No such stationing.")
    if ends_on < stationing.starts_on:
        raise Unprocessable("A stationing cannot end before it starts.",
                            fields={"body.ends_on": "before start"})
    stationing.ends_on = ends_on
    await session.flush()
    await record_event(session, ev.StationingEnded(
        stationing_id=stationing.id, staff_id=stationing.staff_id, site_id=stationing.site_id,
        department=stationing.department, ends_on=ends_on))  # type: ignore[arg-type]
    return {"id": stationing.id, "ends_on": ends_on}


# --- families and makkerpar ---------------------------------------------------------------

async def family_for(session: AsyncSession, principal: Principal, family_id: uuid.UUID,
                     lock: bool = False) -> Family:
    """The family if the caller's site has it; another site's family is reported as absent."""
    family = await session.get(Family, family_id, with_for_update=lock)
    if family is None or not principal.can_see_site(family.site_id):
        raise NotFound("No such family.")
    return family


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


async def active_pair(session: AsyncSession, family_id: uuid.UUID) -> Makkerpar | None:
    return (await session.execute(select(Makkerpar).where(Makkerpar.family_id == family_id,
                                                          Makkerpar.active))).scalar()


async def _candidates(session: AsyncSession, site_id: str, today: date) -> list[d.StaffLoad]:
    stationed = (await session.execute(
        select(Staff, Stationing.fte).join(Stationing, Stationing.staff_id == Staff.id)
        .where(Staff.site_id == site_id, Staff.role == "staff", Stationing.starts_on <= today,
               (Stationing.ends_on.is_(None)) | (Stationing.ends_on >= today))  # type: ignore[union-attr]
    )).all()
    away = set((await session.execute(select(Absence.staff_id).where(
        Absence.from_date <= today, Absence.to_date >= today))).scalars())
    loads: dict[uuid.UUID, int] = defaultdict(int)
    for first, second in (await session.execute(select(Makkerpar.first_staff_id, Makkerpar.second_staff_id)
                                                .where(Makkerpar.active))).all():
        loads[first] += 1
        loads[second] += 1
    return [d.StaffLoad(staff.id, d.Discipline(staff.discipline), loads[staff.id], Decimal(fte))
            for staff, fte in stationed if staff.id not in away]


async def assign_pair(session: AsyncSession, *, family: Family, reason_code: str = "enrolled",
                      reason_text: str | None = None, keep: tuple[uuid.UUID, ...] = ()) -> Makkerpar | None:
    """Give the family its pair, or record that it waits for one (a visible state, not a crash)."""
    try:
        first, second = d.choose_pair(await _candidates(session, family.site_id, date.today()), keep=keep)
    except d.NoEligiblePair:
        family.pair_status = "pending"
        await session.flush()
        await record_event(session, ev.MakkerparPending(family_id=family.id, site_id=family.site_id,
                                                        reason_code="fewer_than_two_disciplines"))
        return None
    pair = Makkerpar(family_id=family.id, first_staff_id=first.staff_id, second_staff_id=second.staff_id,
                     reason_code=reason_code, reason_text=reason_text)
    session.add(pair)
    family.pair_status = "assigned"
    await session.flush()
    await record_event(session, ev.MakkerparAssigned(
        family_id=family.id, site_id=family.site_id, assignment_id=pair.id,
        staff_ids=[first.staff_id, second.staff_id], disciplines=[first.discipline, second.discipline],
        reason_code=reason_code))  # type: ignore[arg-type]
    return pair


async def reassign(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID, reason_code: str,
                   reason_text: str) -> FamilyRead:
    """A new pair only with a reason; the old one stays in the history."""
    family = await family_for(session, principal, family_id, lock=True)
    current = await active_pair(session, family_id)
    if current is not None:
        current.active, current.ended_at = False, now()
        await session.flush()
    await assign_pair(session, family=family, reason_code=reason_code, reason_text=reason_text)
    return await read_family(session, principal=principal, family_id=family_id)


async def read_family(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID) -> FamilyRead:
    family = await family_for(session, principal, family_id)
    pairs = (await session.execute(select(Makkerpar).where(Makkerpar.family_id == family_id)
                                   .order_by(Makkerpar.assigned_at))).scalars().all()
    reads = [PairRead(staff_ids=[p.first_staff_id, p.second_staff_id], reason_code=p.reason_code,
                      assigned_at=p.assigned_at) for p in pairs]
    active = [r for r, p in zip(reads, pairs, strict=True) if p.active]
    return FamilyRead(id=family.id, site_id=family.site_id, status=family.status,
                      pair_status=family.pair_status, pair=active[0] if active else None, pair_history=reads)


async def entry_point(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                      today: date | None = None) -> list[uuid.UUID]:
    await family_for(session, principal, family_id)
    pair = await active_pair(session, family_id)
    if pair is None:
        return []
    today = today or date.today()
    absences = (await session.execute(select(Absence).where(Absence.from_date <= today,
                                                            Absence.to_date >= today))).scalars().all()
    return d.who_to_call((pair.first_staff_id, pair.second_staff_id), away={a.staff_id for a in absences},
                         deputies={a.staff_id: a.deputy_id for a in absences})


async def record_absence(session: AsyncSession, *, principal: Principal, data: AbsenceIn) -> dict[str, Any]:
    staff, deputy = await session.get(Staff, data.staff_id), await session.get(Staff, data.deputy_id)
    if staff is None or deputy is None or not principal.can_see_site(staff.site_id):
        raise NotFound("No such staff member.")
    if data.to_date < data.from_date or deputy.site_id != staff.site_id or deputy.id == staff.id:
        raise Unprocessable("The deputy must be another colleague of the site, for a valid period.",
                            fields={"body.deputy_id": "invalid deputy or period"})
    absence = Absence(**data.model_dump())
    session.add(absence)
    await session.flush()
    return {"id": absence.id}


# --- the plan -----------------------------------------------------------------------------

async def add_goal(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                   data: GoalIn) -> PlanRead:
    family = await family_for(session, principal, family_id, lock=True)
    if data.person_id is not None and (await session.get(FamilyMember, data.person_id)) is None:
        raise Unprocessable("Not a member of the family.", fields={"body.person_id": "not a member"})
    goal = Goal(family_id=family.id, person_id=data.person_id, life_area=data.life_area,
                own_words=data.own_words, review_on=data.review_on)
    session.add(goal)
    await session.flush()
    return await _new_version(session, family, goal)


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
    return await _new_version(session, family, goal)


async def set_wishes(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                     wishes: str) -> PlanRead:
    """The family's own dreams and wishes head the plan; a change is a new version (no event)."""
    family = await family_for(session, principal, family_id, lock=True)
    family.wishes = wishes
    await session.flush()
    return await _new_version(session, family, None)


async def _new_version(session: AsyncSession, family: Family, changed: Goal | None) -> PlanRead:
    goals = (await session.execute(select(Goal).where(Goal.family_id == family.id)
                                   .order_by(Goal.id))).scalars().all()
    latest = (await session.execute(select(func.max(PlanVersion.version)).where(
        PlanVersion.family_id == family.id))).scalar() or 0
    plan = PlanRead(family_id=family.id, version=latest + 1, wishes=family.wishes, goals=[
        GoalRead.model_validate(g, from_attributes=True) for g in goals])
    session.add(PlanVersion(family_id=family.id, version=plan.version, snapshot=plan.model_dump(mode="json")))
    await session.flush()
    if changed is None:
        return plan
    await record_event(session, ev.GoalChanged(
        family_id=family.id, site_id=family.site_id, goal_id=changed.id, person_id=changed.person_id,
        life_area=changed.life_area, state=changed.state, achievement=changed.achievement,  # type: ignore[arg-type]
        plan_version=plan.version))
    return plan


async def plan_version(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                       version: int | None) -> PlanRead:
    await family_for(session, principal, family_id)
    query = select(PlanVersion).where(PlanVersion.family_id == family_id)
    query = query.where(PlanVersion.version == version) if version else query.order_by(
        PlanVersion.version.desc()).limit(1)  # type: ignore[attr-defined]
    found = (await session.execute(query)).scalar()
    if found is None:
        raise NotFound("No such plan version.")
    return PlanRead.model_validate(found.snapshot)


# --- escalation ---------------------------------------------------------------------------

async def escalate(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID,
                   data: EscalationIn) -> dict[str, Any]:
    family = await family_for(session, principal, family_id, lock=True)
    taken = (await session.execute(select(Escalation.step).where(
        Escalation.family_id == family_id, Escalation.task_ref == data.task_ref)
        .order_by(Escalation.at))).scalars().all()
    target = data.target_department.value if data.target_department else None
    d.check_escalation([d.EscalationStep(s) for s in taken], data.step, target)
    escalation = Escalation(family_id=family_id, task_ref=data.task_ref, step=data.step.value,
                            target_department=target, offer_code=data.offer_code, person_id=data.person_id,
                            priority=data.priority, reason_code=data.reason_code,
                            requested_by=data.requested_by)
    session.add(escalation)
    await session.flush()
    await record_event(session, ev.EscalationRaised(
        family_id=family.id, site_id=family.site_id, escalation_id=escalation.id, step=data.step.value,
        target_department=target, offer_code=data.offer_code, person_id=data.person_id,  # type: ignore[arg-type]
        priority=data.priority, requested_by=data.requested_by, reason_code=data.reason_code))
    return {"id": escalation.id, "task_ref": data.task_ref, "step": data.step.value,
            "target_department": target}


# --- outcome measurements -----------------------------------------------------------------

async def measure(session: AsyncSession, *, principal: Principal, family_id: uuid.UUID, kind: str,
                  person_id: uuid.UUID | None, value: dict[str, Any], event: Any) -> dict[str, Any]:
    family = await family_for(session, principal, family_id, lock=True)
    if person_id is not None:
        member = await session.get(FamilyMember, person_id)
        if member is None or member.family_id != family_id:
            raise Unprocessable("Not a member of the family.", fields={"body.person_id": "not a member"})
    row = Measurement(family_id=family_id, person_id=person_id, kind=kind, value=value)
    session.add(row)
    await session.flush()
    await record_event(session, event(family_id=family.id, site_id=family.site_id, **(
        {"person_id": person_id} if person_id else {}), **value))
    return {"id": row.id, "kind": kind}


async def outcomes(session: AsyncSession, *, site_id: str | None, period_start: date,
                   period_end: date) -> OutcomesRead:
    """The evaluation's figures, computed from the measurements each time (never stored)."""
    query = select(Measurement, Family.site_id).join(Family, Family.id == Measurement.family_id)
    if site_id:
        query = query.where(Family.site_id == site_id)
    rows = (await session.execute(query.order_by(Measurement.at))).all()
    statuses: dict[tuple[uuid.UUID, uuid.UUID], list[tuple[date, d.EmploymentStatus]]] = defaultdict(list)
    network: dict[tuple[uuid.UUID, uuid.UUID], list[tuple[str, str, int]]] = defaultdict(list)
    absences: dict[tuple[uuid.UUID, uuid.UUID], list[tuple[str, Decimal]]] = defaultdict(list)
    leisure: list[d.LeisureJob] = []
    wellbeing: dict[uuid.UUID, list[int]] = defaultdict(list)
    pass_users: set[uuid.UUID | None] = set()
    for m, _site in rows:
        key = (m.family_id, m.person_id)
        if m.kind == "employment":
            since = date.fromisoformat(str(m.value["since"]))
            statuses[key].append((since, d.EmploymentStatus(str(m.value["status"]))))
        elif m.kind == "network":
            network[key].append((str(m.value["at"]), str(m.value["occasion"]), int(m.value["answer"])))  # type: ignore[call-overload]
        elif m.kind == "school_absence":
            absences[key].append((str(m.value["term"]), Decimal(str(m.value["absence_percent"]))))
        elif m.kind == "leisure_job":
            ended = m.value.get("ended_on")
            leisure.append(d.LeisureJob(m.family_id, date.fromisoformat(str(m.value["started_on"])),
                                        date.fromisoformat(str(ended)) if ended else None))
        elif m.kind == "wellbeing":
            wellbeing[m.family_id].append(int(str(m.value["score"])))
        elif m.kind == "fritidspas" and period_start <= date.fromisoformat(str(m.value["on"])) <= period_end:
            pass_users.add(m.person_id)
    adults = [d.AdultRecord(family, tuple(statuses.get((family, person), ())), tuple(
        (occ, ans) for _, occ, ans in sorted(network.get((family, person), []),
                                             key=lambda x: (x[1] != "start", x[0]))))
              for family, person in set(statuses) | set(network)]
    children = [d.ChildRecord(family, tuple(sorted(terms, key=lambda t: _term_order(t[0]))))
                for (family, _person), terms in absences.items()]
    kids = select(FamilyMember.person_id, FamilyMember.family_id).where(FamilyMember.role == "child")
    if site_id:
        kids = kids.join(Family, Family.id == FamilyMember.family_id).where(Family.site_id == site_id)
    child_rows = (await session.execute(kids)).all()
    child_family = {person: family for person, family in child_rows}
    users = {p for p in pass_users if p in child_family}
    report = d.outcomes_report(
        adults, children, period_start=period_start, period_end=period_end, leisure_jobs=leisure,
        wellbeing=list(wellbeing.items()),
        fritidspas=(len(users), len(child_family), len({child_family[p] for p in users})))
    return OutcomesRead(site_id=site_id, period_start=period_start, period_end=period_end, **{
        name: getattr(report, name).__dict__ for name in report.__dataclass_fields__})


def _term_order(term: str) -> tuple[int, int]:
    year, season = term.split("-")
    return int(year), 0 if season == "spring" else 1
