"""Tables of the finance service, in a metadata of its own (its own database). Money in øre."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Index, Numeric, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Column, Field, SQLModel

from shared.db import utc_column, utcnow


class FinanceTable(SQLModel, registry=registry()):
    """Base of every finance table: keeps its metadata apart from the other services'."""


metadata = FinanceTable.metadata


def _ore() -> Column:  # type: ignore[type-arg]
    return Column(BigInteger, nullable=False)


class SiteBudget(FinanceTable, table=True):
    __tablename__ = "budgets"
    site_id: str = Field(primary_key=True, max_length=50)
    year: int = Field(primary_key=True)
    total_ore: int = Field(sa_column=_ore())
    pool_ore: int = Field(sa_column=_ore())


class StationingCopy(FinanceTable, table=True):
    """Casework's stationings, keyed by their id: a duplicate event cannot count twice."""

    __tablename__ = "stationings"
    id: uuid.UUID = Field(primary_key=True)
    staff_id: uuid.UUID
    site_id: str = Field(max_length=50, index=True)
    department: str = Field(max_length=60)
    fte: Decimal = Field(sa_column=Column(Numeric(4, 2), nullable=False))
    starts_on: date
    ends_on: date | None = None
    #: The casework event that last changed this stationing (CloudEvents id and time), so an
    #: allocation can say which roster change it includes.
    changed_by: str | None = Field(default=None, max_length=100)
    changed_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class LedgerEntry(FinanceTable, table=True):
    """Append-only: a correction is a reversal plus a new entry; nothing is ever updated."""

    __tablename__ = "ledger"
    __table_args__ = (Index("ix_ledger_site_department", "site_id", "department", "period_start"),
                      UniqueConstraint("reverses", name="uq_ledger_reverses"))
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    site_id: str = Field(max_length=50)
    department: str = Field(max_length=60)
    period_start: date
    period_end: date
    amount_ore: int = Field(sa_column=_ore())
    kind: str = Field(max_length=12)
    reverses: uuid.UUID | None = None
    issued_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class FamilySavings(FinanceTable, table=True):
    __tablename__ = "family_savings"
    family_id: uuid.UUID = Field(primary_key=True)
    site_id: str = Field(max_length=50, index=True)
    baseline_ore: int | None = Field(default=None, sa_column=Column(BigInteger))
    current_ore: int | None = Field(default=None, sa_column=Column(BigInteger))


class AdultStatus(FinanceTable, table=True):
    """An adult's first recorded (at enrolment) and latest employment status, from casework."""

    __tablename__ = "adult_status"
    person_id: uuid.UUID = Field(primary_key=True)
    family_id: uuid.UUID = Field(index=True)
    site_id: str = Field(max_length=50)
    first_status: str = Field(max_length=30)
    first_since: date
    current_status: str = Field(max_length=30)
    current_since: date


class FamilyAreaCost(FinanceTable, table=True):
    """A family's yearly public expenditure in one area, before enrolment (baseline) and now, as
    entered by finance staff or imported from the economy system; the latest figure holds."""

    __tablename__ = "family_area_costs"
    __table_args__ = (Index("ix_family_area_costs_site", "site_id"),)
    family_id: uuid.UUID = Field(primary_key=True)
    area: str = Field(max_length=20, primary_key=True)
    site_id: str = Field(max_length=50)
    baseline_ore: int = Field(sa_column=_ore())
    current_ore: int = Field(sa_column=_ore())
    source: str = Field(max_length=10)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class ExternalGrant(FinanceTable, table=True):
    """External funding of a site (e.g. a foundation's grant): its amount over a period, and what
    it pays for (``services.finance.grants.PaysFor``). Codes only: no person is named."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("site_id", "code", name="uq_grants_site_code"),
                      Index("ix_grants_site_period", "site_id", "period_start"))
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    site_id: str = Field(max_length=50)
    code: str = Field(max_length=80)
    funder: str = Field(max_length=80)
    period_start: date
    period_end: date
    amount_ore: int = Field(sa_column=_ore())
    pays_for: str = Field(max_length=20)
    recorded_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
