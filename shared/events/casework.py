"""Events of the casework service. No names, notes or the family's own words in any of them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import StringConstraints

from shared.codes import Code
from shared.events.registry import DomainEvent, FamilyEvent, event, examples

F = "0b6f7c2e-8a51-4f0e-9a43-3f1d2c9b7a10"
P = "5d0c3e1a-77b2-4c8e-a1f4-2e9b6d3c8a01"
S1 = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
S2 = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f60"
X = "3e4f5a6b-7c8d-4e9f-8a1b-2c3d4e5f6071"
Department = Literal["sociale-forhold-og-beskaeftigelse", "boern-og-unge", "sundhed-og-omsorg",
                     "kultur-og-borgerservice"]
LifeArea = Literal["employment", "education", "health", "children_school_wellbeing", "leisure_network",
                   "economy", "housing", "daily_structure"]
#: A school term, ``2026-spring`` or ``2026-autumn``: a shape that cannot carry text or a number.
Term = Annotated[str, StringConstraints(pattern=r"^\d{4}-(spring|autumn)$")]



@event("casework", "staff-stationed")
class StaffStationed(DomainEvent):
    """A staff member is stationed in a site's team from a home department (finance counts FTE)."""

    model_config = examples({"stationing_id": X, "staff_id": S1, "site_id": "gellerup",
                              "department": "sundhed-og-omsorg", "discipline": "health_visitor",
                              "role": "staff", "fte": "0.5", "starts_on": "2026-01-01", "ends_on": None})
    stationing_id: UUID
    staff_id: UUID
    site_id: Code
    department: Department
    discipline: Code
    role: Literal["leader", "staff"]
    fte: Decimal
    starts_on: date
    ends_on: date | None = None

    def partition_key(self) -> str:
        return f"stationing:{self.site_id}"


@event("casework", "stationing-ended")
class StationingEnded(DomainEvent):
    """A stationing ends on a date (a change of FTE is an end plus a new stationing)."""

    model_config = examples({"stationing_id": X, "staff_id": S1, "site_id": "gellerup",
                              "department": "sundhed-og-omsorg", "ends_on": "2026-06-30"})
    stationing_id: UUID
    staff_id: UUID
    site_id: Code
    department: Department
    ends_on: date

    def partition_key(self) -> str:
        return f"stationing:{self.site_id}"


@event("casework", "makkerpar-assigned")
class MakkerparAssigned(FamilyEvent):
    """The family got its fixed pair of caseworkers of two different disciplines."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "assignment_id": X,
                              "staff_ids": [S1, S2], "disciplines": ["job_consultant", "health_visitor"],
                              "reason_code": "enrolled"})
    assignment_id: UUID
    staff_ids: list[UUID]
    disciplines: list[Code]
    reason_code: Literal["enrolled", "staff_left", "family_request", "workload", "other"]


@event("casework", "makkerpar-ended")
class MakkerparEnded(FamilyEvent):
    """The family's pair no longer stands: a new one follows (or ``makkerpar-pending``), except
    when the family left the programme."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "assignment_id": X,
                              "staff_ids": [S1, S2], "reason_code": "staff_left"})
    assignment_id: UUID
    staff_ids: list[UUID]
    reason_code: Literal["staff_left", "family_request", "workload", "other", "family_exited"]


@event("casework", "staff-absence-recorded")
class StaffAbsenceRecorded(DomainEvent):
    """A staff member is away for some days and a named colleague stands in (no reason given)."""

    model_config = examples({"absence_id": X, "site_id": "gellerup", "staff_id": S1, "deputy_id": S2,
                              "from_date": "2026-02-02", "to_date": "2026-02-13"})
    absence_id: UUID
    site_id: Code
    staff_id: UUID
    deputy_id: UUID
    from_date: date
    to_date: date

    def partition_key(self) -> str:
        return f"absence:{self.site_id}"


@event("casework", "makkerpar-pending")
class MakkerparPending(FamilyEvent):
    """No pair could be formed (fewer than two disciplines free at the site): visible, not lost."""

    model_config = examples({"family_id": F, "site_id": "tilst",
                              "reason_code": "fewer_than_two_disciplines"})
    reason_code: Literal["fewer_than_two_disciplines"]


