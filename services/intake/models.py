"""Tables and API schemas of the intake service, in a metadata of its own (its own database).

CPR numbers are stored only as AES-GCM ciphertext (``cpr_ciphertext``) and an HMAC look-up hash
(``cpr_hash``); the plain number never reaches a table, a log or a response.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint, text
from sqlalchemy.orm import registry
from sqlmodel import JSON, Column, Field, SQLModel

from shared.db import utc_column, utcnow


class IntakeTable(SQLModel, registry=registry()):
    """Base of every intake table: keeps its metadata apart from the other services'."""


metadata = IntakeTable.metadata



class Site(IntakeTable, table=True):
    __tablename__ = "sites"
    id: str = Field(primary_key=True, max_length=50)
    name: str = Field(max_length=200)
    capacity: int


class Household(IntakeTable, table=True):
    """A household screened as a candidate; once enrolled it is the family (same id)."""

    __tablename__ = "households"
    #: Keyset pagination: the list filters by site (and status) and orders by id, so each page
    #: reads its 50 rows from the index instead of filtering the primary key or sorting the site.
    #: The (site, status) prefix also serves the capacity and funnel counts. The waitlist, in
    #: order per site, gives a family's position (count of those ahead) and the next in line.
    __table_args__ = (Index("ix_households_site_status_id", "site_id", "status", "id"),
                      Index("ix_households_site_id", "site_id", "id"),
                      Index("ix_households_waitlist", "site_id", "waitlisted_at", "id",
                            postgresql_where=text("status = 'waitlisted'"),
                            sqlite_where=text("status = 'waitlisted'")))
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    site_id: str = Field(foreign_key="sites.id", max_length=50)
    address: str = Field(max_length=300)
    register_ref: str | None = Field(default=None, max_length=100, unique=True)
    status: str = Field(max_length=30, default="identified")
    #: The furthest funnel stage ever reached (the funnel counts it; the status forgets the past).
    furthest_stage: str | None = Field(default=None, max_length=30)
    eligible: bool | None = None
    screening: list[dict[str, object]] | None = Field(default=None, sa_column=Column(JSON))
    screened_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    waitlisted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    enrolled_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    exited_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    exit_reason: str | None = Field(default=None, max_length=30)
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Person(IntakeTable, table=True):
    __tablename__ = "persons"
    __table_args__ = (Index("ix_persons_household", "household_id"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    household_id: uuid.UUID = Field(foreign_key="households.id")
    role: str = Field(max_length=20)
    birth_date: date
    cpr_ciphertext: str = Field(max_length=200)
    cpr_hash: str = Field(max_length=64, index=True)
    cpr_is_replacement: bool = False
    unemployed_since: date | None = None
    lives_at_address: bool = True
    active: bool = True
    added_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class OutreachAttempt(IntakeTable, table=True):
    __tablename__ = "outreach_attempts"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    household_id: uuid.UUID = Field(foreign_key="households.id", index=True)
    at: datetime = Field(sa_column=utc_column())
    staff_id: str = Field(max_length=100)
    channel: str = Field(max_length=30, default="door_knock")
    outcome: str = Field(max_length=30)


class KnownStaff(IntakeTable, table=True):
    """A staff member of a site's team, learnt from casework's ``staff-stationed`` events: an
    outreach attempt names one of them (or the caller), so no free text reaches intake's topic."""

    __tablename__ = "known_staff"
    staff_id: uuid.UUID = Field(primary_key=True)
    site_id: str = Field(max_length=50)


class Consent(IntakeTable, table=True):
    """One consent record; its state changes are appended to ``consent_history``."""

    __tablename__ = "consents"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    household_id: uuid.UUID = Field(foreign_key="households.id", index=True)
    person_id: uuid.UUID = Field(foreign_key="persons.id")
    given_by_person_id: uuid.UUID = Field(foreign_key="persons.id")
    departments: list[str] = Field(sa_column=Column(JSON, nullable=False))
    purposes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    #: Departments the family has withdrawn from this consent (the others keep it).
    withdrawn: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False,
                                                                        server_default="[]"))
    state: str = Field(max_length=20, default="given")
    given_at: datetime = Field(sa_column=utc_column())
    expires_on: date | None = None


class ConsentHistory(IntakeTable, table=True):
    """Append-only: what happened to a consent, for which departments; the receipt is written
    from it. ``departments`` and ``expires_on`` are empty on entries from before they were kept."""

    __tablename__ = "consent_history"
    id: int | None = Field(default=None, primary_key=True)
    consent_id: uuid.UUID = Field(foreign_key="consents.id", index=True)
    state: str = Field(max_length=20)
    at: datetime = Field(sa_column=utc_column())
    by: str = Field(max_length=200)
    departments: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    expires_on: date | None = None


class ImportRun(IntakeTable, table=True):
    """One register import: a file is identified by its hash so a re-import changes nothing."""

    __tablename__ = "import_runs"
    __table_args__ = (UniqueConstraint("file_sha256", name="uq_import_file"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    file_sha256: str = Field(max_length=64)
    imported_rows: int
    rejected: list[dict[str, object]] = Field(sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class TargetArea(IntakeTable, table=True):
    """A site's target housing area: the addresses whose households may take part there."""

    __tablename__ = "target_areas"
    site_id: str = Field(foreign_key="sites.id", primary_key=True, max_length=50)
    name: str = Field(max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    updated_by: str = Field(max_length=200)


class TargetAreaStreet(IntakeTable, table=True):
    """One street of an area, whole or a house-number range; ``street_key`` is the normalised
    name the screening compares (see ``services.intake.areas.street_key``)."""

    __tablename__ = "target_area_streets"
    __table_args__ = (Index("ix_target_area_streets_site", "site_id", "street_key"),)
    id: int | None = Field(default=None, primary_key=True)
    site_id: str = Field(foreign_key="target_areas.site_id", max_length=50)
    street: str = Field(max_length=200)
    street_key: str = Field(max_length=200)
    from_number: int | None = None
    to_number: int | None = None
    side: str = Field(max_length=10, default="all")


class PartnerTip(IntakeTable, table=True):
    """A partner's tip: an address and a reason code for a site's team, no names and no CPR
    number. ``household_id`` is the household the team registered from it (or found already
    registered): that household was "identified by a partner's tip"."""

    __tablename__ = "partner_tips"
    __table_args__ = (Index("ix_partner_tips_site_state", "site_id", "state", "id"),
                      Index("ix_partner_tips_partner", "partner", "id"))
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    site_id: str = Field(foreign_key="sites.id", max_length=50)
    address: str = Field(max_length=300)
    reason: str = Field(max_length=40)
    #: The partner's token subject: it alone may read the tip's state.
    partner: str = Field(max_length=200)
    state: str = Field(max_length=20, default="received")
    outcome: str | None = Field(default=None, max_length=20)
    household_id: uuid.UUID | None = Field(default=None, foreign_key="households.id", index=True)
    received_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    followed_up_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
