"""Consent per department and purpose, without I/O: grants, withdrawing one department, the receipt."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.intake import consent as rules
from services.intake.domain import IntakeConflict
from shared.consent import Purpose
from shared.departments import Department

HEALTH, SOCIAL, CHILDREN = (Department.HEALTH_AND_CARE, Department.SOCIAL_AND_EMPLOYMENT,
                            Department.CHILDREN_AND_YOUNG_PEOPLE)


def test_each_department_needs_a_purpose_that_applies_to_it_and_each_purpose_a_department() -> None:
    rules.check_grants([HEALTH, SOCIAL], [Purpose.COORDINATED_HELP])
    with pytest.raises(rules.GrantProblem) as problem:
        rules.check_grants([HEALTH, SOCIAL], [Purpose.EMPLOYMENT, Purpose.SCHOOL_COOPERATION])
    assert problem.value.fields == {"body.departments.0": "no purpose given applies to this department",
                                    "body.purposes.1": "this purpose applies to none of the departments"}
    with pytest.raises(rules.GrantProblem) as twice:
        rules.check_grants([HEALTH, HEALTH], [Purpose.HEALTH])
    assert list(twice.value.fields) == ["body.departments"]


def test_grants_give_each_department_its_own_purposes() -> None:
    grants = rules.grants([HEALTH.value, SOCIAL.value], ["coordinated_help", "health", "employment"],
                          [SOCIAL.value])
    assert grants == [rules.Grant(HEALTH, (Purpose.COORDINATED_HELP, Purpose.HEALTH)),
                      rules.Grant(SOCIAL, (Purpose.COORDINATED_HELP, Purpose.EMPLOYMENT), withdrawn=True)]


def test_one_department_is_withdrawn_at_a_time_and_never_twice() -> None:
    named = [HEALTH.value, SOCIAL.value]
    assert rules.withdraw(named, [], [HEALTH]) == [HEALTH.value]
    assert rules.live_departments(named, [HEALTH.value]) == [SOCIAL.value]
    with pytest.raises(IntakeConflict):
        rules.withdraw(named, [HEALTH.value], [HEALTH])
    with pytest.raises(rules.GrantProblem) as unknown:
        rules.withdraw(named, [], [CHILDREN])
    assert list(unknown.value.fields) == ["body.departments.0"]


def test_the_receipt_is_the_history_written_out_without_names_or_numbers() -> None:
    at = datetime(2026, 3, 2, 10, tzinfo=UTC)
    history = [rules.Entry("given", at, (HEALTH.value, SOCIAL.value)),
               rules.Entry("withdrawn", at.replace(month=5), (HEALTH.value,)),
               rules.Entry("renewed", at.replace(month=6), (SOCIAL.value,), date(2027, 6, 1))]
    text = rules.receipt(role="father", birth_year=1980, purposes=["coordinated_help", "employment"],
                         history=history)
    assert text.splitlines()[1:-1] == [
        "Consent of: father born 1980.",
        "2026-03-02: given for Sundhed og Omsorg (coordinated_help); Sociale Forhold og Beskæftigelse "
        "(coordinated_help, employment); valid until withdrawn.",
        "2026-05-02: withdrawn for Sundhed og Omsorg.",
        "2026-06-02: renewed for Sociale Forhold og Beskæftigelse; valid until 2027-06-01."]