@event("casework", "goal-changed")
class GoalChanged(FamilyEvent):
    """A goal of the family plan was set or changed state (the family's own words stay in the team)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "goal_id": X, "person_id": P,
                              "life_area": "health", "state": "active", "achievement": "improving",
                              "plan_version": 3})
    goal_id: UUID
    person_id: UUID | None = None
    life_area: LifeArea
    state: Literal["proposed", "active", "on_hold", "achieved", "cancelled"]
    achievement: Literal["improving", "worsening", "no_change", "achieved", "not_attainable"] | None = None
    plan_version: int


@event("casework", "plan-wishes-updated")
class PlanWishesUpdated(FamilyEvent):
    """The family restated its dreams and wishes; the words are its own and stay in the team."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "plan_version": 4})
    plan_version: int


@event("casework", "plan-action-added")
class PlanActionAdded(FamilyEvent):
    """An action towards a goal of the plan, with a due date (its description stays in the team)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "action_id": X, "goal_id": S2,
                              "life_area": "employment", "due_on": "2026-04-01", "plan_version": 5})
    action_id: UUID
    goal_id: UUID
    life_area: LifeArea
    due_on: date | None = None
    plan_version: int


@event("casework", "plan-action-status-changed")
class PlanActionStatusChanged(FamilyEvent):
    """An action of the plan was done or dropped."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "action_id": X, "goal_id": S2,
                              "life_area": "employment", "status": "done", "plan_version": 6})
    action_id: UUID
    goal_id: UUID
    life_area: LifeArea
    status: Literal["done", "dropped"]
    plan_version: int


@event("casework", "escalation-raised")
class EscalationRaised(FamilyEvent):
    """The pair escalated a task; at the faglig-ven step the referrals service opens a referral."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "escalation_id": X,
                              "step": "faglig_ven", "target_department": "sundhed-og-omsorg",
                              "offer_code": "physical-rehabilitation", "person_id": P, "priority": "routine",
                              "requested_by": S1, "reason_code": "back_pain"})
    escalation_id: UUID
    step: Literal["team_sparring", "colleague_joins", "faglig_ven"]
    target_department: Department | None = None
    offer_code: Code | None = None
    person_id: UUID | None = None
    priority: Literal["routine", "urgent"] = "routine"
    requested_by: UUID
    reason_code: Code


@event("casework", "employment-status-recorded")
class EmploymentStatusRecorded(FamilyEvent):
    """An adult's employment status from a date (job, flex job, education, …)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "person_id": P, "status": "flex_job",
                              "since": "2026-04-01"})
    person_id: UUID
    status: Literal["unemployed", "ordinary_job", "flex_job", "education", "early_retirement_pension",
                    "other"]
    since: date


@event("casework", "school-absence-recorded")
class SchoolAbsenceRecorded(FamilyEvent):
    """A child's school absence in a term, in per cent."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "person_id": P, "term": "2026-spring",
                              "absence_percent": "7.5"})
    person_id: UUID
    term: Term
    absence_percent: Decimal


@event("casework", "network-answer-recorded")
class NetworkAnswerRecorded(FamilyEvent):
    """An adult's answer to the network question (1 no, not at all … 4 yes, definitely)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "person_id": P, "answer": 3,
                              "occasion": "start", "at": "2026-02-01T10:00:00Z"})
    person_id: UUID
    answer: int
    occasion: Literal["start", "follow_up"]
    at: datetime


@event("casework", "wellbeing-assessed")
class WellbeingAssessed(FamilyEvent):
    """The team's assessment of the family's wellbeing (1–10)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "score": 6,
                              "at": "2026-02-01T10:00:00Z"})
    score: int
    at: datetime


@event("casework", "contact-recorded")
class ContactRecorded(FamilyEvent):
    """A home visit, drop-in, call or joint activity took place (the note stays in the team)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "contact_id": X, "kind": "home_visit",
                              "at": "2026-03-02T16:30:00Z", "staff_ids": [S1]})
    contact_id: UUID
    kind: Literal["home_visit", "drop_in", "call", "joint_activity"]
    at: datetime
    staff_ids: list[UUID]


