"""Tables of the casework service, in a metadata of its own (its own database)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Index, Numeric, text
from sqlalchemy.orm import registry
from sqlmodel import JSON, Column, Field, SQLModel

from shared.db import utc_column, utcnow


class CaseworkTable(SQLModel, registry=registry()):
    """Base of every casework table: keeps its metadata apart from the other services'."""


metadata = CaseworkTable.metadata



class Staff(CaseworkTable, table=True):
    __tablename__ = "staff"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    site_id: str = Field(max_length=50, index=True)
    display_name: str = Field(max_length=200)
    discipline: str = Field(max_length=40)
    department: str = Field(max_length=60)
    role: str = Field(max_length=10)
    #: Set when an ended stationing means the person leaves the team (none carries on): from then
    #: on they get no new families, even before the day; a new stationing clears it.
    leaves_on: date | None = None


class Stationing(CaseworkTable, table=True):
    __tablename__ = "stationings"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    staff_id: uuid.UUID = Field(foreign_key="staff.id", index=True)
    site_id: str = Field(max_length=50)
    department: str = Field(max_length=60)
    fte: Decimal = Field(sa_column=Column(Numeric(4, 2), nullable=False))
    starts_on: date
    ends_on: date | None = None


class Family(CaseworkTable, table=True):
    """The family as casework knows it, from intake's events (same id as intake's household)."""

    __tablename__ = "families"
    #: The team's list filters by pair and status within a site; a new stationing looks for the
    #: site's pending families.
    __table_args__ = (Index("ix_families_site_pair_status", "site_id", "pair_status"),
                      Index("ix_families_site_status", "site_id", "status"))
    id: uuid.UUID = Field(primary_key=True)
    site_id: str = Field(max_length=50, index=True)
    status: str = Field(max_length=20, default="active")
    pair_status: str = Field(max_length=20, default="pending")
    wishes: str = Field(default="", max_length=4000)
    #: When intake enrolled the family and when it left (the outcomes report counts families
    #: taking part in its period).
    enrolled_on: date | None = None
    exited_on: date | None = None
    #: The departments the family's consent covers, as intake last announced it: casework's
    #: family events carry it, so only those departments see them on their topics.
    shared_with: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False,
                                                                          server_default="[]"))


class FamilyMember(CaseworkTable, table=True):
    __tablename__ = "family_members"
    person_id: uuid.UUID = Field(primary_key=True)
    family_id: uuid.UUID = Field(foreign_key="families.id", index=True)
    role: str = Field(max_length=20)
    birth_year: int


