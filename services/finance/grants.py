"""External funding without I/O: a grant's amount spread over the years of its period, and what
it takes off the råderum's and the departments' part of a site's yearly budget.

Money is integer øre; every split uses the largest-remainder rule (``domain.largest_remainder``)
so the parts add up exactly to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from services.finance.domain import Budget, InvalidBudget, days_in, largest_remainder, year_bounds


class PaysFor(StrEnum):
    """What a grant pays for, and so whose payment it reduces."""

    #: The site's operating cost as a whole: the råderum and the departments in proportion.
    OPERATING_COST = "operating_cost"
    #: The råderum's (pool's) part only.
    POOL = "pool"
    #: The departments' co-financing only (each department in proportion to its FTE-days).
    DEPARTMENTS = "departments"


@dataclass(frozen=True)
class Grant:
    code: str
    funder: str
    site_id: str
    period_start: date
    period_end: date
    amount_ore: int
    pays_for: PaysFor

    def __post_init__(self) -> None:
        if self.period_end < self.period_start:
            raise InvalidBudget("period_end", "The period cannot end before it starts.")
        if self.amount_ore <= 0:
            raise InvalidBudget("amount_ore", "A grant must be more than nought øre.")


def grant_per_year(grant: Grant) -> dict[int, int]:
    """The grant's amount spread over the calendar years of its period by the days in each (both
    ends included), largest remainder to the øre, so the years add up exactly to the grant."""
    years = list(range(grant.period_start.year, grant.period_end.year + 1))
    days = []
    for year in years:
        first, last = year_bounds(year)
        days.append(Decimal(days_in(max(first, grant.period_start), min(last, grant.period_end))))
    return dict(zip(years, largest_remainder(grant.amount_ore, days), strict=True))


@dataclass(frozen=True)
class GrantShare:
    """One grant's part of one year, and whose payment it took off."""

    grant: Grant
    amount_ore: int
    pool_reduction_ore: int
    departments_reduction_ore: int

    @property
    def unused_ore(self) -> int:
        """What the year's part could not take off (the part it pays for was already nought)."""
        return self.amount_ore - self.pool_reduction_ore - self.departments_reduction_ore


@dataclass(frozen=True)
class Funding:
    """A site's year after external funding: who pays what of the budget's total."""

    budget: Budget
    shares: list[GrantShare] = field(default_factory=list)

    @property
    def pool_reduction_ore(self) -> int:
        return sum(s.pool_reduction_ore for s in self.shares)

    @property
    def departments_reduction_ore(self) -> int:
        return sum(s.departments_reduction_ore for s in self.shares)

    @property
    def external_ore(self) -> int:
        """What the grants pay of the year's total."""
        return self.pool_reduction_ore + self.departments_reduction_ore

    @property
    def pool_ore(self) -> int:
        """What the råderum still pays."""
        return self.budget.pool_amount_ore - self.pool_reduction_ore

    @property
    def departments_ore(self) -> int:
        """What the departments together still pay (split by FTE-days as before)."""
        return self.budget.departments_ore - self.departments_reduction_ore

    def net_budget(self) -> Budget:
        """The budget the municipality still pays: the allocation and settlements split this."""
        return Budget(self.budget.site_id, self.budget.year, self.pool_ore + self.departments_ore,
                      pool_ore=self.pool_ore)


def apply_grants(budget: Budget, grants: Sequence[Grant]) -> Funding:
    """Take each grant's part of the budget's year off the payments it pays for, in the order
    given (the oldest grant first), never below nought: whatever a part cannot take off is
    ``unused`` and reduces nobody's payment."""
    pool, departments = budget.pool_amount_ore, budget.departments_ore
    shares = []
    for grant in grants:
        amount = grant_per_year(grant).get(budget.year, 0)
        if amount == 0:
            continue
        if grant.pays_for is PaysFor.POOL:
            from_pool, from_departments = min(amount, pool), 0
        elif grant.pays_for is PaysFor.DEPARTMENTS:
            from_pool, from_departments = 0, min(amount, departments)
        else:
            used = min(amount, pool + departments)
            from_pool, from_departments = (largest_remainder(used, [Decimal(pool), Decimal(departments)])
                                           if used else (0, 0))
        pool, departments = pool - from_pool, departments - from_departments
        shares.append(GrantShare(grant, amount, from_pool, from_departments))
    return Funding(budget, shares)
