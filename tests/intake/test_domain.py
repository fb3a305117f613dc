"""Intake rules without I/O: eligibility explained, the funnel, consent and enrolment."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.intake import domain as d
from services.intake.areas import Area, StreetRange
from shared.departments import Department

TODAY = date(2026, 11, 22)
AREA = Area("Gellerup/Toveshøj", (StreetRange("Gudrunsvej"),))


def member(role: str, born: date = date(1985, 1, 1), since: date | None = None, home: bool = True):
    return d.MemberFacts(uuid.uuid4(), d.MemberRole(role), born, since, home)


def household(*members, address: str = "Gudrunsvej 10, 8220 Brabrand") -> d.HouseholdFacts:
    return d.HouseholdFacts("gellerup", tuple(members), address)


def failed(screening: d.Screening) -> dict[str, str]:
    return {c.code: c.explanation for c in screening.criteria if not c.met}


def test_a_family_meeting_all_criteria_is_eligible_and_says_why() -> None:
    result = d.screen(household(member("mother", since=date(2017, 3, 1)), member("child", date(2015, 5, 5))),
                      today=TODAY, area=AREA)
    assert result.eligible
    assert "mother unemployed since 2017-03-01 (9 years)" in result.criteria[2].explanation


def test_outside_a_target_area_fails_that_criterion_only() -> None:
    result = d.screen(household(member("father", since=date(2015, 1, 1)), member("child"),
                                address="Silkeborgvej 123, 8000 Aarhus C"), today=TODAY, area=AREA)
    assert failed(result) == {"target_area": "Silkeborgvej 123 is not in the Gellerup/Toveshøj area"}


def test_no_child_at_the_address_fails_that_criterion_only() -> None:
    result = d.screen(household(member("father", since=date(2015, 1, 1)), member("child", home=False)),
                      today=TODAY, area=AREA)
    assert failed(result) == {"child_at_address": "no child lives at the address"}


def test_unemployment_shorter_than_twelve_months_fails_that_criterion_only() -> None:
    result = d.screen(household(member("mother", since=date(2026, 1, 1)), member("child")),
                      today=TODAY, area=AREA)
    assert failed(result).keys() == {"parent_unemployed_12_months"}
    assert "2025-11-22" in failed(result)["parent_unemployed_12_months"]


def test_exactly_twelve_months_counts_even_from_a_leap_day() -> None:
    assert d.one_year_before(date(2028, 2, 29)) == date(2027, 2, 28)
    result = d.screen(household(member("mother", since=date(2025, 11, 22)), member("child")),
                      today=TODAY, area=AREA)
    assert result.eligible


def test_funnel_moves_by_outreach_outcomes_and_refuses_illegal_steps() -> None:
    s = d.HouseholdStatus
    assert d.status_after_attempt(s.IDENTIFIED, d.ContactOutcome.NOT_HOME) is s.NO_ANSWER
    assert d.status_after_attempt(s.NO_ANSWER, d.ContactOutcome.WANTS_TO_HEAR_MORE) is s.CONTACTED
    assert d.status_after_attempt(s.CONTACTED, d.ContactOutcome.AGREED) is s.INVITED
    with pytest.raises(d.IntakeConflict):
        d.status_after_attempt(s.ENROLLED, d.ContactOutcome.AGREED)
    with pytest.raises(d.IntakeConflict):
        d.transition(s.IDENTIFIED, s.ENROLLED)


def test_funnel_counts_are_cumulative_like_the_pilot() -> None:
    s = d.HouseholdStatus
    furthest = [s.ENROLLED] * 62 + [s.CONTACTED] * 100 + [s.IDENTIFIED] * 61 + [None] * 5
    counts = d.funnel_counts(furthest)
    assert counts == {"identified": 223, "contacted": 162, "invited": 62, "consented": 62, "enrolled": 62}


def walk(*statuses: d.HouseholdStatus) -> d.HouseholdStatus | None:
    reached: d.HouseholdStatus | None = None
    for status in statuses:
        reached = d.furthest_stage(reached, status)
    return reached


def test_the_furthest_stage_never_goes_back() -> None:
    s = d.HouseholdStatus
    assert walk(s.IDENTIFIED, s.CONTACTED, s.INVITED, s.DECLINED) is s.INVITED
    assert walk(s.IDENTIFIED, s.INVITED, s.CONSENTED, s.WAITLISTED, s.EXITED) is s.CONSENTED
    assert walk(s.IDENTIFIED, s.INVITED, s.CONSENTED, s.ENROLLED, s.EXITED) is s.ENROLLED
    assert walk(s.IDENTIFIED, s.DECLINED) is s.CONTACTED
    assert walk(s.IDENTIFIED, s.NOT_ELIGIBLE) is s.IDENTIFIED
    assert walk(s.NOT_ELIGIBLE) is None


def test_a_freed_place_goes_to_the_first_waiting_family_whose_consent_still_covers() -> None:
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    health = {Department.HEALTH_AND_CARE}
    assert d.next_from_waitlist([(first, set()), (second, health), (third, health)]) == second
    assert d.next_from_waitlist([(first, set())]) is None


def test_consent_rules() -> None:
    d.check_consent_giver(d.MemberRole.CHILD, d.MemberRole.MOTHER, same_person=False)
    with pytest.raises(d.IntakeConflict):
        d.check_consent_giver(d.MemberRole.FATHER, d.MemberRole.MOTHER, same_person=False)
    with pytest.raises(d.IntakeConflict):
        d.transition_consent(d.ConsentState.WITHDRAWN, d.ConsentState.RENEWED)
    consents = [d.ConsentFacts(d.MemberRole.MOTHER, frozenset({Department.HEALTH_AND_CARE}),
                               d.ConsentState.GIVEN, date(2027, 1, 1)),
                d.ConsentFacts(d.MemberRole.FATHER, frozenset({Department.SOCIAL_AND_EMPLOYMENT}),
                               d.ConsentState.GIVEN, date(2026, 1, 1)),
                d.ConsentFacts(d.MemberRole.CHILD, frozenset({Department.CHILDREN_AND_YOUNG_PEOPLE}),
                               d.ConsentState.GIVEN, None)]
    assert d.covered_departments(consents, today=TODAY) == {Department.HEALTH_AND_CARE}


def test_enrolment_needs_consent_and_room() -> None:
    with pytest.raises(d.IntakeConflict):
        d.decide_enrolment(has_consent=False, enrolled=0, capacity=75)
    assert d.decide_enrolment(has_consent=True, enrolled=74, capacity=75) is d.HouseholdStatus.ENROLLED
    assert d.decide_enrolment(has_consent=True, enrolled=75, capacity=75) is d.HouseholdStatus.WAITLISTED


def test_import_rows_are_validated_one_by_one() -> None:
    text = ("household_ref,site_id,address,cpr,role,unemployed_since,lives_at_address\n"
            "H1,gellerup,Gudrunsvej 1,010185-1234,mother,2016-01-01,yes\n"
            "H1,gellerup,Gudrunsvej 1,310299-1234,child,,yes\n"
            "H2,viby,Viby Torv 2,010185-2234,auntie,,yes\n")
    rows = list(d.read_import(text))
    assert isinstance(rows[0], d.ImportRow) and rows[0].role is d.MemberRole.MOTHER
    assert isinstance(rows[1], d.ImportRowError) and rows[1].line == 3 and "cpr" in rows[1].reason
    assert isinstance(rows[2], d.ImportRowError) and "role" in rows[2].reason
    assert "310299" not in rows[1].reason


def test_a_team_leader_imports_its_own_site_and_a_household_is_all_or_nothing() -> None:
    text = ("household_ref,site_id,address,cpr,role,unemployed_since,lives_at_address\n"
            "H1,gellerup,Gudrunsvej 1,010185-1234,mother,2016-01-01,yes\n"
            "H1,gellerup,Gudrunsvej 1,310299-1234,child,,yes\n"
            "H2,tilst,Tilst Vej 2,010185-2234,father,2016-01-01,yes\n"
            "H3,gellerup,Gudrunsvej 3,010185-3234,father,2016-01-01,yes\n")
    households, errors = d.group_households(d.read_import(text, site="gellerup"))
    assert list(households) == ["H3"]
    assert [(e.line, e.reason) for e in errors] == [
        (2, "household H1 is not imported because of line 3"), (3, errors[1].reason),
        (4, "site tilst is not yours")]
    assert errors[1].reason.startswith("cpr:")
    anywhere, _ = d.group_households(d.read_import(text))
    assert sorted(anywhere) == ["H2", "H3"]


@pytest.mark.parametrize("text", ["a\rb,c\n", "household_ref,site_id\n1,\"" + "x" * 200_000 + "\"\n"])
def test_a_file_the_csv_module_cannot_read_is_a_bad_row_not_a_crash(text: str) -> None:
    """Found by the fuzz test: a bare carriage return or an oversized field made the import a 500."""
    items = list(d.read_import(text))
    assert items and all(isinstance(item, d.ImportRowError) for item in items)
