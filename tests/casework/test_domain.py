"""Casework rules without I/O, and the outcomes report on a cohort shaped like the pilot."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
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
    everyone = {a, b, deputy}
    assert d.who_to_call((a, b), away={b}, deputies={b: deputy}, stationed=everyone) == [a, deputy]
    assert d.who_to_call((a, b), away=set(), deputies={}, stationed=everyone) == [a, b]
    assert d.who_to_call((a, b), away={b}, deputies={b: a}, stationed=everyone) == [a]


def test_who_to_call_never_names_someone_who_has_left() -> None:
    a, b, deputy = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert d.who_to_call((a, b), away=set(), deputies={}, stationed={a}) == [a]
    assert d.who_to_call((a, b), away={b}, deputies={b: deputy}, stationed={a, b}) == [a]


def period(start: str, end: str | None = None) -> d.StationingPeriod:
    return d.StationingPeriod(uuid.uuid4(), date.fromisoformat(start),
                              date.fromisoformat(end) if end else None)


def test_a_new_stationing_ends_the_running_one_and_refuses_overlaps() -> None:
    running = period("2026-01-01")
    assert d.stationing_to_cut([running], date(2026, 7, 1)) == running
    assert d.stationing_to_cut([period("2026-01-01", "2026-03-31")], date(2026, 7, 1)) is None
    with pytest.raises(d.CaseworkConflict, match="already stationed from 2026-01-01"):
        d.stationing_to_cut([running], date(2026, 1, 1))
    with pytest.raises(d.CaseworkConflict, match="next stationing starts 2026-07-01"):
        first = period("2026-01-01", "2026-06-30")
        d.check_end([first, period("2026-07-01")], first, date(2026, 8, 31))


def test_a_person_leaves_when_no_stationing_carries_on() -> None:
    first, then = period("2026-01-01", "2026-06-30"), period("2026-07-01")
    assert not d.leaves_site([first, then], date(2026, 6, 30))  # an FTE change
    assert d.leaves_site([first], date(2026, 6, 30))
    assert d.leaves_site([first, period("2026-09-01")], date(2026, 6, 30))  # back later: gone meanwhile


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


START, END = date(2019, 9, 1), date(2023, 6, 30)


def pilot_cohort() -> tuple[list[d.AdultRecord], list[d.ChildRecord]]:
    """62 families, 97 adults: 50 in job or education (33 of them in flex jobs), 20 clarified to
    early retirement pension, 27 still unemployed; 16 answered no to the network question at the
    start and all answer yes now; 120 children whose absence fell from 10 % to 7.5 %."""
    families = [uuid.uuid4() for _ in range(62)]
    now_status = ([d.EmploymentStatus.FLEX_JOB] * 33 + [d.EmploymentStatus.ORDINARY_JOB] * 12
                  + [d.EmploymentStatus.EDUCATION] * 5 + [d.EmploymentStatus.EARLY_RETIREMENT_PENSION] * 20
                  + [d.EmploymentStatus.UNEMPLOYED] * 27)
    adults = [d.AdultRecord(families[i % 62], (
        (START, d.EmploymentStatus.UNEMPLOYED), (date(2022, 3, 1), status)),
        (d.NetworkAnswer(date(2019, 10, 1), "start", 1 if i < 16 else 3),
         d.NetworkAnswer(date(2023, 3, 1), "follow_up", 4))) for i, status in enumerate(now_status)]
    terms = (("2019-autumn", Decimal("10")), ("2023-spring", Decimal("7.5")))
    children = [d.ChildRecord(families[i % 62], terms) for i in range(120)]
    return adults, children


def test_outcomes_report_on_a_pilot_shaped_cohort_gives_the_figures_the_data_implies() -> None:
    adults, children = pilot_cohort()
    report = d.outcomes_report(adults, children, period_start=START, period_end=END)
    assert report.parents_in_job_or_education == d.Figure(Decimal("51.5"), 50, 97, 62)  # ≈ 52 %
    assert report.flex_job_share_of_those == d.Figure(Decimal("66.0"), 33, 50, 50)        # ≈ 2 of 3
    assert report.early_retirement_pension == d.Figure(Decimal("20.6"), 20, 97, 62)       # ≈ 21 %
    assert report.absence_change.value == Decimal("-25.0")
    assert report.network_yes_at_start == d.Figure(Decimal("83.5"), 81, 97, 62)           # 1 in 6 said no
    assert report.network_yes_now == d.Figure(Decimal("100.0"), 97, 97, 62)


def test_the_report_uses_the_status_on_the_period_end_not_later_ones() -> None:
    adults, children = pilot_cohort()
    early = d.outcomes_report(adults, children, period_start=START, period_end=date(2021, 12, 31))
    assert early.parents_in_job_or_education.numerator == 0


def test_answers_scores_and_terms_outside_the_period_do_not_count() -> None:
    """The network, wellbeing and absence figures look only at what was recorded in the period:
    a start answer before it and a follow-up after it are not its start and end."""
    family = uuid.uuid4()
    adult = d.AdultRecord(family, (), (d.NetworkAnswer(date(2024, 12, 1), "start", 1),
                                       d.NetworkAnswer(date(2025, 3, 1), "follow_up", 2),
                                       d.NetworkAnswer(date(2025, 11, 1), "follow_up", 3),
                                       d.NetworkAnswer(date(2026, 2, 1), "follow_up", 4)))
    child = d.ChildRecord(family, (("2024-autumn", Decimal("30")), ("2025-spring", Decimal("10")),
                                   ("2025-autumn", Decimal("5")), ("2026-spring", Decimal("1"))))
    scores = [d.Assessment(family, date(2024, 12, 1), 2), d.Assessment(family, date(2025, 2, 1), 4),
              d.Assessment(family, date(2025, 12, 1), 5), d.Assessment(family, date(2026, 1, 2), 9)]
    report = d.outcomes_report([adult], [child], period_start=date(2025, 1, 1), period_end=date(2025, 12, 31),
                               wellbeing=scores)
    assert report.network_yes_at_start == d.Figure(Decimal("0.0"), 0, 1, 1)  # 2 in March, not 1 in 2024
    assert report.network_yes_now == d.Figure(Decimal("100.0"), 1, 1, 1)     # 3 in November, not 4 in 2026
    assert report.absence_change.value == Decimal("-50.0")                    # 10 → 5, not 30 → 1
    assert report.wellbeing_change.value == Decimal("25.0")                   # 4 → 5, not 2 → 9
    assert report.leisure_jobs_change.denominator == 0


def test_a_family_counts_in_the_periods_it_took_part_in() -> None:
    start, end = date(2025, 1, 1), date(2025, 12, 31)
    assert d.enrolled_in_period(date(2023, 5, 1), None, period_start=start, period_end=end)
    assert d.enrolled_in_period(date(2025, 12, 31), None, period_start=start, period_end=end)
    assert d.enrolled_in_period(date(2023, 5, 1), start, period_start=start, period_end=end)
    assert not d.enrolled_in_period(end + timedelta(days=1), None, period_start=start, period_end=end)
    assert not d.enrolled_in_period(date(2023, 5, 1), start - timedelta(days=1), period_start=start,
                                    period_end=end)
    assert not d.enrolled_in_period(None, None, period_start=start, period_end=end)


def scores(family: uuid.UUID, values: list[int]) -> list[d.Assessment]:
    return [d.Assessment(family, date(2020, 1, 1) + timedelta(days=100 * i), v) for i, v in enumerate(values)]


def test_leisure_jobs_and_wellbeing_changes_are_relative_to_the_start() -> None:
    family = uuid.uuid4()
    jobs = [d.LeisureJob(family, date(2019, 1, 1)), d.LeisureJob(family, date(2019, 1, 1), date(2020, 1, 1)),
            d.LeisureJob(family, date(2021, 1, 1)), d.LeisureJob(family, date(2022, 1, 1)),
            d.LeisureJob(family, date(2022, 6, 1))]
    report = d.outcomes_report([], [], period_start=date(2019, 6, 1), period_end=date(2023, 6, 30),
                               leisure_jobs=jobs,
                               wellbeing=scores(family, [5, 6]) + scores(uuid.uuid4(), [5, 6, 6]),
                               fritidspas=(2, 10, 2))
    assert report.leisure_jobs_change == d.Figure(Decimal("100.0"), 4, 2, 1)  # 2 at the start, 4 now
    assert report.wellbeing_change.value == Decimal("20.0")
    assert report.children_using_fritidspas == d.Figure(Decimal("20.0"), 2, 10, 2)


def test_job_matches_follow_the_team_decision() -> None:
    m = d.MatchState
    assert d.transition_match(m.PROPOSED, m.MATCHED) is m.MATCHED
    with pytest.raises(d.CaseworkConflict):
        d.transition_match(m.PROPOSED, m.PLACED)
