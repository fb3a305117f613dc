"""Request and response bodies of the intake API. CPR goes in POST bodies only, never out."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.codes import Code
from shared.consent import Purpose
from shared.departments import Department

Role = Literal["mother", "father", "other_adult", "child"]


class Strict(BaseModel):
    """Unknown fields are refused (no mass assignment)."""

    model_config = ConfigDict(extra="forbid")


class MemberIn(Strict):
    cpr: str = Field(min_length=10, max_length=11, pattern=r"^\d{6}-?\d{4}$",
                     description="DDMMYY-SSSS or DDMMYYSSSS", examples=["010190-1234"])
    role: Role
    unemployed_since: date | None = Field(default=None, description="Adults: start of unemployment")
    lives_at_address: bool = True


class MemberUpdate(Strict):
    """Corrected facts about a member; each given field replaces the stored one. The CPR number
    and the role are not changed here (a wrong number is a new person)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"unemployed_since": "2024-02-01"}, {"lives_at_address": False}]})
    unemployed_since: date | None = Field(default=None, description="Adults: start of unemployment")
    lives_at_address: bool | None = None


class HouseholdIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "site_id": "gellerup", "address": "Gudrunsvej 10, 1. th, 8220 Brabrand",
        "members": [{"cpr": "0101851234", "role": "mother", "unemployed_since": "2016-03-01"},
                    {"cpr": "0505155678", "role": "child"}]}]})
    site_id: str = Field(max_length=50)
    address: str = Field(min_length=1, max_length=300)
    members: list[MemberIn] = Field(min_length=1, max_length=20)


class SiteIn(Strict):
    id: Code
    name: str = Field(min_length=1, max_length=200)
    capacity: int = Field(ge=0, le=10_000)


class SiteRead(BaseModel):
    id: str
    name: str
    capacity: int
    enrolled: int
    waitlisted: int


class MemberRead(BaseModel):
    id: uuid.UUID
    role: str
    birth_year: int
    cpr_masked: str = Field(description="Only the birth-date part; for recognising a person")
    unemployed_since: date | None
    lives_at_address: bool


class CriterionRead(BaseModel):
    code: str
    met: bool
    explanation: str
    state: Literal["met", "not_met", "unknown"] = Field(
        description="unknown: not decidable on the data (a site without a target area); not met")


class HouseholdRead(BaseModel):
    id: uuid.UUID
    site_id: str
    address: str
    status: str
    eligible: bool | None
    screening: list[CriterionRead]
    waitlist_position: int | None = None
    members: list[MemberRead]


class HouseholdSummary(BaseModel):
    id: uuid.UUID
    site_id: str
    status: str
    eligible: bool | None


class OutreachIn(Strict):
    at: datetime
    staff_id: str | None = Field(default=None, min_length=1, max_length=100, description=(
        "Who made the attempt: a staff member of the household's site (casework's staff id) or "
        "the caller's own subject; absent, the caller"))
    outcome: Literal["not_home", "declined", "wants_to_hear_more", "agreed"]
    channel: Literal["door_knock", "phone", "letter", "meeting"] = "door_knock"


class ConsentIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "person_id": "5d0c3e1a-77b2-4c8e-a1f4-2e9b6d3c8a01",
        "given_by_person_id": "5d0c3e1a-77b2-4c8e-a1f4-2e9b6d3c8a01",
        "departments": ["sundhed-og-omsorg", "boern-og-unge"],
        "purposes": ["coordinated_help", "health", "school_cooperation"], "expires_on": "2027-03-01"}]})
    person_id: uuid.UUID
    given_by_person_id: uuid.UUID
    departments: list[Department] = Field(min_length=1, max_length=4)
    purposes: list[Purpose] = Field(min_length=1, max_length=10, description=(
        "Codes from the closed list; each department gets the purposes that apply to it"))
    expires_on: date | None = None


class WithdrawIn(Strict):
    """Withdraw only these departments from the consent; without a body the whole consent."""

    departments: list[Department] = Field(min_length=1, max_length=4)


class GrantRead(BaseModel):
    department: str
    purposes: list[str]
    withdrawn: bool


class ConsentHistoryRead(BaseModel):
    state: str
    at: datetime
    departments: list[str]
    expires_on: date | None


class ConsentRead(BaseModel):
    id: uuid.UUID
    person_id: uuid.UUID
    given_by_person_id: uuid.UUID
    departments: list[str] = Field(description="Every department the consent named")
    purposes: list[str]
    grants: list[GrantRead] = Field(description="Per department: its purposes, and whether withdrawn")
    state: str
    given_at: datetime
    expires_on: date | None
    history: list[ConsentHistoryRead] = Field(description="Append-only; the receipt is written from it")
    receipt: str


class RenewIn(Strict):
    expires_on: date | None = None


class ExitIn(Strict):
    reason: Literal["goals_reached", "moved_away", "withdrew", "other"]


class FunnelRead(BaseModel):
    site_id: str | None
    counts: dict[str, int]
    identified_by_partner_tip: dict[str, int] = Field(default_factory=dict, description=(
        "Of those, the households identified by a partner's tip (a tip the team followed up as "
        "registered), counted the same way: how many reached at least each stage."))


class ImportRejectedRow(BaseModel):
    line: int
    reason: str


class ImportReport(BaseModel):
    already_imported: bool
    households: int
    persons: int
    rejected: list[ImportRejectedRow]


class ExpiryReport(BaseModel):
    expired: int = Field(description="How many consents this run expired")


class AreaStreetIn(Strict):
    street: str = Field(min_length=1, max_length=200, examples=["Gudrunsvej"])
    from_number: int | None = Field(default=None, ge=1, le=99_999,
                                    description="First house number (included); none: the whole street")
    to_number: int | None = Field(default=None, ge=1, le=99_999, description="Last house number (included)")
    side: Literal["all", "odd", "even"] = "all"


class AreaIn(Strict):
    """The whole area: it replaces the site's streets."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Gellerup/Toveshøj", "streets": [
            {"street": "Gudrunsvej"}, {"street": "Dortesvej", "from_number": 1, "to_number": 61,
                                       "side": "odd"}]}]})
    name: str = Field(min_length=1, max_length=200)
    streets: list[AreaStreetIn] = Field(min_length=1, max_length=2000)


class AreaStreetRead(BaseModel):
    street: str
    from_number: int | None
    to_number: int | None
    side: str


class AreaRead(BaseModel):
    site_id: str
    name: str
    updated_at: datetime
    streets: list[AreaStreetRead]


class ChildrenCountRead(BaseModel):
    children: int = Field(description="Children living at the address")
    families: int | None = Field(description="Families with that many; null when withheld (small number)")


class ProfileRead(BaseModel):
    """The cohort enrolled in the period, at enrolment; aggregates only (see docs/services.md)."""

    site_id: str | None
    period_start: date
    period_end: date
    small_number_limit: int = Field(description="Counts from 1 to this minus one are withheld")
    suppressed: bool = Field(description="The cohort is too small to show anything but zero")
    families: int | None
    adults: int | None
    children: int | None
    average_children_per_family: Decimal | None
    children_per_family: list[ChildrenCountRead]
    unemployed_parents: int | None
    unemployment_days_total: int | None = Field(
        description="Sum over the unemployed parents of the days from unemployment start to enrolment")
    average_unemployment_years: Decimal | None
