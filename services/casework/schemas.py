"""Request and response bodies of the casework API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.casework.domain import Discipline, EmploymentStatus, EscalationStep, GoalState
from shared.codes import Code
from shared.departments import Department

LifeArea = Literal["employment", "education", "health", "children_school_wellbeing", "leisure_network",
                   "economy", "housing", "daily_structure"]
Achievement = Literal["improving", "worsening", "no_change", "achieved", "not_attainable"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StaffIn(Strict):
    site_id: Code = Field(max_length=50)
    display_name: str = Field(min_length=1, max_length=200)
    discipline: Discipline
    department: Department
    role: Literal["leader", "staff"] = "staff"
    fte: Decimal = Field(gt=0, le=1, max_digits=4, decimal_places=2)
    starts_on: date
    ends_on: date | None = None


class StaffRead(BaseModel):
    id: uuid.UUID
    site_id: str
    display_name: str
    discipline: str
    department: str
    role: str
    stationing_id: uuid.UUID


class EndStationingIn(Strict):
    ends_on: date


class StationingIn(Strict):
    """A new stationing of someone already in the team: an FTE change or a return."""

    fte: Decimal = Field(gt=0, le=1, max_digits=4, decimal_places=2)
    starts_on: date
    ends_on: date | None = None


class StationingRead(BaseModel):
    id: uuid.UUID
    staff_id: uuid.UUID
    site_id: str
    department: str
    fte: Decimal
    starts_on: date
    ends_on: date | None


class StaffDetail(BaseModel):
    """A staff member with every stationing, so FTE changes show as one person's history."""

    id: uuid.UUID
    site_id: str
    display_name: str
    discipline: str
    department: str
    role: str
    leaves_on: date | None = Field(description="Set when the person is leaving the team: no new families")
    stationings: list[StationingRead]


class PairRead(BaseModel):
    staff_ids: list[uuid.UUID]
    reason_code: str
    assigned_at: datetime
    ended_at: datetime | None = None
    ended_reason: str | None = None


class FamilyRead(BaseModel):
    id: uuid.UUID
    site_id: str
    status: str
    pair_status: str
    pair: PairRead | None
    pair_history: list[PairRead]


class FamilySummary(BaseModel):
    """A family in the team's list: where it stands and its current pair."""

    id: uuid.UUID
    site_id: str
    status: str
    pair_status: str
    enrolled_on: date | None
    pair: PairRead | None


class EntryPointRead(BaseModel):
    family_id: uuid.UUID
    call_today: list[uuid.UUID]
    pair_status: str


class ReassignIn(Strict):
    reason_code: Literal["staff_left", "family_request", "workload", "other"]
    reason_text: str = Field(min_length=3, max_length=500)


class AbsenceIn(Strict):
    staff_id: uuid.UUID
    deputy_id: uuid.UUID
    from_date: date
    to_date: date


class GoalIn(Strict):
    person_id: uuid.UUID | None = None
    life_area: LifeArea
    own_words: str = Field(min_length=1, max_length=2000, description="The family member's own words")
    review_on: date | None = None


class GoalStateIn(Strict):
    state: GoalState
    achievement: Achievement | None = None


class ActionRead(BaseModel):
    id: uuid.UUID
    goal_id: uuid.UUID
    description: str
    owner: str
    status: str
    due_on: date | None


class GoalRead(BaseModel):
    id: uuid.UUID
    person_id: uuid.UUID | None
    life_area: str
    own_words: str
    state: str
    achievement: str | None
    review_on: date | None
    actions: list[ActionRead] = Field(default_factory=list, description="Plan versions before "
                                      "actions were kept in the plan have none")


class PlanRead(BaseModel):
    family_id: uuid.UUID
    version: int
    wishes: str = ""
    goals: list[GoalRead]


class WishesIn(Strict):
    wishes: str = Field(min_length=1, max_length=4000, description="The family's dreams, in its own words")


