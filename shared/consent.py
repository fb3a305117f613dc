"""Consent rules every service applies alike: who is an adult, the purpose codes, what a consent covers.

Intake decides consent, referrals and casework act on it from intake's events. The rule "a
department is covered while an unexpired consent of an adult names it" was once written in each
of them; it is written here once so the services cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Literal, get_args

from shared.departments import Department

#: A family member's role, as intake registers it and its events carry it.
MemberRole = Literal["mother", "father", "other_adult", "child"]
#: Roles whose consent counts for the family and who count as parents in reports; a child's
#: consent (given by an adult for the child) alone covers nothing.
ADULT_ROLES: frozenset[str] = frozenset({"mother", "father", "other_adult"})
assert set(get_args(MemberRole)) > ADULT_ROLES, "ADULT_ROLES drifted from MemberRole"


def is_adult(role: str | None) -> bool:
    return role in ADULT_ROLES


class Purpose(StrEnum):
    """What a department may use the shared information for: a closed list of codes.

    Free text is not accepted so that no name, note or CPR number can travel with a consent,
    and so that a department can be told by code what it may do with the data.
    """

    COORDINATED_HELP = "coordinated_help"
    EMPLOYMENT = "employment"
    SOCIAL_SUPPORT = "social_support"
    HOUSING_AND_ECONOMY = "housing_and_economy"
    SCHOOL_COOPERATION = "school_cooperation"
    CHILD_WELLBEING = "child_wellbeing"
    HEALTH = "health"
    REHABILITATION = "rehabilitation"
    LEISURE_AND_CULTURE = "leisure_and_culture"
    CITIZEN_SERVICE = "citizen_service"


D = Department
#: Which department each purpose may be given to (a consent is per department and purpose).
PURPOSE_DEPARTMENTS: dict[Purpose, frozenset[Department]] = {
    Purpose.COORDINATED_HELP: frozenset(Department),
    Purpose.EMPLOYMENT: frozenset({D.SOCIAL_AND_EMPLOYMENT}),
    Purpose.SOCIAL_SUPPORT: frozenset({D.SOCIAL_AND_EMPLOYMENT}),
    Purpose.HOUSING_AND_ECONOMY: frozenset({D.SOCIAL_AND_EMPLOYMENT}),
    Purpose.SCHOOL_COOPERATION: frozenset({D.CHILDREN_AND_YOUNG_PEOPLE}),
    Purpose.CHILD_WELLBEING: frozenset({D.CHILDREN_AND_YOUNG_PEOPLE, D.HEALTH_AND_CARE}),
    Purpose.HEALTH: frozenset({D.HEALTH_AND_CARE}),
    Purpose.REHABILITATION: frozenset({D.HEALTH_AND_CARE, D.SOCIAL_AND_EMPLOYMENT}),
    Purpose.LEISURE_AND_CULTURE: frozenset({D.CULTURE_AND_CITIZEN_SERVICES, D.CHILDREN_AND_YOUNG_PEOPLE}),
    Purpose.CITIZEN_SERVICE: frozenset({D.CULTURE_AND_CITIZEN_SERVICES}),
}
assert set(PURPOSE_DEPARTMENTS) == set(Purpose), "a purpose without its departments"
#: The purpose codes as a literal type, for event contracts (a closed enum in the JSON Schema).
PurposeCode = Literal["coordinated_help", "employment", "social_support", "housing_and_economy",
                      "school_cooperation", "child_wellbeing", "health", "rehabilitation",
                      "leisure_and_culture", "citizen_service"]
assert set(get_args(PurposeCode)) == {p.value for p in Purpose}, "PurposeCode drifted"


def purposes_for(department: Department, purposes: Iterable[Purpose]) -> list[Purpose]:
    """The purposes among ``purposes`` that may be given to ``department``, in list order."""
    return [p for p in Purpose if p in set(purposes) and department in PURPOSE_DEPARTMENTS[p]]


@dataclass(frozen=True)
class Cover:
    """One live (given or renewed, not withdrawn) consent naming one department."""

    department: Department
    person_role: str | None
    expires_on: date | None


def covered_departments(covers: Iterable[Cover], *, today: date) -> set[Department]:
    """Departments covered for the family: named by an unexpired consent of an adult.

    The expiry day itself still counts. Expiry is checked here, not only when intake's scheduler
    announces it, so a late scheduler cannot keep a consent alive anywhere.
    """
    return {c.department for c in covers
            if is_adult(c.person_role) and (c.expires_on is None or c.expires_on >= today)}
