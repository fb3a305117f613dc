"""Tables of the referrals service, in a metadata of its own (its own database)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Index
from sqlalchemy.orm import registry
from sqlmodel import JSON, Column, Field, SQLModel

from shared.db import utc_column, utcnow


class ReferralsTable(SQLModel, registry=registry()):
    """Base of every referrals table: keeps its metadata apart from the other services'."""


metadata = ReferralsTable.metadata



class Offer(ReferralsTable, table=True):
    __tablename__ = "offers"
    code: str = Field(primary_key=True, max_length=80)
    department: str = Field(max_length=60, index=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    required_fields: list[str] = Field(sa_column=Column(JSON, nullable=False))
    sla_days: int
    active: bool = True


class FamilySite(ReferralsTable, table=True):
    """Which site a family belongs to, from intake's enrolment (for team scoping), and whether it
    has left the programme (intake's exit is final: no new referrals after it)."""

    __tablename__ = "family_sites"
    family_id: uuid.UUID = Field(primary_key=True)
    site_id: str = Field(max_length=50)
    exited_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class FamilyMember(ReferralsTable, table=True):
    """A family's member by id and role, from intake's enrolment and added members: a referral
    may only name a person of its own family."""

    __tablename__ = "family_members"
    person_id: uuid.UUID = Field(primary_key=True)
    family_id: uuid.UUID = Field(index=True)
    role: str = Field(max_length=20)


class ConsentCover(ReferralsTable, table=True):
    """A consent naming a department, from intake's events; inactive once revoked.

    Whose consent it is and until when it runs decide whether it covers the family
    (``shared.consent.covered_departments``); ``person_role`` is empty for events from before intake
    sent it, and the member's role learnt from enrolment is used instead.
    """

    __tablename__ = "consent_cover"
    consent_id: uuid.UUID = Field(primary_key=True)
    department: str = Field(primary_key=True, max_length=60)
    family_id: uuid.UUID = Field(index=True)
    active: bool = True
    person_id: uuid.UUID | None = None
    person_role: str | None = Field(default=None, max_length=20)
    expires_on: date | None = None


class Referral(ReferralsTable, table=True):
    __tablename__ = "referrals"
    __table_args__ = (Index("ix_referrals_department_state", "target_department", "state"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = Field(index=True)
    site_id: str = Field(max_length=50)
    offer_code: str = Field(foreign_key="offers.code", max_length=80)
    target_department: str = Field(max_length=60)
    person_id: uuid.UUID | None = None
    priority: str = Field(max_length=10)
    reason: str = Field(max_length=1000, description="Team-internal")
    fields: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(max_length=20, default="draft")
    state_before_hold: str | None = Field(default=None, max_length=20)
    business_status: str | None = Field(default=None, max_length=80)
    outcome_code: str | None = Field(default=None, max_length=60)
    reason_code: str | None = Field(default=None, max_length=60)
    escalation_id: uuid.UUID | None = Field(default=None, unique=True)
    due_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    #: When the team sent it: from then on (and only then) the department has received it.
    sent_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    overdue_notified: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class ReferralHistory(ReferralsTable, table=True):
    __tablename__ = "referral_history"
    id: int | None = Field(default=None, primary_key=True)
    referral_id: uuid.UUID = Field(foreign_key="referrals.id", index=True)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    by: str = Field(max_length=200)
    reason_code: str | None = Field(default=None, max_length=60)
    at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