class EscalationIn(Strict):
    task_ref: str = Field(min_length=1, max_length=100, description="Groups the steps of one task")
    step: EscalationStep
    target_department: Department | None = None
    offer_code: Code | None = Field(default=None, max_length=60)
    person_id: uuid.UUID | None = None
    priority: Literal["routine", "urgent"] = "routine"
    reason_code: Code = Field(max_length=60, description="A code (e.g. back_pain), never free text")
    requested_by: uuid.UUID


class EscalationRead(BaseModel):
    id: uuid.UUID
    task_ref: str
    step: str
    target_department: str | None
    offer_code: str | None = None
    person_id: uuid.UUID | None = None
    priority: str
    reason_code: str
    requested_by: uuid.UUID
    at: datetime


class EmploymentIn(Strict):
    person_id: uuid.UUID
    status: EmploymentStatus
    since: date


class AbsenceMeasureIn(Strict):
    person_id: uuid.UUID
    term: str = Field(pattern=r"^\d{4}-(spring|autumn)$")
    absence_percent: Decimal = Field(ge=0, le=100, max_digits=5, decimal_places=2)


class NetworkIn(Strict):
    person_id: uuid.UUID
    answer: int = Field(ge=1, le=4)
    occasion: Literal["start", "follow_up"]
    at: datetime


class WellbeingIn(Strict):
    score: int = Field(ge=1, le=10)
    at: datetime


class YouthEducationIn(Strict):
    person_id: uuid.UUID
    started_on: date
    programme: Literal["stx", "hf", "hhx", "htx", "eud", "egu", "fgu", "stu", "other"] = Field(
        description="The kind of youth education (ungdomsuddannelse), as a code")


class FamilyAnswerIn(Strict):
    person_id: uuid.UUID
    question: Literal["health_mastery", "wellbeing", "surplus_energy", "quality_of_life",
                      "trust_in_municipality"]
    answer: int = Field(ge=1, le=5,
                        description="1 = worst; at most the question's scale (trust: 4, others: 5)")
    occasion: Literal["start", "follow_up"]
    at: datetime


class FigureRead(BaseModel):
    value: Decimal | None
    numerator: int
    denominator: int
    families: int


class QuestionChangeRead(BaseModel):
    question: str
    scale: int
    respondents: int = Field(description="Adults who answered the question twice or more in the period")
    families: int
    average_at_start: Decimal | None
    average_now: Decimal | None
    change: Decimal | None = Field(description="Average now minus average at start, in points of the scale")
    improved: FigureRead = Field(description="Share of the respondents whose latest answer is higher")


class OutcomesRead(BaseModel):
    site_id: str | None
    period_start: date
    period_end: date
    parents_in_job_or_education: FigureRead
    flex_job_share_of_those: FigureRead
    early_retirement_pension: FigureRead
    absence_change: FigureRead
    network_yes_at_start: FigureRead
    network_yes_now: FigureRead
    leisure_jobs_change: FigureRead
    wellbeing_change: FigureRead
    children_using_fritidspas: FigureRead
    other_adults_in_job_or_education: FigureRead = Field(
        description="Spouses and adult children (intake's other_adult), apart from the parents")
    youth_education_started: FigureRead = Field(
        description="Members aged 15–25 who started a youth education in the period")
    family_reported: list[QuestionChangeRead] = Field(default_factory=list)


class ContactIn(Strict):
    kind: Literal["home_visit", "drop_in", "call", "joint_activity"]
    at: datetime
    staff_ids: list[uuid.UUID] = Field(min_length=1, max_length=10)
    participant_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    note: str = Field(default="", max_length=2000, description="Stays inside the team")


class ActionIn(Strict):
    description: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=100, description="A staff id or a family member's id")
    due_on: date | None = None


class ActionStatusIn(Strict):
    status: Literal["done", "dropped"]