@event("casework", "job-opening-registered")
class JobOpeningRegistered(DomainEvent):
    """An employer offers a job or an education place to the site's families (job first)."""

    model_config = examples({"opening_id": X, "site_id": "gellerup", "kind": "flex_job",
                              "hours_per_week": "15"})
    opening_id: UUID
    site_id: Code
    kind: Literal["ordinary", "flex_job", "leisure_job", "education_place"]
    hours_per_week: Decimal

    def partition_key(self) -> str:
        return f"job-opening:{self.opening_id}"


@event("casework", "job-match-decided")
class JobMatchDecided(FamilyEvent):
    """The team decided on a candidate for a job opening (job first)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "match_id": X, "opening_id": S2,
                              "person_id": P, "job_kind": "flex_job", "decision": "matched"})
    match_id: UUID
    opening_id: UUID
    person_id: UUID
    job_kind: Literal["ordinary", "flex_job", "leisure_job", "education_place"]
    decision: Literal["proposed", "matched", "rejected", "placed", "ended"]


@event("casework", "placement-started")
class PlacementStarted(FamilyEvent):
    """A family member started in the job or education place."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "match_id": X, "person_id": P,
                              "job_kind": "flex_job", "starts_on": "2026-04-01", "hours_per_week": "15"})
    match_id: UUID
    person_id: UUID
    job_kind: Literal["ordinary", "flex_job", "leisure_job", "education_place"]
    starts_on: date
    hours_per_week: Decimal


@event("casework", "leisure-job-recorded")
class LeisureJobRecorded(FamilyEvent):
    """A young person has a leisure job (fritidsjob) from a date."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "person_id": P,
                              "started_on": "2026-05-01"})
    person_id: UUID
    started_on: date
    ended_on: date | None = None


@event("casework", "fritidspas-used")
class FritidspasUsed(FamilyEvent):
    """A child used the leisure pass for a club or association activity."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "person_id": P, "activity": "football",
                              "on": "2026-05-01"})
    person_id: UUID
    activity: Literal["football", "swimming", "music", "scouts", "martial_arts", "other"]
    on: date


@event("casework", "employer-follow-up-recorded")
class EmployerFollowUpRecorded(FamilyEvent):
    """The team checked in with the employer of a placement (the note stays in the team)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "match_id": X, "person_id": P,
                              "on": "2026-04-15", "expectations_aligned": True})
    match_id: UUID
    person_id: UUID
    on: date
    expectations_aligned: bool


@event("casework", "youth-education-started")
class YouthEducationStarted(FamilyEvent):
    """A young member (15–25) started a youth education (ungdomsuddannelse)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "person_id": P,
                              "started_on": "2026-08-10",
                              "programme": "eud"})
    person_id: UUID
    started_on: date
    programme: Literal["stx", "hf", "hhx", "htx", "eud", "egu", "fgu", "stu", "other"]


@event("casework", "family-answer-recorded")
class FamilyAnswerRecorded(FamilyEvent):
    """An adult's own answer to a family-reported question (1 = worst … the scale's top)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "person_id": P,
                              "question": "surplus_energy",
                              "answer": 4, "scale": 5, "occasion": "follow_up", "at": "2026-09-01T10:00:00Z"})
    person_id: UUID
    question: Literal["health_mastery", "wellbeing", "surplus_energy", "quality_of_life",
                      "trust_in_municipality"]
    answer: int
    scale: Literal[4, 5]
    occasion: Literal["start", "follow_up"]
    at: datetime


@event("casework", "comparison-cohort-loaded")
class ComparisonCohortLoaded(DomainEvent):
    """An evaluator loaded a comparison cohort's (kontrolgruppe's) figures: aggregates only."""

    model_config = examples({"cohort_id": X, "code": "kontrolgruppe-gellerup", "period_start": "2019-09-01",
                              "period_end": "2023-06-30", "source": "records", "records": 180,
                              "measures": ["children_using_fritidspas"]})
    cohort_id: UUID
    code: Code
    period_start: date
    period_end: date
    source: Literal["aggregates", "records"]
    records: int | None = None
    measures: list[Code]

    def partition_key(self) -> str:
        return f"comparison:{self.cohort_id}"
