"""Casework rules without I/O, and the outcomes report on a cohort shaped like the pilot."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from services.casework import domain as d

D = d.Discipline


def staff(discipline: d.Discipline, families: int = 0, fte: str = "1") -> d.StaffLoad:
    return d.StaffLoad(uuid.uuid4(), discipline, families, Decimal(fte))


def test_a_pair_has_two_different_disciplines_and_the_least_loaded_staff() -> None:
    busy_job = staff(D.JOB_CONSULTANT, 9)
    free_job, free_job_2 = staff(D.JOB_CONSULTANT, 1), staff(D.JOB_CONSULTANT, 0)
    health = staff(D.HEALTH_VISITOR, 3)
    first, second = d.choose_pair([busy_job, free_job, free_job_2, health])
    assert {first.discipline, second.discipline} == {D.JOB_CONSULTANT, D.HEALTH_VISITOR}
    assert first is free_job_2 and second is health


def test_load_is_counted_per_full_time_equivalent() -> None:
    half = staff(D.SOCIAL_WORKER, 3, "0.5")  # 6 per FTE
    full = staff(D.SOCIAL_WORKER, 4)          # 4 per FTE
    assert d.choose_pair([half, full, staff(D.PEDAGOGUE, 5)])[0] is full


def test_continuity_keeps_the_members_asked_for() -> None:
    kept = staff(D.PSYCHOLOGIST, 20)
    pair = d.choose_pair([staff(D.JOB_CONSULTANT), kept, staff(D.PSYCHOLOGIST)], keep=[kept.staff_id])
    assert kept in pair


def test_fewer_than_two_disciplines_gives_a_clear_error() -> None:
    with pytest.raises(d.NoEligiblePair, match="1 discipline"):
        d.choose_pair([staff(D.JOB_CONSULTANT), staff(D.JOB_CONSULTANT)])
    with pytest.raises(d.NoEligiblePair):
        d.choose_pair([])


def test_a_deputy_stands_in_for_an_absent_member() -> None:
    a, b, deputy = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert d.who_to_call((a, b), away={b}, deputies={b: deputy}) == [a, deputy]
    assert d.who_to_call((a, b), away=set(), deputies={}) == [a, b]


def test_goal_lifecycle() -> None:
    g = d.GoalState
    assert d.transition_goal(g.PROPOSED, g.ACTIVE) is g.ACTIVE
    assert d.transition_goal(g.ON_HOLD, g.ACTIVE) is g.ACTIVE
    for current, target in [(g.ACHIEVED, g.ACTIVE), (g.PROPOSED, g.ACHIEVED), (g.CANCELLED, g.ON_HOLD)]:
        with pytest.raises(d.CaseworkConflict):
            d.transition_goal(current, target)


def test_the_escalation_ladder_is_climbed_in_order() -> None:
    s = d.EscalationStep
    d.check_escalation([], s.TEAM_SPARRING, None)
    d.check_escalation([s.TEAM_SPARRING, s.COLLEAGUE_JOINS], s.FAGLIG_VEN, "sundhed-og-omsorg")
    with pytest.raises(d.CaseworkConflict, match="next escalation step is team_sparring"):
        d.check_escalation([], s.FAGLIG_VEN, "sundhed-og-omsorg")
    with pytest.raises(d.CaseworkConflict, match="name it"):
        d.check_escalation([s.TEAM_SPARRING, s.COLLEAGUE_JOINS], s.FAGLIG_VEN, None)


def pilot_cohort() -> tuple[list[d.AdultRecord], list[d.ChildRecord]]:
    """62 families, 97 adults: 50 in job or education (33 of them in flex jobs), 20 clarified to
    early retirement pension, 27 still unemployed; 16 answered no to the network question at the
    start and all answer yes now; 120 children whose absence fell from 10 % to 7.5 %."""
    families = [uuid.uuid4() for _ in range(62)]
    start = date(2019, 9, 1)
    now_status = ([d.EmploymentStatus.FLEX_JOB] * 33 + [d.EmploymentStatus.ORDINARY_JOB] * 12
                  + [d.EmploymentStatus.EDUCATION] * 5 + [d.EmploymentStatus.EARLY_RETIREMENT_PENSION] * 20
                  + [d.EmploymentStatus.UNEMPLOYED] * 27)
    adults = [d.AdultRecord(families[i % 62], (
        (start, d.EmploymentStatus.UNEMPLOYED), (date(2022, 3, 1), status)),
        (("start", 1 if i < 16 else 3), ("follow_up", 4))) for i, status in enumerate(now_status)]
    terms = (("2019-autumn", Decimal("10")), ("2023-spring", Decimal("7.5")))
    children = [d.ChildRecord(families[i % 62], terms) for i in range(120)]
    return adults, children


def test_outcomes_report_on_a_pilot_shaped_cohort_gives_the_figures_the_data_implies() -> None:
    adults, children = pilot_cohort()
    report = d.outcomes_report(adults, children, period_end=date(2023, 6, 30))
    assert report.parents_in_job_or_education == d.Figure(Decimal("51.5"), 50, 97, 62)  # ≈ 52 %
    assert report.flex_job_share_of_those == d.Figure(Decimal("66.0"), 33, 50, 50)        # ≈ 2 of 3
    assert report.early_retirement_pension == d.Figure(Decimal("20.6"), 20, 97, 62)       # ≈ 21 %
    assert report.absence_change.value == Decimal("-25.0")
    assert report.network_yes_at_start == d.Figure(Decimal("83.5"), 81, 97, 62)           # 1 in 6 said no
    assert report.network_yes_now == d.Figure(Decimal("100.0"), 97, 97, 62)


def test_the_report_uses_the_status_on_the_period_end_not_later_ones() -> None:
    adults, children = pilot_cohort()
    early = d.outcomes_report(adults, children, period_end=date(2021, 12, 31))
    assert early.parents_in_job_or_education.numerator == 0


def test_leisure_jobs_and_wellbeing_changes_are_relative_to_the_start() -> None:
    family = uuid.uuid4()
    jobs = [d.LeisureJob(family, date(2019, 1, 1)), d.LeisureJob(family, date(2019, 1, 1), date(2020, 1, 1)),
            d.LeisureJob(family, date(2021, 1, 1)), d.LeisureJob(family, date(2022, 1, 1)),
            d.LeisureJob(family, date(2022, 6, 1))]
    report = d.outcomes_report([], [], period_start=date(2019, 6, 1), period_end=date(2023, 6, 30),
                               leisure_jobs=jobs, wellbeing=[(family, [5, 6]), (uuid.uuid4(), [5, 6, 6])],
                               fritidspas=(2, 10, 2))
    assert report.leisure_jobs_change == d.Figure(Decimal("100.0"), 4, 2, 1)  # 2 at the start, 4 now
    assert report.wellbeing_change.value == Decimal("20.0")
    assert report.children_using_fritidspas == d.Figure(Decimal("20.0"), 2, 10, 2)


def test_job_matches_follow_the_team_decision() -> None:
    m = d.MatchState
    assert d.transition_match(m.PROPOSED, m.MATCHED) is m.MATCHED
    with pytest.raises(d.CaseworkConflict):
        d.transition_match(m.PROPOSED, m.PLACED)
