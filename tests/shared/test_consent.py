"""The consent rules written once for every service: adults, purpose codes, cover."""

from __future__ import annotations

from datetime import date

from shared.consent import PURPOSE_DEPARTMENTS, Cover, Purpose, covered_departments, is_adult, purposes_for
from shared.departments import Department


def test_only_an_unexpired_consent_of_an_adult_covers() -> None:
    health, children = Department.HEALTH_AND_CARE, Department.CHILDREN_AND_YOUNG_PEOPLE
    social, culture = Department.SOCIAL_AND_EMPLOYMENT, Department.CULTURE_AND_CITIZEN_SERVICES
    today = date(2026, 11, 22)
    covers = [Cover(health, "mother", today), Cover(children, "child", None),
              Cover(social, "father", date(2026, 11, 21)), Cover(culture, None, None)]
    assert covered_departments(covers, today=today) == {health}


def test_adults_are_the_parents_and_other_adults() -> None:
    assert [r for r in ("mother", "father", "other_adult", "child", None) if is_adult(r)] == [
        "mother", "father", "other_adult"]


def test_every_purpose_names_the_departments_it_may_be_given_to() -> None:
    assert all(PURPOSE_DEPARTMENTS[p] for p in Purpose)
    health = Department.HEALTH_AND_CARE
    assert purposes_for(health, [Purpose.EMPLOYMENT, Purpose.HEALTH, Purpose.COORDINATED_HELP]) == [
        Purpose.COORDINATED_HELP, Purpose.HEALTH]