class Makkerpar(CaseworkTable, table=True):
    __tablename__ = "makkerpar"
    __table_args__ = (Index("uq_makkerpar_active", "family_id", unique=True,
                            postgresql_where=text("active"), sqlite_where=text("active")),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = Field(foreign_key="families.id", index=True)
    #: Indexed each, so a leaving staff member's families are found without a scan.
    first_staff_id: uuid.UUID = Field(foreign_key="staff.id", index=True)
    second_staff_id: uuid.UUID = Field(foreign_key="staff.id", index=True)
    active: bool = True
    reason_code: str = Field(max_length=30)
    reason_text: str | None = Field(default=None, max_length=500)
    assigned_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    ended_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    ended_reason: str | None = Field(default=None, max_length=30)


class Absence(CaseworkTable, table=True):
    __tablename__ = "absences"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    staff_id: uuid.UUID = Field(foreign_key="staff.id", index=True)
    deputy_id: uuid.UUID = Field(foreign_key="staff.id")
    from_date: date
    to_date: date


class Goal(CaseworkTable, table=True):
    __tablename__ = "goals"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = Field(foreign_key="families.id", index=True)
    person_id: uuid.UUID | None = None
    life_area: str = Field(max_length=40)
    own_words: str = Field(max_length=2000)
    state: str = Field(max_length=20, default="proposed")
    achievement: str | None = Field(default=None, max_length=20)
    review_on: date | None = None


class PlanVersion(CaseworkTable, table=True):
    """Each change to the plan stores a snapshot, so earlier versions can be read."""

    __tablename__ = "plan_versions"
    id: int | None = Field(default=None, primary_key=True)
    family_id: uuid.UUID = Field(foreign_key="families.id", index=True)
    version: int
    snapshot: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Escalation(CaseworkTable, table=True):
    __tablename__ = "escalations"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = Field(foreign_key="families.id", index=True)
    task_ref: str = Field(max_length=100)
    step: str = Field(max_length=20)
    target_department: str | None = Field(default=None, max_length=60)
    offer_code: str | None = Field(default=None, max_length=60)
    person_id: uuid.UUID | None = None
    priority: str = Field(max_length=10, default="routine")
    reason_code: str = Field(max_length=60)
    requested_by: uuid.UUID
    at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Measurement(CaseworkTable, table=True):
    """One outcome measurement; ``kind`` says which and ``value`` holds its fields."""

    __tablename__ = "measurements"
    __table_args__ = (Index("ix_measurements_family_kind", "family_id", "kind"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = Field(foreign_key="families.id")
    person_id: uuid.UUID | None = None
    kind: str = Field(max_length=30)
    value: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Contact(CaseworkTable, table=True):
    """A meeting with the family. The note is free text and stays inside the team."""

    __tablename__ = "contacts"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = Field(foreign_key="families.id", index=True)
    kind: str = Field(max_length=20)
    at: datetime = Field(sa_column=utc_column())
    staff_ids: list[str] = Field(sa_column=Column(JSON, nullable=False))
    participant_ids: list[str] = Field(sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", max_length=2000)


class Action(CaseworkTable, table=True):
    __tablename__ = "actions"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    goal_id: uuid.UUID = Field(foreign_key="goals.id", index=True)
    description: str = Field(max_length=500)
    owner: str = Field(max_length=100)
    due_on: date | None = None
    status: str = Field(max_length=10, default="open")


class JobOpening(CaseworkTable, table=True):
    __tablename__ = "job_openings"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    site_id: str = Field(max_length=50, index=True)
    employer: str = Field(max_length=200)
    role: str = Field(max_length=200)
    hours_per_week: Decimal = Field(sa_column=Column(Numeric(5, 2), nullable=False))
    kind: str = Field(max_length=20)
    status: str = Field(max_length=10, default="open")


class JobMatch(CaseworkTable, table=True):
    __tablename__ = "job_matches"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    opening_id: uuid.UUID = Field(foreign_key="job_openings.id", index=True)
    family_id: uuid.UUID = Field(foreign_key="families.id", index=True)
    person_id: uuid.UUID
    state: str = Field(max_length=10, default="proposed")
    starts_on: date | None = None


class EmployerFollowUp(CaseworkTable, table=True):
    """A check-in with the employer to align expectations and keep the placement."""

    __tablename__ = "employer_follow_ups"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    match_id: uuid.UUID = Field(foreign_key="job_matches.id", index=True)
    on: date
    expectations_aligned: bool
    note: str = Field(default="", max_length=1000)


class ComparisonCohort(CaseworkTable, table=True):
    """A comparison cohort (kontrolgruppe) an evaluator loaded: what it is and its period. Its
    records, when given, are summed on loading and never stored (only the aggregates are needed)."""

    __tablename__ = "comparison_cohorts"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(max_length=80)
    period_start: date
    period_end: date
    source: str = Field(max_length=12)
    records: int | None = None
    loaded_by: str = Field(max_length=200)
    loaded_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class ComparisonFigure(CaseworkTable, table=True):
    """One measure of a comparison cohort: how many of how many."""

    __tablename__ = "comparison_figures"
    cohort_id: uuid.UUID = Field(foreign_key="comparison_cohorts.id", primary_key=True)
    measure: str = Field(max_length=60, primary_key=True)
    numerator: int
    denominator: int
