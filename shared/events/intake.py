"""Events of the intake service. No CPR number, name, address or free text in any of them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from shared.codes import Code
from shared.consent import MemberRole, PurposeCode
from shared.departments import DepartmentSlug
from shared.events.registry import FamilyEvent, event, examples

F = "0b6f7c2e-8a51-4f0e-9a43-3f1d2c9b7a10"
P1 = "5d0c3e1a-77b2-4c8e-a1f4-2e9b6d3c8a01"
P2 = "9a7e2b44-1c3d-4e5f-8a6b-7c8d9e0f1a22"
Role = MemberRole



class CriterionOutcome(BaseModel):
    code: Code
    met: bool


class Member(BaseModel):
    person_id: UUID
    role: Role
    birth_year: int


@event("intake", "household-screened")
class HouseholdScreened(FamilyEvent):
    """A candidate household was screened against the eligibility criteria."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "eligible": True, "criteria": [
        {"code": "target_area", "met": True}, {"code": "child_at_address", "met": True},
        {"code": "parent_unemployed_12_months", "met": True}]})
    eligible: bool
    criteria: list[CriterionOutcome]


@event("intake", "outreach-attempt-recorded")
class OutreachAttemptRecorded(FamilyEvent):
    """Staff knocked on the door (or called); the outcome moves the funnel."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "attempt_id": P2,
                              "at": "2026-03-02T16:30:00Z", "staff_id": "staff-17",
                              "outcome": "wants_to_hear_more", "status": "contacted"})
    attempt_id: UUID
    at: datetime
    staff_id: str
    outcome: Literal["not_home", "declined", "wants_to_hear_more", "agreed"]
    status: str


class ConsentGivenBase(FamilyEvent):
    """What every version of ``consent-given`` carries; consumers handle the versions alike."""

    consent_id: UUID
    person_id: UUID
    departments: list[DepartmentSlug]
    expires_on: date | None = None
    #: Whose consent it is: only an adult's covers the family. Optional because it was added
    #: later; a consumer without it falls back on the role from ``family-enrolled``.
    person_role: Role | None = None
    #: The departments the family's consent covers after this change (services that stamp
    #: ``shared_with`` on their own family events keep their copy from it).
    covered_after: list[DepartmentSlug] | None = None


@event("intake", "consent-given")
class ConsentGiven(ConsentGivenBase):
    """A family member's consent to share information with the named departments (version 1:
    no longer produced; its purposes were free text. Consumers still accept it for replays)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "consent_id": P2, "person_id": P1,
                              "person_role": "mother",
                              "departments": ["sundhed-og-omsorg", "sociale-forhold-og-beskaeftigelse"],
                              "purposes": ["coordinated_help"], "expires_on": "2027-03-01"})
    purposes: list[str]


class Grant(BaseModel):
    """One department of a consent and the purpose codes it is given for."""

    department: DepartmentSlug
    purposes: list[PurposeCode]


@event("intake", "consent-given", version=2)
class ConsentGivenV2(ConsentGivenBase):
    """A family member's consent (or its renewal) to share with the named departments, each for
    purposes from the closed list of codes. ``departments`` are those it covers now (a department
    withdrawn from the consent is no longer named)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "consent_id": P2, "person_id": P1,
                              "person_role": "mother",
                              "departments": ["sundhed-og-omsorg", "sociale-forhold-og-beskaeftigelse"],
                              "purposes": ["coordinated_help", "health"],
                              "grants": [{"department": "sundhed-og-omsorg",
                                          "purposes": ["coordinated_help", "health"]},
                                         {"department": "sociale-forhold-og-beskaeftigelse",
                                          "purposes": ["coordinated_help"]}],
                              "expires_on": "2027-03-01",
                              "covered_after": ["sociale-forhold-og-beskaeftigelse", "sundhed-og-omsorg"]})
    purposes: list[PurposeCode]
    grants: list[Grant]


@event("intake", "consent-revoked")
class ConsentRevoked(FamilyEvent):
    """A consent was withdrawn: act on it at once (stop sharing with these departments)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "consent_id": P2, "person_id": P1,
                              "departments": ["sundhed-og-omsorg"], "state": "withdrawn"})
    consent_id: UUID
    person_id: UUID
    departments: list[DepartmentSlug]
    state: Literal["withdrawn", "expired"] = "withdrawn"
    covered_after: list[DepartmentSlug] | None = None


@event("intake", "family-enrolled")
class FamilyEnrolled(FamilyEvent):
    """A family joined the programme at a site (members by id, role and birth year only)."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "members": [
        {"person_id": P1, "role": "mother", "birth_year": 1985},
        {"person_id": P2, "role": "child", "birth_year": 2015}],
        "shared_with": ["sundhed-og-omsorg", "boern-og-unge"]})
    members: list[Member]


@event("intake", "family-waitlisted")
class FamilyWaitlisted(FamilyEvent):
    """The site is full: the family waits for a place, in order."""

    model_config = examples({"family_id": F, "site_id": "tilst", "position": 3})
    position: int


@event("intake", "member-added")
class MemberAdded(FamilyEvent):
    """A spouse or adult child at the address joined the family later."""

    model_config = examples({"family_id": F, "site_id": "viby", "member": {
        "person_id": P2, "role": "other_adult", "birth_year": 2004},
        "shared_with": ["sociale-forhold-og-beskaeftigelse"]})
    member: Member


@event("intake", "family-exited")
class FamilyExited(FamilyEvent):
    """A family left the programme; its place is free."""

    model_config = examples({"family_id": F, "site_id": "gellerup", "reason": "goals_reached",
                              "shared_with": ["sundhed-og-omsorg"]})
    reason: Literal["goals_reached", "moved_away", "withdrew", "other"]
