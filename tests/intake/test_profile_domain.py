"""The cohort profile without I/O: each figure, its rounding, and the small-number rule."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.intake.profile import FamilyAtEnrolment, distribution, profile, unemployment_days

DAY = date(2026, 3, 1)


def family(children: int, adults: int = 1, *days: int) -> FamilyAtEnrolment:
    return FamilyAtEnrolment(DAY, adults, children, tuple(days))


def test_each_figure_is_the_documented_ratio_rounded_half_up() -> None:
    # 5 families, 8 adults, 13 children at home, 6 unemployed adults.
    cohort = [family(1, 2, 3653, 1000), family(2, 1, 365), family(2, 2, 730, 1461), family(3, 1),
              family(5, 2, 3287)]
    result = profile(cohort)
    assert (result.suppressed, result.families, result.adults, result.children) == (False, 5, 8, 13)
    assert result.average_children_per_family == Decimal("2.6")  # 13 / 5
    assert (result.unemployed_parents, result.unemployment_days_total) == (6, 10496)
    # 10496 / (6 × 365.25) = 4.7894… → 4.8
    assert result.average_unemployment_years == Decimal("4.8")


def test_an_exact_half_is_rounded_up() -> None:
    # 20 families, 21 children at home: 1.05 → 1.1. 80 unemployed adults, 1461 days in all:
    # 1461 / (80 × 365.25) = 0.05 exactly → 0.1 (half up; half to even would give 0.0).
    cohort = [family(1, 4, 18, 18, 18, 18) for _ in range(19)] + [family(2, 4, 18, 18, 18, 39)]
    result = profile(cohort)
    assert (result.children, result.unemployment_days_total, result.unemployed_parents) == (21, 1461, 80)
    assert result.average_children_per_family == Decimal("1.1")
    assert result.average_unemployment_years == Decimal("0.1")


def test_a_cohort_of_one_to_four_families_shows_nothing_and_zero_shows_zeros() -> None:
    small = profile([family(2, 1, 4000) for _ in range(4)])
    assert small.suppressed and small.families is None and small.adults is None
    assert small.average_unemployment_years is None and small.children_per_family == ()
    empty = profile([])
    assert (empty.suppressed, empty.families, empty.adults, empty.unemployed_parents) == (False, 0, 0, 0)
    assert empty.average_unemployment_years is None and empty.average_children_per_family is None


def test_fewer_than_five_unemployed_parents_withholds_their_number_and_average() -> None:
    result = profile([family(2, 1, 4000)] + [family(2, 1) for _ in range(4)])
    assert (result.unemployed_parents, result.unemployment_days_total, result.average_unemployment_years) \
        == (None, None, None)
    assert result.families == 5


def test_small_cells_of_the_distribution_are_withheld_and_a_lone_one_gets_a_companion() -> None:
    # 1 child: 6 families; 2: 5; 7: 1. Withholding only "7" would let 12 − 6 − 5 give it away, so
    # the smallest other non-empty cell ("2", 5 families) is withheld with it.
    assert distribution([1] * 6 + [2] * 5 + [7]) == (
        (0, 0), (1, 6), (2, None), (3, 0), (4, 0), (5, 0), (6, 0), (7, None))
    # Two small cells hide each other already.
    assert distribution([2] * 5 + [3, 7]) == ((0, 0), (1, 0), (2, 5), (3, None), (4, 0), (5, 0),
                                              (6, 0), (7, None))
    assert distribution([2] * 5 + [3] * 5) == ((0, 0), (1, 0), (2, 5), (3, 5))


def test_unemployment_is_counted_up_to_the_enrolment_day_only() -> None:
    assert unemployment_days(date(2016, 3, 1), date(2026, 3, 1)) == 3652
    assert unemployment_days(date(2026, 3, 1), date(2026, 3, 1)) == 0
    assert unemployment_days(date(2026, 3, 2), date(2026, 3, 1)) is None
    assert unemployment_days(None, date(2026, 3, 1)) is None
