"""Co-financing to the øre: the worked example, a mid-year change by hand, and a property test."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.finance import domain as f
from shared.departments import Department as D

MIO = 100_000_000  # one million DKK in øre
JAN, DEC = date(2026, 1, 1), date(2026, 12, 31)


def person(department: D, fte: str = "1", starts: date = JAN, ends: date | None = None) -> f.Stationed:
    return f.Stationed(department, Decimal(fte), starts, ends)


def worked_example_roster() -> list[f.Stationed]:
    """10 staff and 1 leader: SFB 6 staff + the leader, BU 2, SO 1 + 0.5, KB 0.5."""
    return ([person(D.SOCIAL_AND_EMPLOYMENT) for _ in range(7)]
            + [person(D.CHILDREN_AND_YOUNG_PEOPLE)] * 2
            + [person(D.HEALTH_AND_CARE), person(D.HEALTH_AND_CARE, "0.5"),
               person(D.CULTURE_AND_CITIZEN_SERVICES, "0.5")])


def test_the_municipalitys_worked_example_to_the_ore() -> None:
    budget = f.Budget("gellerup", 2026, total_ore=68 * MIO // 10, pool_ore=35 * MIO // 10)
    result = f.allocate_year(budget, worked_example_roster())
    assert result.pool_ore == 350_000_000
    assert result.departments == {
        D.SOCIAL_AND_EMPLOYMENT: 210_000_000, D.CHILDREN_AND_YOUNG_PEOPLE: 60_000_000,
        D.HEALTH_AND_CARE: 45_000_000, D.CULTURE_AND_CITIZEN_SERVICES: 15_000_000}


def test_a_pool_given_as_a_share_gives_the_same_result() -> None:
    budget = f.Budget("gellerup", 2026, total_ore=700_000_000, pool_share=Decimal("0.5"))
    assert budget.pool_amount_ore == 350_000_000 == budget.departments_ore


def test_health_going_from_1_5_to_1_fte_on_1_july_matches_a_hand_calculation() -> None:
    budget = f.Budget("gellerup", 2026, total_ore=680_000_000, pool_ore=350_000_000)
    result = f.allocate_year(budget, mid_year_roster())
    # By hand: FTE-days SFB 7×365=2555, BU 2×365=730, SO 1×365+0.5×181=455.5, KB 0.5×365=182.5;
    # total 3923; 330,000,000 øre × share, floors, then the left-over øre to the largest remainders.
    exact = {D.SOCIAL_AND_EMPLOYMENT: Decimal(330_000_000) * 2555 / Decimal("3923"),
             D.CHILDREN_AND_YOUNG_PEOPLE: Decimal(330_000_000) * 730 / Decimal("3923"),
             D.HEALTH_AND_CARE: Decimal(330_000_000) * Decimal("455.5") / Decimal("3923"),
             D.CULTURE_AND_CITIZEN_SERVICES: Decimal(330_000_000) * Decimal("182.5") / Decimal("3923")}
    assert result.fte_days[D.HEALTH_AND_CARE] == Decimal("455.5")
    for department, amount in result.departments.items():
        assert abs(amount - exact[department]) < 1
    assert sum(result.departments.values()) == 330_000_000
    # Exact shares: SFB 214,924,802.45, BU 61,407,086.41, SO 38,316,339.54, KB 15,351,771.60; the floors
    # sum to 329,999,998, so the 2 øre left go to the largest remainders: KB (.60) and SO (.54).
    assert result.departments == {
        D.SOCIAL_AND_EMPLOYMENT: 214_924_802, D.CHILDREN_AND_YOUNG_PEOPLE: 61_407_086,
        D.HEALTH_AND_CARE: 38_316_340, D.CULTURE_AND_CITIZEN_SERVICES: 15_351_772}


def mid_year_roster() -> list[f.Stationed]:
    """The worked example, but Sundhed og Omsorg goes from 1.5 to 1 FTE on 1 July."""
    roster = [p for p in worked_example_roster()
              if p.fte != Decimal("0.5") or p.department != D.HEALTH_AND_CARE]
    return [*roster, person(D.HEALTH_AND_CARE, "0.5", JAN, date(2026, 6, 30))]


def test_quarters_add_up_to_the_year_per_department() -> None:
    budget = f.Budget("viby", 2026, total_ore=680_000_000, pool_ore=350_000_000)
    for roster in (worked_example_roster(), mid_year_roster()):
        periods = f.allocate_quarters(budget, roster)
        yearly = f.allocate_year(budget, roster).departments
        assert [p[0] for p in periods] == [date(2026, m, 1) for m in (1, 4, 7, 10)]
        assert {d: sum(parts[d] for _, _, parts in periods) for d in D} == yearly


def test_a_quarter_charges_each_fte_day_at_the_years_rate() -> None:
    budget = f.Budget("viby", 2026, total_ore=680_000_000, pool_ore=350_000_000)
    q3 = f.allocate_quarters(budget, mid_year_roster())[2][2]
    # By hand: SO has 455.5 FTE-days in the year (135, 136.5, 92, 92 by quarter) and a yearly
    # 38,316,340 øre, so Q3 is 92/455.5 of it = 7,738,975.37; the floors of the four quarters leave
    # one øre, which goes to the largest remainder: Q3 (tied with Q4; the earlier wins).
    assert q3[D.HEALTH_AND_CARE] == 7_738_976
    # KB's 0.5 FTE all year: 15,351,772 × 92/365 = 3,869,487.74; two øre left, to Q3 and Q4.
    assert q3[D.CULTURE_AND_CITIZEN_SERVICES] == 3_869_488


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"total_ore": -1, "pool_ore": 0}, "total_ore"),
    ({"total_ore": 100, "pool_ore": 101}, "pool_ore"),
    ({"total_ore": 100, "pool_share": Decimal("1.5")}, "pool_share"),
])
def test_bad_budgets_name_the_field(kwargs, field: str) -> None:
    with pytest.raises(f.InvalidBudget) as caught:
        f.Budget("tilst", 2026, **kwargs)
    assert caught.value.field == field


@pytest.mark.parametrize("fte", ["0", "-0.5", "1.01"])
def test_fte_must_be_above_zero_and_at_most_one(fte: str) -> None:
    with pytest.raises(f.InvalidBudget) as caught:
        person(D.HEALTH_AND_CARE, fte)
    assert caught.value.field == "fte"


def test_no_staff_is_a_conflict() -> None:
    with pytest.raises(f.FinanceConflict):
        f.allocate(100, dict.fromkeys(D, Decimal(0)))


rosters = st.lists(st.tuples(st.sampled_from(list(D)), st.decimals("0.01", "1", places=2),
                             st.integers(0, 364), st.integers(0, 364)), min_size=1, max_size=25)


@given(amount=st.integers(0, 10**12), roster=rosters)
def test_parts_always_add_up_to_the_whole_and_stay_within_one_ore_of_exact(amount: int, roster) -> None:
    people = [person(dep, str(fte), JAN + timedelta(days=min(a, b)), JAN + timedelta(days=max(a, b)))
              for dep, fte, a, b in roster]
    weights = f.fte_days(people, JAN, DEC)
    parts = f.allocate(amount, weights)
    assert sum(parts.values()) == amount
    total = sum(weights.values())
    for department, part in parts.items():
        assert part >= 0
        assert abs(Decimal(part) - Decimal(amount) * weights[department] / total) < 1


def test_savings_statements_from_data() -> None:
    per_family = [(260_000_00, 150_000_00)] * 62  # 110,000 DKK a year less per family
    report = f.savings_report(per_family, pool_per_year_ore=350_000_000, years=4)
    assert report.average_per_family_per_year_ore > 100_000_00
    assert report.over_years_ore >= 15 * MIO
    assert report.break_even is True


def test_dkk_formatting_uses_integer_arithmetic() -> None:
    assert f.format_dkk(123456) == "1234.56" and f.format_dkk(-5) == "-0.05"