class OpeningIn(Strict):
    site_id: Code = Field(max_length=50)
    employer: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=200)
    hours_per_week: Decimal = Field(gt=0, le=60, max_digits=5, decimal_places=2)
    kind: Literal["ordinary", "flex_job", "leisure_job", "education_place"]


class CandidateIn(Strict):
    family_id: uuid.UUID
    person_id: uuid.UUID


class DecisionIn(Strict):
    state: Literal["matched", "rejected", "placed", "ended"]
    starts_on: date | None = None


class FollowUpIn(Strict):
    on: date
    expectations_aligned: bool
    note: str = Field(default="", max_length=1000)


class LeisureJobIn(Strict):
    person_id: uuid.UUID
    started_on: date
    ended_on: date | None = None


class FritidspasIn(Strict):
    person_id: uuid.UUID
    activity: Literal["football", "swimming", "music", "scouts", "martial_arts", "other"]
    on: date


# --- what the work routes answer: documented, so clients (and the fuzz test) can rely on them ---

class StationingEndRead(BaseModel):
    id: uuid.UUID
    ends_on: date


class AbsenceRead(BaseModel):
    id: uuid.UUID
    staff_id: uuid.UUID
    deputy_id: uuid.UUID
    from_date: date
    to_date: date


class MeasurementRead(BaseModel):
    id: uuid.UUID
    kind: str
    person_id: uuid.UUID | None
    value: dict[str, Any] = Field(description="The measurement's fields, as recorded")
    at: datetime


class ContactRead(BaseModel):
    id: uuid.UUID
    kind: str
    at: datetime
    staff_ids: list[uuid.UUID]
    participant_ids: list[uuid.UUID]
    note: str


class ActionStatusRead(BaseModel):
    id: uuid.UUID
    status: str


class OpeningRead(BaseModel):
    id: uuid.UUID
    site_id: str
    employer: str
    role: str
    hours_per_week: Decimal
    kind: str
    status: str


class FollowUpRead(BaseModel):
    on: date
    expectations_aligned: bool
    note: str = ""


class MatchRead(BaseModel):
    id: uuid.UUID
    opening_id: uuid.UUID
    family_id: uuid.UUID
    person_id: uuid.UUID
    state: str
    starts_on: date | None
    follow_ups: list[FollowUpRead] = Field(default_factory=list)


class FollowUpsRead(BaseModel):
    match_id: uuid.UUID
    follow_ups: list[FollowUpRead]


ComparableMeasure = Literal["parents_in_job_or_education", "flex_job_share_of_those",
                            "early_retirement_pension", "network_yes_at_start", "network_yes_now",
                            "children_using_fritidspas",
                            "other_adults_in_job_or_education", "youth_education_started"]


class ComparisonFigureIn(Strict):
    measure: ComparableMeasure
    numerator: int = Field(ge=0, le=10_000_000)
    denominator: int = Field(ge=0, le=10_000_000)


class ComparisonCohortIn(Strict):
    code: Code = Field(description="A code naming the cohort (no free text), e.g. kontrolgruppe-gellerup")
    period_start: date
    period_end: date
    figures: list[ComparisonFigureIn] = Field(min_length=1, max_length=20)


class ComparisonCohortRead(BaseModel):
    id: uuid.UUID
    code: str
    period_start: date
    period_end: date
    source: Literal["aggregates", "records"]
    records: int | None
    loaded_at: datetime
    figures: list[ComparisonFigureIn]


class ShareRead(BaseModel):
    value: Decimal | None
    numerator: int
    denominator: int


class ComparisonRead(BaseModel):
    measure: str
    project: FigureRead
    comparison: ShareRead = Field(description="The cohort's share (its families are not known here)")
    difference_points: Decimal | None = Field(description="Project minus comparison, in percentage points")
    ratio: Decimal | None = Field(description="Project share divided by the comparison's")


class ComparisonReportRead(BaseModel):
    cohort: ComparisonCohortRead
    site_id: str | None
    measures: list[ComparisonRead]
