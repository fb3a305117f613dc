"""HTTP routes of the casework service: team staff of a site work with their site's families."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from services.casework import comparison, service, staffing, work
from services.casework import outcomes as report
from services.casework.domain import MatchState
from services.casework.schemas import (
    AbsenceIn,
    AbsenceMeasureIn,
    AbsenceRead,
    ActionIn,
    ActionRead,
    ActionStatusIn,
    ActionStatusRead,
    CandidateIn,
    ComparisonCohortIn,
    ComparisonCohortRead,
    ComparisonReportRead,
    ContactIn,
    ContactRead,
    DecisionIn,
    EmploymentIn,
    EndStationingIn,
    EntryPointRead,
    EscalationIn,
    EscalationRead,
    FamilyAnswerIn,
    FamilyRead,
    FamilySummary,
    FollowUpIn,
    FollowUpsRead,
    FritidspasIn,
    GoalIn,
    GoalStateIn,
    LeisureJobIn,
    MatchRead,
    MeasurementRead,
    NetworkIn,
    OpeningIn,
    OpeningRead,
    OutcomesRead,
    PlanRead,
    ReassignIn,
    StaffDetail,
    StaffIn,
    StaffRead,
    StationingEndRead,
    StationingIn,
    StationingRead,
    WellbeingIn,
    WishesIn,
    YouthEducationIn,
)
from shared.audit import audit_answer, audited_read, record_access
from shared.auth import Principal, Role, require_roles
from shared.codes import CODE_PATTERN
from shared.db import SessionDep
from shared.errors import Forbidden
from shared.events import casework as ev
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page

router = APIRouter(prefix="/v1", tags=["casework"])
Team = Annotated[Principal, Depends(require_roles(Role.TEAM_STAFF, Role.TEAM_LEADER))]
Leaders = Annotated[Principal, Depends(require_roles(Role.TEAM_LEADER, Role.ADMIN))]
Report = Annotated[Principal, Depends(require_roles(Role.TEAM_LEADER, Role.COORDINATION, Role.EVALUATOR))]
#: A comparison cohort is loaded by an evaluator; the coordination group reads it beside the report.
Evaluator = Annotated[Principal, Depends(require_roles(Role.EVALUATOR))]
CohortCode = Annotated[str, Query(min_length=2, max_length=80, pattern=CODE_PATTERN)]
Evaluation = Annotated[Principal, Depends(require_roles(Role.EVALUATOR, Role.COORDINATION))]
#: The family list is also the coordination group's overview of waiting families across sites.
Overview = Annotated[Principal, Depends(require_roles(Role.TEAM_STAFF, Role.TEAM_LEADER, Role.COORDINATION))]
#: Who is in a team: its own members, and admin, who keeps stationing.
TeamOrAdmin = Annotated[Principal, Depends(require_roles(Role.TEAM_STAFF, Role.TEAM_LEADER, Role.ADMIN))]
MeasurementKind = Literal["employment", "school_absence", "network", "wellbeing", "leisure_job", "fritidspas",
                          "youth_education", "family_question"]


@router.post("/staff", response_model=StaffRead, status_code=201, summary="Station a staff member (leader)")
async def station_staff(body: StaffIn, idem: IdempotencyDep, principal: Leaders) -> StaffRead:
    if not principal.can_see_site(body.site_id):
        raise Forbidden("A leader stations staff in their own site.")
    return await idem.run(StaffRead, lambda: staffing.station_staff(idem.session, data=body))


@router.post("/staff/{staff_id}/stationings", response_model=StationingRead, status_code=201,
             summary="A new stationing of the same person: an FTE change (ends the running one) or a return")
async def add_stationing(staff_id: UUID, body: StationingIn, idem: IdempotencyDep,
                         principal: Leaders) -> StationingRead:
    return await idem.run(StationingRead, lambda: staffing.add_stationing(
        idem.session, principal=principal, staff_id=staff_id, data=body))


@router.get("/staff", response_model=Page[StaffDetail], summary="The team's staff with their stationings")
async def list_staff(session: SessionDep, principal: TeamOrAdmin, limit: Limit = 50, cursor: Cursor = None,
                     site_id: Annotated[str | None, Query(max_length=50)] = None) -> Page[StaffDetail]:
    return await staffing.list_staff(session, principal=principal, site_id=site_id, limit=limit,
                                     cursor=cursor)


@router.post("/stationings/{stationing_id}/end", response_model=StationingEndRead,
             summary="End a stationing on a date (leader)")
async def end_stationing(stationing_id: UUID, body: EndStationingIn, idem: IdempotencyDep,
                         principal: Leaders) -> StationingEndRead:
    return await idem.run(StationingEndRead, lambda: staffing.end_stationing(
        idem.session, principal=principal, stationing_id=stationing_id, ends_on=body.ends_on))


@router.get("/families", response_model=Page[FamilySummary],
            summary="The site's families and their pairs (the coordination group: any site)")
async def list_families(request: Request, session: SessionDep, principal: Overview, limit: Limit = 50,
                        cursor: Cursor = None, site_id: Annotated[str | None, Query(max_length=50)] = None,
                        status: Literal["active", "exited"] | None = None,
                        pair_status: Literal["assigned", "pending", "ended"] | None = None,
                        ) -> Page[FamilySummary]:
    page = await service.list_families(session, principal=principal, site_id=site_id, status=status,
                                       pair_status=pair_status, limit=limit, cursor=cursor)
    await record_access(session, principal, families=[f.id for f in page.items],
                       endpoint=f"GET {request.url.path}", purpose="family list")
    return page


@router.get("/families/{family_id}", response_model=FamilyRead)
async def read_family(family_id: UUID, request: Request, session: SessionDep, principal: Team) -> FamilyRead:
    async with audited_read(session, principal, families=[family_id],
                            endpoint=f"GET {request.url.path}", purpose="casework"):
        return await service.read_family(session, principal=principal, family_id=family_id)


@router.get("/families/{family_id}/entry-point", response_model=EntryPointRead,
            summary="Who the family calls today: its pair, or the deputy of one who is away")
async def entry_point(family_id: UUID, request: Request, session: SessionDep,
                      principal: Team) -> EntryPointRead:
    async with audited_read(session, principal, families=[family_id],
                            endpoint=f"GET {request.url.path}", purpose="who to call"):
        family = await service.read_family(session, principal=principal, family_id=family_id)
        call = await staffing.entry_point(session, principal=principal, family_id=family_id)
        return EntryPointRead(family_id=family_id, call_today=call, pair_status=family.pair_status)


@router.post("/families/{family_id}/makkerpar/reassign", response_model=FamilyRead,
             summary="Give the family a new pair; only with a reason, kept in the history")
async def reassign(family_id: UUID, body: ReassignIn, idem: IdempotencyDep, principal: Team) -> FamilyRead:
    return await idem.run(FamilyRead, lambda: staffing.reassign(
        idem.session, principal=principal, family_id=family_id, reason_code=body.reason_code,
        reason_text=body.reason_text))


@router.post("/absences", response_model=AbsenceRead, status_code=201,
             summary="A staff member is away; a named deputy stands in")
async def record_absence(body: AbsenceIn, idem: IdempotencyDep, principal: Team) -> AbsenceRead:
    return await idem.run(AbsenceRead, lambda: staffing.record_absence(
        idem.session, principal=principal, data=body))


@router.post("/families/{family_id}/goals", response_model=PlanRead, status_code=201)
async def add_goal(family_id: UUID, body: GoalIn, idem: IdempotencyDep, principal: Team) -> PlanRead:
    return await idem.run(PlanRead, lambda: service.add_goal(
        idem.session, principal=principal, family_id=family_id, data=body))


@router.post("/families/{family_id}/goals/{goal_id}/state", response_model=PlanRead)
async def change_goal(family_id: UUID, goal_id: UUID, body: GoalStateIn, idem: IdempotencyDep,
                      principal: Team) -> PlanRead:
    return await idem.run(PlanRead, lambda: service.change_goal(
        idem.session, principal=principal, family_id=family_id, goal_id=goal_id, data=body))


@router.put("/families/{family_id}/plan/wishes", response_model=PlanRead,
            summary="The family's dreams and wishes in its own words (stays in the team)")
async def set_wishes(family_id: UUID, body: WishesIn, request: Request, session: SessionDep,
                     principal: Team) -> PlanRead:
    plan = await service.set_wishes(session, principal=principal, family_id=family_id, wishes=body.wishes)
    await audit_answer(session, principal, request, plan)
    await session.commit()
    return plan


@router.get("/families/{family_id}/plan", response_model=PlanRead,
            summary="The plan now, or an earlier version (a new family's plan is the empty version 0)")
async def read_plan(family_id: UUID, request: Request, session: SessionDep, principal: Team,
                    version: Annotated[int | None, Query(
                        ge=0, description="Omit for the latest; 0 is the empty plan every family "
                                          "starts with, 1 the first change")] = None) -> PlanRead:
    async with audited_read(session, principal, families=[family_id],
                            endpoint=f"GET {request.url.path}", purpose="family plan"):
        return await service.plan_version(session, principal=principal, family_id=family_id,
                                          version=version)


@router.post("/families/{family_id}/escalations", response_model=EscalationRead, status_code=201,
             summary="Climb the ladder: sparring, a colleague joins, a faglig ven (a referral)")
async def escalate(family_id: UUID, body: EscalationIn, idem: IdempotencyDep,
                   principal: Team) -> EscalationRead:
    return await idem.run(EscalationRead, lambda: service.escalate(
        idem.session, principal=principal, family_id=family_id, data=body))


@router.get("/families/{family_id}/escalations", response_model=Page[EscalationRead],
            summary="The family's escalation steps (optionally of one task)")
async def list_escalations(family_id: UUID, request: Request, session: SessionDep, principal: Team,
                           limit: Limit = 50, cursor: Cursor = None,
                           task_ref: Annotated[str | None, Query(max_length=100)] = None,
                           ) -> Page[EscalationRead]:
    async with audited_read(session, principal, families=[family_id],
                            endpoint=f"GET {request.url.path}", purpose="escalations"):
        return await service.list_escalations(session, principal=principal, family_id=family_id,
                                              task_ref=task_ref, limit=limit, cursor=cursor)


def _measurement(kind: str, event: Any, person: bool = True) -> Callable[..., Awaitable[MeasurementRead]]:
    async def record(family_id: UUID, idem: IdempotencyDep, principal: Team, body: Any) -> MeasurementRead:
        values = body.model_dump(mode="json")
        person_id = values.pop("person_id", None)
        return await idem.run(MeasurementRead, lambda: service.measure(
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
                         response_model=MeasurementRead, status_code=201,
                         summary=f"Record a {_path.replace('-', ' ')} measurement",
                         name=f"measure_{_kind}")


@router.post("/families/{family_id}/measurements/youth-education", response_model=MeasurementRead,
             status_code=201, summary="A member aged 15-25 started a youth education")
async def measure_youth_education(family_id: UUID, body: YouthEducationIn, idem: IdempotencyDep,
                                  principal: Team) -> MeasurementRead:
    return await idem.run(MeasurementRead, lambda: service.record_youth_education(
        idem.session, principal=principal, family_id=family_id, data=body))


@router.post("/families/{family_id}/measurements/family-answer", response_model=MeasurementRead,
             status_code=201, summary="An adult's answer to a family-reported question")
async def measure_family_answer(family_id: UUID, body: FamilyAnswerIn, idem: IdempotencyDep,
                                principal: Team) -> MeasurementRead:
    return await idem.run(MeasurementRead, lambda: service.record_family_answer(
        idem.session, principal=principal, family_id=family_id, data=body))


@router.get("/families/{family_id}/measurements", response_model=Page[MeasurementRead],
            summary="The family's outcome measurements (optionally of one kind)")
async def list_measurements(family_id: UUID, request: Request, session: SessionDep, principal: Team,
                            limit: Limit = 50, cursor: Cursor = None,
                            kind: MeasurementKind | None = None) -> Page[MeasurementRead]:
    async with audited_read(session, principal, families=[family_id],
                            endpoint=f"GET {request.url.path}", purpose="outcome measurements"):
        return await service.list_measurements(session, principal=principal, family_id=family_id, kind=kind,
                                               limit=limit, cursor=cursor)


@router.post("/families/{family_id}/contacts", response_model=ContactRead, status_code=201,
             summary="A home visit, drop-in, call or joint activity (the note stays in the team)")
async def record_contact(family_id: UUID, body: ContactIn, idem: IdempotencyDep,
                         principal: Team) -> ContactRead:
    return await idem.run(ContactRead, lambda: work.record_contact(
        idem.session, principal=principal, family_id=family_id, kind=body.kind, at=body.at,
        staff_ids=body.staff_ids, participant_ids=body.participant_ids, note=body.note))


@router.get("/families/{family_id}/contacts", response_model=Page[ContactRead],
            summary="The family's contacts, with the team's notes")
async def list_contacts(family_id: UUID, request: Request, session: SessionDep, principal: Team,
                        limit: Limit = 50, cursor: Cursor = None) -> Page[ContactRead]:
    async with audited_read(session, principal, families=[family_id],
                            endpoint=f"GET {request.url.path}", purpose="contacts"):
        return await work.list_contacts(session, principal=principal, family_id=family_id, limit=limit,
                                        cursor=cursor)


@router.post("/families/{family_id}/goals/{goal_id}/actions", response_model=ActionRead, status_code=201,
             summary="An action towards a goal, with an owner and a due date")
async def add_action(family_id: UUID, goal_id: UUID, body: ActionIn, idem: IdempotencyDep,
                     principal: Team) -> ActionRead:
    return await idem.run(ActionRead, lambda: work.add_action(
        idem.session, principal=principal, family_id=family_id, goal_id=goal_id, description=body.description,
        owner=body.owner, due_on=body.due_on))


@router.post("/families/{family_id}/actions/{action_id}/status", response_model=ActionStatusRead,
             summary="Mark an action done or dropped")
async def action_status(family_id: UUID, action_id: UUID, body: ActionStatusIn, idem: IdempotencyDep,
                        principal: Team) -> ActionStatusRead:
    return await idem.run(ActionStatusRead, lambda: work.set_action_status(
        idem.session, principal=principal, family_id=family_id, action_id=action_id, status=body.status))


@router.post("/job-openings", response_model=OpeningRead, status_code=201,
             summary="A job or education place from an employer")
async def open_job(body: OpeningIn, idem: IdempotencyDep, principal: Team) -> OpeningRead:
    return await idem.run(OpeningRead, lambda: work.open_job(
        idem.session, principal=principal, site_id=body.site_id, employer=body.employer, role=body.role,
        hours_per_week=body.hours_per_week, kind=body.kind))


@router.get("/job-openings", response_model=Page[OpeningRead], summary="The site's job openings")
async def list_openings(session: SessionDep, principal: Team, limit: Limit = 50, cursor: Cursor = None,
                        status: Literal["open", "filled"] | None = None,
                        kind: Literal["ordinary", "flex_job", "leisure_job", "education_place"] | None = None,
                        ) -> Page[OpeningRead]:
    return await work.list_openings(session, principal=principal, status=status, kind=kind, limit=limit,
                                    cursor=cursor)


@router.post("/job-openings/{opening_id}/candidates", response_model=MatchRead, status_code=201,
             summary="Propose a family member for an opening")
async def propose(opening_id: UUID, body: CandidateIn, idem: IdempotencyDep, principal: Team) -> MatchRead:
    return await idem.run(MatchRead, lambda: work.propose(
        idem.session, principal=principal, opening_id=opening_id, family_id=body.family_id,
        person_id=body.person_id))


@router.post("/job-matches/{match_id}/decision", response_model=MatchRead,
             summary="The team's match decision, placement or end")
async def decide(match_id: UUID, body: DecisionIn, idem: IdempotencyDep, principal: Team) -> MatchRead:
    return await idem.run(MatchRead, lambda: work.decide(
        idem.session, principal=principal, match_id=match_id, state=MatchState(body.state),
        starts_on=body.starts_on))


@router.post("/job-matches/{match_id}/follow-ups", response_model=FollowUpsRead, status_code=201,
             summary="A check-in with the employer to align expectations")
async def follow_up(match_id: UUID, body: FollowUpIn, idem: IdempotencyDep, principal: Team) -> FollowUpsRead:
    return await idem.run(FollowUpsRead, lambda: work.follow_up(
        idem.session, principal=principal, match_id=match_id, on=body.on,
        expectations_aligned=body.expectations_aligned, note=body.note))


@router.get("/job-matches", response_model=Page[MatchRead],
            summary="The site's job matches with their follow-ups, by opening or by family")
async def list_matches(request: Request, session: SessionDep, principal: Team, limit: Limit = 50,
                       cursor: Cursor = None, opening_id: UUID | None = None,
                       family_id: UUID | None = None) -> Page[MatchRead]:
    page = await work.list_matches(session, principal=principal, opening_id=opening_id, family_id=family_id,
                                   limit=limit, cursor=cursor)
    await record_access(session, principal, families=list(dict.fromkeys(m.family_id for m in page.items)),
                       endpoint=f"GET {request.url.path}", purpose="job matches")
    return page


@router.get("/outcomes", response_model=OutcomesRead, summary="The evaluation's measures, computed now")
async def outcomes(session: SessionDep, principal: Report, period_start: date, period_end: date,
                   site_id: Annotated[str | None, Query(max_length=50)] = None) -> OutcomesRead:
    if principal.is_team:
        if site_id not in (None, principal.site):
            raise Forbidden("A leader sees their own site.")
        site_id = principal.site
    return await report.outcomes(session, site_id=site_id, period_start=period_start, period_end=period_end)


@router.post("/comparison-cohorts", response_model=ComparisonCohortRead, status_code=201,
             summary="Load a comparison cohort's (kontrolgruppe's) aggregate figures (evaluator)")
async def load_comparison_cohort(body: ComparisonCohortIn, idem: IdempotencyDep,
                                 principal: Evaluator) -> ComparisonCohortRead:
    return await idem.run(ComparisonCohortRead, lambda: comparison.load_cohort(
        idem.session, principal=principal, data=body))


@router.post("/comparison-cohorts/import", response_model=ComparisonCohortRead, status_code=201,
             summary="Load a comparison cohort from CSV (text/csv): aggregates or pseudonymised records",
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {
                 "type": "string", "description": "Columns: " + ", ".join(comparison.AGGREGATE_COLUMNS)
                 + " (aggregates) or " + ", ".join(comparison.RECORD_COLUMNS)
                 + " (records, value 0 or 1)"}}}}})
async def import_comparison_cohort(request: Request, idem: IdempotencyDep, principal: Evaluator,
                                   code: CohortCode,
                                   period_start: date, period_end: date) -> ComparisonCohortRead:
    content = await request.body()
    return await idem.run(ComparisonCohortRead, lambda: comparison.import_cohort(
        idem.session, principal=principal, code=code, period_start=period_start, period_end=period_end,
        content=content))


@router.get("/comparison-cohorts/{cohort_id}", response_model=ComparisonCohortRead,
            summary="A comparison cohort's figures")
async def get_comparison_cohort(cohort_id: UUID, session: SessionDep,
                                principal: Evaluation) -> ComparisonCohortRead:
    return await comparison.get_cohort(session, cohort_id=cohort_id)


@router.get("/comparison-cohorts/{cohort_id}/report", response_model=ComparisonReportRead,
            summary="The project's figures for the cohort's period beside the cohort's")
async def comparison_report(cohort_id: UUID, session: SessionDep, principal: Evaluation,
                            site_id: Annotated[str | None, Query(max_length=50)] = None,
                            ) -> ComparisonReportRead:
    return await comparison.comparison_report(session, cohort_id=cohort_id, site_id=site_id)
