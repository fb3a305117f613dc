"""HTTP routes of the casework service: team staff of a site work with their site's families."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from services.casework import service, work
from services.casework.domain import MatchState
from services.casework.schemas import (
    AbsenceIn,
    AbsenceMeasureIn,
    ActionIn,
    ActionStatusIn,
    CandidateIn,
    ContactIn,
    DecisionIn,
    EmploymentIn,
    EndStationingIn,
    EntryPointRead,
    EscalationIn,
    EscalationRead,
    FamilyRead,
    FollowUpIn,
    FritidspasIn,
    GoalIn,
    GoalStateIn,
    LeisureJobIn,
    NetworkIn,
    OpeningIn,
    OutcomesRead,
    PlanRead,
    ReassignIn,
    StaffIn,
    StaffRead,
    WellbeingIn,
    WishesIn,
)
from shared.audit import audited_read
from shared.auth import Principal, Role, require_roles
from shared.db import SessionDep
from shared.errors import Forbidden
from shared.events import casework as ev
from shared.idempotency import IdempotencyDep

router = APIRouter(prefix="/v1", tags=["casework"])
Team = Annotated[Principal, Depends(require_roles(Role.TEAM_STAFF, Role.TEAM_LEADER))]
Leaders = Annotated[Principal, Depends(require_roles(Role.TEAM_LEADER, Role.ADMIN))]
Report = Annotated[Principal, Depends(require_roles(Role.TEAM_LEADER, Role.COORDINATION))]


@router.post("/staff", response_model=StaffRead, status_code=201, summary="Station a staff member (leader)")
async def station_staff(body: StaffIn, idem: IdempotencyDep, principal: Leaders):  # type: ignore[no-untyped-def]
    if not principal.can_see_site(body.site_id):
        raise Forbidden("A leader stations staff in their own site.")
    return await idem.run(lambda: service.station_staff(idem.session, data=body))


@router.post("/stationings/{stationing_id}/end", summary="End a stationing on a date (leader)")
async def end_stationing(stationing_id: UUID, body: EndStationingIn, idem: IdempotencyDep,
                         principal: Leaders):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: service.end_stationing(idem.session, principal=principal,
                                                         stationing_id=stationing_id, ends_on=body.ends_on),
                          status_code=200)


@router.get("/families/{family_id}", response_model=FamilyRead)
async def read_family(family_id: UUID, request: Request, session: SessionDep, principal: Team) -> FamilyRead:
    async with audited_read(session, principal, subject_kind="family", subject_id=family_id,
                            endpoint=f"GET {request.url.path}", purpose="casework"):
        return await service.read_family(session, principal=principal, family_id=family_id)


@router.get("/families/{family_id}/entry-point", response_model=EntryPointRead,
            summary="Who the family calls today: its pair, or the deputy of one who is away")
async def entry_point(family_id: UUID, session: SessionDep, principal: Team) -> EntryPointRead:
    family = await service.read_family(session, principal=principal, family_id=family_id)
    call = await service.entry_point(session, principal=principal, family_id=family_id)
    return EntryPointRead(family_id=family_id, call_today=call, pair_status=family.pair_status)


@router.post("/families/{family_id}/makkerpar/reassign", response_model=FamilyRead,
             summary="Give the family a new pair; only with a reason, kept in the history")
async def reassign(family_id: UUID, body: ReassignIn, idem: IdempotencyDep, principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: service.reassign(
        idem.session, principal=principal, family_id=family_id, reason_code=body.reason_code,
        reason_text=body.reason_text), status_code=200)


@router.post("/absences", status_code=201, summary="A staff member is away; a named deputy stands in")
async def record_absence(body: AbsenceIn, idem: IdempotencyDep, principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: service.record_absence(idem.session, principal=principal, data=body))


@router.post("/families/{family_id}/goals", response_model=PlanRead, status_code=201)
async def add_goal(family_id: UUID, body: GoalIn, idem: IdempotencyDep, principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: service.add_goal(idem.session, principal=principal, family_id=family_id,
                                                   data=body))


@router.post("/families/{family_id}/goals/{goal_id}/state", response_model=PlanRead)
async def change_goal(family_id: UUID, goal_id: UUID, body: GoalStateIn, idem: IdempotencyDep,
                      principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: service.change_goal(idem.session, principal=principal, family_id=family_id,
                                                      goal_id=goal_id, data=body), status_code=200)


@router.put("/families/{family_id}/plan/wishes", response_model=PlanRead,
            summary="The family's dreams and wishes in its own words (stays in the team)")
async def set_wishes(family_id: UUID, body: WishesIn, session: SessionDep, principal: Team) -> PlanRead:
    plan = await service.set_wishes(session, principal=principal, family_id=family_id, wishes=body.wishes)
    await session.commit()
    return plan


@router.get("/families/{family_id}/plan", response_model=PlanRead,
            summary="The plan now, or an earlier version")
async def read_plan(family_id: UUID, request: Request, session: SessionDep, principal: Team,
                    version: Annotated[int | None, Query(ge=1)] = None) -> PlanRead:
    async with audited_read(session, principal, subject_kind="family", subject_id=family_id,
                            endpoint=f"GET {request.url.path}", purpose="family plan"):
        return await service.plan_version(session, principal=principal, family_id=family_id,
                                          version=version)


@router.post("/families/{family_id}/escalations", response_model=EscalationRead, status_code=201,
             summary="Climb the ladder: sparring, a colleague joins, a faglig ven (a referral)")
async def escalate(family_id: UUID, body: EscalationIn, idem: IdempotencyDep, principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: service.escalate(idem.session, principal=principal, family_id=family_id,
                                                   data=body))


def _measurement(kind: str, event: Any, person: bool = True):  # type: ignore[no-untyped-def]
    async def record(family_id: UUID, idem: IdempotencyDep, principal: Team, body: Any) -> Any:
        values = body.model_dump(mode="json")
        person_id = values.pop("person_id", None)
        return await idem.run(lambda: service.measure(
            idem.session, principal=principal, family_id=family_id, kind=kind,
            person_id=UUID(person_id) if person_id else None, value=values, event=event))
    return record


for _path, _kind, _model, _event in (
        ("employment", "employment", EmploymentIn, ev.EmploymentStatusRecorded),
        ("school-absence", "school_absence", AbsenceMeasureIn, ev.SchoolAbsenceRecorded),
        ("network", "network", NetworkIn, ev.NetworkAnswerRecorded),
        ("wellbeing", "wellbeing", WellbeingIn, ev.WellbeingAssessed),
        ("leisure-job", "leisure_job", LeisureJobIn, ev.LeisureJobRecorded),
        ("fritidspas", "fritidspas", FritidspasIn, ev.FritidspasUsed)):
    _handler = _measurement(_kind, _event)
    _handler.__annotations__["body"] = _model
    router.add_api_route(f"/families/{{family_id}}/measurements/{_path}", _handler, methods=["POST"],
                         status_code=201, summary=f"Record a {_path.replace('-', ' ')} measurement",
                         name=f"measure_{_kind}")


@router.post("/families/{family_id}/contacts", status_code=201,
             summary="A home visit, drop-in, call or joint activity (the note stays in the team)")
async def record_contact(family_id: UUID, body: ContactIn, idem: IdempotencyDep, principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: work.record_contact(
        idem.session, principal=principal, family_id=family_id, kind=body.kind, at=body.at,
        staff_ids=body.staff_ids, participant_ids=body.participant_ids, note=body.note))


@router.post("/families/{family_id}/goals/{goal_id}/actions", status_code=201,
             summary="An action towards a goal, with an owner and a due date")
async def add_action(family_id: UUID, goal_id: UUID, body: ActionIn, idem: IdempotencyDep, principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: work.add_action(idem.session, principal=principal, family_id=family_id,
                                                  goal_id=goal_id, description=body.description,
                                                  owner=body.owner, due_on=body.due_on))


@router.post("/families/{family_id}/actions/{action_id}/status", summary="Mark an action done or dropped")
async def action_status(family_id: UUID, action_id: UUID, body: ActionStatusIn, idem: IdempotencyDep,
                        principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: work.set_action_status(
        idem.session, principal=principal, family_id=family_id, action_id=action_id, status=body.status),
        status_code=200)


@router.post("/job-openings", status_code=201, summary="A job or education place from an employer")
async def open_job(body: OpeningIn, idem: IdempotencyDep, principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: work.open_job(idem.session, principal=principal, site_id=body.site_id,
                                                employer=body.employer, role=body.role,
                                                hours_per_week=body.hours_per_week, kind=body.kind))


@router.post("/job-openings/{opening_id}/candidates", status_code=201,
             summary="Propose a family member for an opening")
async def propose(opening_id: UUID, body: CandidateIn, idem: IdempotencyDep, principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: work.propose(idem.session, principal=principal, opening_id=opening_id,
                                               family_id=body.family_id, person_id=body.person_id))


@router.post("/job-matches/{match_id}/decision", summary="The team's match decision, placement or end")
async def decide(match_id: UUID, body: DecisionIn, idem: IdempotencyDep, principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: work.decide(idem.session, principal=principal, match_id=match_id,
                                              state=MatchState(body.state), starts_on=body.starts_on),
                          status_code=200)


@router.post("/job-matches/{match_id}/follow-ups", status_code=201,
             summary="A check-in with the employer to align expectations")
async def follow_up(match_id: UUID, body: FollowUpIn, idem: IdempotencyDep, principal: Team):  # type: ignore[no-untyped-def]
    return await idem.run(lambda: work.follow_up(idem.session, principal=principal, match_id=match_id,
                                                 on=body.on, expectations_aligned=body.expectations_aligned,
                                                 note=body.note))


@router.get("/outcomes", response_model=OutcomesRead, summary="The evaluation's measures, computed now")
async def outcomes(session: SessionDep, principal: Report, period_start: date, period_end: date,
                   site_id: Annotated[str | None, Query(max_length=50)] = None) -> OutcomesRead:
    if principal.is_team:
        if site_id not in (None, principal.site):
            raise Forbidden("A leader sees their own site.")
        site_id = principal.site
    return await service.outcomes(session, site_id=site_id, period_start=period_start, period_end=period_end)
