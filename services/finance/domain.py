"""Finance rules without I/O: budgets, co-financing by stationed FTE-days, the ledger, savings.

Money is integer øre. Allocation uses the largest-remainder method: each department gets the
floor of its exact share, and the øre left over go one each to the largest remainders, ties
broken by the order of ``Department``; so the parts always add up to the whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from uuid import UUID

from shared.departments import Department


class FinanceConflict(Exception):
    """A broken rule (HTTP 409)."""


class InvalidBudget(ValueError):
    """Bad input, naming the field (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Budget:
    site_id: str
    year: int
    total_ore: int
    pool_ore: int | None = None
    pool_share: Decimal | None = None

    def __post_init__(self) -> None:
        if self.total_ore < 0:
            raise InvalidBudget("total_ore", "The budget cannot be negative.")
        if (self.pool_ore is None) == (self.pool_share is None):
            raise InvalidBudget("pool_ore", "Give the pool as an amount or as a share, not both.")
        if self.pool_ore is not None and not 0 <= self.pool_ore <= self.total_ore:
            raise InvalidBudget("pool_ore", "The pool contribution must be between 0 and the budget.")
        if self.pool_share is not None and not 0 <= self.pool_share <= 1:
            raise InvalidBudget("pool_share", "The pool share must be between 0 and 1.")

    @property
    def pool_amount_ore(self) -> int:
        if self.pool_ore is not None:
            return self.pool_ore
        assert self.pool_share is not None
        return int((self.pool_share * self.total_ore).quantize(Decimal(1), ROUND_HALF_UP))

    @property
    def departments_ore(self) -> int:
        return self.total_ore - self.pool_amount_ore


@dataclass(frozen=True)
class Stationed:
    department: Department
    fte: Decimal
    starts_on: date
    ends_on: date | None = None

    def __post_init__(self) -> None:
        if not Decimal(0) < self.fte <= Decimal(1):
            raise InvalidBudget("fte", "FTE per person must be above 0 and at most 1.")


def days_in(start: date, end: date) -> int:
    return (end - start).days + 1


def fte_days(roster: Iterable[Stationed], start: date, end: date) -> dict[Department, Decimal]:
    """FTE × days stationed within [start, end], per department (a leader counts in its own)."""
    totals = dict.fromkeys(Department, Decimal(0))
    for person in roster:
        first, last = max(person.starts_on, start), min(person.ends_on or end, end)
        if first <= last:
            totals[person.department] += person.fte * days_in(first, last)
    return totals


def largest_remainder(amount_ore: int, weights: Sequence[Decimal]) -> list[int]:
    """Split exactly in proportion to ``weights``: floors first, then one øre each to the
    largest remainders, ties to the earlier position."""
    total = sum(weights, Decimal(0))
    if total <= 0:
        raise FinanceConflict("No staff were stationed in the period: nothing to split by.")
    exact = [Decimal(amount_ore) * weight / total for weight in weights]
    parts = [int(x) for x in exact]
    largest_first = sorted(range(len(parts)), key=lambda i: (-(exact[i] - parts[i]), i))
    for index in largest_first[: amount_ore - sum(parts)]:
        parts[index] += 1
    return parts


def allocate(amount_ore: int, weights: Mapping[Department, Decimal]) -> dict[Department, int]:
    """Split exactly between departments (see the module docstring)."""
    order = list(Department)
    parts = largest_remainder(amount_ore, [weights.get(d, Decimal(0)) for d in order])
    return dict(zip(order, parts, strict=True))


@dataclass(frozen=True)
class Allocation:
    pool_ore: int
    departments: dict[Department, int]
    fte_days: dict[Department, Decimal]


def year_bounds(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)


def allocate_year(budget: Budget, roster: Sequence[Stationed]) -> Allocation:
    start, end = year_bounds(budget.year)
    weights = fte_days(roster, start, end)
    return Allocation(budget.pool_amount_ore, allocate(budget.departments_ore, weights), weights)


def quarters(year: int) -> list[tuple[date, date]]:
    starts = [date(year, m, 1) for m in (1, 4, 7, 10)] + [date(year + 1, 1, 1)]
    return [(starts[i], starts[i + 1] - timedelta(days=1)) for i in range(4)]


Period = tuple[date, date, dict[Department, int]]


def allocate_quarters(budget: Budget, roster: Sequence[Stationed]) -> list[Period]:
    """Each department's yearly amount split over the quarters by its FTE-days in each.

    So every FTE-day costs the same all year, a department's four quarters add up exactly to
    its yearly allocation, and settling by quarter or by year charges the same.
    """
    periods = quarters(budget.year)
    yearly = allocate_year(budget, roster).departments
    per_quarter = [fte_days(roster, start, end) for start, end in periods]
    split = {d: _split_department(yearly[d], [q[d] for q in per_quarter]) for d in Department}
    return [(start, end, {d: split[d][i] for d in Department}) for i, (start, end) in enumerate(periods)]


def _split_department(amount_ore: int, weights: list[Decimal]) -> list[int]:
    return largest_remainder(amount_ore, weights) if amount_ore else [0] * len(weights)


# --- the ledger ---------------------------------------------------------------------------

def correction_entries(original_amount_ore: int, new_amount_ore: int) -> tuple[int, int]:
    """A correction never edits: it reverses the original and enters the new amount."""
    return -original_amount_ore, new_amount_ore


def format_dkk(amount_ore: int) -> str:
    sign = "-" if amount_ore < 0 else ""
    kroner, ore = divmod(abs(amount_ore), 100)
    return f"{sign}{kroner}.{ore:02d}"


# --- savings ------------------------------------------------------------------------------

#: Illustrative yearly public expenditure per adult by employment status, in øre, used when no
#: figure is entered for a family. The finance department sets the real rates.
RATE_TABLE_ORE = {"unemployed": 15_000_000, "ordinary_job": 0, "education": 9_000_000,
                  "flex_job": 12_000_000, "early_retirement_pension": 22_000_000, "other": 15_000_000}


@dataclass(frozen=True)
class SavingsReport:
    families: int
    savings_per_year_ore: int
    average_per_family_per_year_ore: int
    over_years_ore: int
    pool_over_years_ore: int
    break_even: bool


def savings_report(per_family: Sequence[tuple[int, int]], *, pool_per_year_ore: int,
                   years: int) -> SavingsReport:
    """Savings = baseline − current, per family per year; compared with the pool's contribution."""
    yearly = sum(baseline - current for baseline, current in per_family)
    count = len(per_family)
    over = yearly * years
    return SavingsReport(count, yearly, yearly // count if count else 0, over, pool_per_year_ore * years,
                         over >= pool_per_year_ore * years)


# --- savings by area ----------------------------------------------------------------------

class CostArea(StrEnum):
    """The areas of the social budget a family's public expenditure is split into."""

    INCOME_SUPPORT = "income_support"  # forsørgelse: cash benefit, unemployment and similar
    SERVICE_ACT = "service_act"        # measures under Serviceloven (adults)
    CHILDRENS_ACT = "childrens_act"    # measures under Barnets Lov (children)


@dataclass(frozen=True)
class AreaSavings:
    area: str
    families: int
    baseline_per_year_ore: int
    current_per_year_ore: int
    savings_per_year_ore: int
    average_per_family_per_year_ore: int


@dataclass(frozen=True)
class AreaSavingsReport:
    families: int
    areas: list[AreaSavings]
    total: AreaSavings
    years: int
    over_years_ore: int
    pool_per_year_ore: int
    pool_over_years_ore: int
    break_even: bool
    families_to_break_even: int | None


def per_family(amount_ore: int, families: int) -> int:
    """An amount shared by the families, rounded half up (away from nought) to the øre."""
    if families == 0:
        return 0
    return int((Decimal(amount_ore) / families).quantize(Decimal(1), ROUND_HALF_UP))


def area_savings_report(costs: Mapping[UUID, Mapping[CostArea, tuple[int, int]]], *, pool_per_year_ore: int,
                        years: int) -> AreaSavingsReport:
    """Savings per area and in all: baseline − current yearly expenditure, summed over the families
    with any area entered (an area not entered for a family counts as nought before and now), and
    averaged over those families; set against the pool's (råderum's) yearly contribution.

    ``families_to_break_even`` is the fewest families whose average savings cover the pool's
    contribution in a year (none while the average saves nothing)."""
    families = len(costs)

    def summed(area: str, pairs: list[tuple[int, int]]) -> AreaSavings:
        baseline, current = sum(b for b, _ in pairs), sum(c for _, c in pairs)
        return AreaSavings(area, families, baseline, current, baseline - current,
                           per_family(baseline - current, families))

    areas = [summed(area.value, [own[area] for own in costs.values() if area in own]) for area in CostArea]
    total = summed("total", [pair for own in costs.values() for pair in own.values()])
    yearly = total.savings_per_year_ore
    needed = None if yearly <= 0 else -(-pool_per_year_ore * families // yearly)
    return AreaSavingsReport(families, areas, total, years, yearly * years, pool_per_year_ore,
                             pool_per_year_ore * years, yearly >= pool_per_year_ore, needed)
