"""External funding's rules without I/O: a grant spread over its years by days, and what it takes
off the råderum's and the departments' parts — checked against sums worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest

from services.finance.domain import Budget, InvalidBudget
from services.finance.grants import Grant, PaysFor, apply_grants, grant_per_year

MILLION_DKK = 100_000_000  # øre


def grant(amount_ore: int, start: date, end: date, pays_for: PaysFor = PaysFor.OPERATING_COST,
          code: str = "foundation-grant") -> Grant:
    return Grant(code, "private-foundation", "gellerup", start, end, amount_ore, pays_for)


def test_the_pilot_41_million_over_four_years_23_from_a_foundation_18_from_the_municipality() -> None:
    """The pilot by hand: four yearly budgets of 41 M ÷ 4 = 10.25 M DKK, then all the
    municipality's (no department co-financed the pilot), and a foundation's 23 M over the same
    four years (2020–2023: 366 + 365 + 365 + 365 = 1,461 days) spread by days."""
    foundation = grant(23 * MILLION_DKK, date(2020, 1, 1), date(2023, 12, 31))
    # By hand: 2,300,000,000 × days ÷ 1,461, floors first, the øre left to the largest remainder.
    exact = {2020: (2_300_000_000 * 366, 1461), 2021: (2_300_000_000 * 365, 1461),
             2022: (2_300_000_000 * 365, 1461), 2023: (2_300_000_000 * 365, 1461)}
    floors = {year: n // d for year, (n, d) in exact.items()}
    left = 2_300_000_000 - sum(floors.values())
    remainders = sorted(exact, key=lambda year: (-(exact[year][0] % 1461), year))
    expected = {year: floors[year] + (1 if year in remainders[:left] else 0) for year in exact}
    assert grant_per_year(foundation) == expected
    assert sum(expected.values()) == 23 * MILLION_DKK

    municipality = 0
    for year in range(2020, 2024):
        budget = Budget("gellerup", year, 1_025_000_000, pool_ore=1_025_000_000)
        funded = apply_grants(budget, [foundation])
        assert funded.external_ore == expected[year]
        assert (funded.pool_ore, funded.departments_ore) == (1_025_000_000 - expected[year], 0)
        municipality += funded.pool_ore + funded.departments_ore
    assert municipality == 18 * MILLION_DKK


def test_a_grant_for_the_departments_lowers_only_their_part() -> None:
    budget = Budget("gellerup", 2026, 680_000_000, pool_ore=350_000_000)
    year_2026 = (date(2026, 1, 1), date(2026, 12, 31))
    funded = apply_grants(budget, [grant(33_000_000, *year_2026, PaysFor.DEPARTMENTS)])
    assert (funded.pool_ore, funded.departments_ore, funded.external_ore) == (350_000_000, 297_000_000,
                                                                              33_000_000)
    assert funded.net_budget().total_ore == 647_000_000


def test_a_grant_for_the_operating_cost_lowers_the_pool_and_the_departments_in_proportion() -> None:
    budget = Budget("gellerup", 2026, 680_000_000, pool_ore=350_000_000)
    funded = apply_grants(budget, [grant(68_000_000, date(2026, 1, 1), date(2026, 12, 31))])
    # 68 M øre × 350/680 = 35 M off the pool, × 330/680 = 33 M off the departments.
    assert (funded.pool_reduction_ore, funded.departments_reduction_ore) == (35_000_000, 33_000_000)


def test_a_grant_beyond_what_it_pays_for_leaves_the_rest_unused_never_a_negative_payment() -> None:
    budget = Budget("gellerup", 2026, 680_000_000, pool_ore=350_000_000)
    big = grant(400_000_000, date(2026, 1, 1), date(2026, 12, 31), PaysFor.POOL)
    small = grant(10_000_000, date(2026, 1, 1), date(2026, 12, 31), PaysFor.POOL, code="second-grant")
    funded = apply_grants(budget, [big, small])
    assert funded.pool_ore == 0 and funded.departments_ore == 330_000_000
    assert [share.unused_ore for share in funded.shares] == [50_000_000, 10_000_000]


def test_a_grant_is_split_over_the_calendar_years_of_its_period_by_days() -> None:
    split = grant_per_year(grant(365_000, date(2026, 7, 1), date(2027, 6, 30)))
    # 184 days in 2026 (July–December), 181 in 2027 (January–June), at 1,000 øre a day.
    assert split == {2026: 184_000, 2027: 181_000}


@pytest.mark.parametrize(("start", "end", "amount", "field"), [
    (date(2026, 2, 1), date(2026, 1, 31), 100, "period_end"),
    (date(2026, 1, 1), date(2026, 12, 31), 0, "amount_ore"),
])
def test_a_grant_needs_a_period_and_an_amount(start: date, end: date, amount: int, field: str) -> None:
    with pytest.raises(InvalidBudget) as raised:
        grant(amount, start, end)
    assert raised.value.field == field
