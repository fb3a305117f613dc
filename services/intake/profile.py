"""The cohort's profile at enrolment, without I/O: counts and averages over the families enrolled
in a period, with a small-number rule so that no figure describes a single family or person.

Only aggregates leave intake: the figures are computed here from each family's facts at the
time it was enrolled (see ``FamilyAtEnrolment``) and a count between 1 and
``SMALL_NUMBER_LIMIT - 1`` is withheld, as Danish statistics do for small cells.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

#: Counts from 1 to 4 are withheld; an average needs at least 5 behind it.
SMALL_NUMBER_LIMIT = 5
#: A year of unemployment, in days (the mean Gregorian year, so leap years even out).
DAYS_PER_YEAR = Decimal("365.25")
ONE_DECIMAL = Decimal("0.1")


@dataclass(frozen=True)
class FamilyAtEnrolment:
    """One enrolled family as it was when enrolled: its adults, its children living at the
    address, and for each adult unemployed on the enrolment day the days since unemployment began."""

    enrolled_on: date
    adults: int
    children_at_home: int
    unemployment_days: tuple[int, ...] = ()


def unemployment_days(unemployed_since: date | None, enrolled_on: date) -> int | None:
    """Days from the start of unemployment to the enrolment day; None if not unemployed by then."""
    if unemployed_since is None or unemployed_since > enrolled_on:
        return None
    return (enrolled_on - unemployed_since).days


def in_period(enrolled_on: date, *, period_start: date, period_end: date) -> bool:
    """The cohort of a period: families enrolled on a day from its start to its end, both included."""
    return period_start <= enrolled_on <= period_end


@dataclass(frozen=True)
class Profile:
    suppressed: bool
    families: int | None
    adults: int | None = None
    children: int | None = None
    average_children_per_family: Decimal | None = None
    #: (children at home, families with that many or None when withheld), from 0 to the largest.
    children_per_family: tuple[tuple[int, int | None], ...] = ()
    unemployed_parents: int | None = None
    unemployment_days_total: int | None = None
    average_unemployment_years: Decimal | None = None
    limit: int = field(default=SMALL_NUMBER_LIMIT)


def _small(count: int) -> bool:
    return 0 < count < SMALL_NUMBER_LIMIT


def _ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal:
    return (Decimal(numerator) / Decimal(denominator)).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


def profile(families: Sequence[FamilyAtEnrolment]) -> Profile:
    """Every figure of the profile, with the small-number rule applied.

    - A cohort of 1–4 families shows nothing (not even its size): ``suppressed``.
    - The distribution withholds each cell of 1–4 families; if that leaves exactly one cell
      withheld, the smallest other non-empty cell is withheld too, so it cannot be worked out
      from the total.
    - The unemployed parents are withheld when 1–4, and their average length with them.
    """
    if _small(len(families)):
        return Profile(suppressed=True, families=None)
    n = len(families)
    adults = sum(f.adults for f in families)
    children = sum(f.children_at_home for f in families)
    days = [d for f in families for d in f.unemployment_days]
    unemployed = len(days)
    shown = not _small(unemployed) and unemployed > 0
    return Profile(
        suppressed=False, families=n, adults=adults, children=children,
        average_children_per_family=_ratio(children, n) if n else None,
        children_per_family=distribution([f.children_at_home for f in families]),
        unemployed_parents=None if _small(unemployed) else unemployed,
        unemployment_days_total=sum(days) if shown else None,
        average_unemployment_years=_ratio(sum(days), unemployed * DAYS_PER_YEAR) if shown else None)


def distribution(children_per_family: Sequence[int]) -> tuple[tuple[int, int | None], ...]:
    """Families per number of children at home, 0 to the largest, small cells withheld (with one
    more when a single withheld cell could be worked out from the total)."""
    if not children_per_family:
        return ()
    counts = Counter(children_per_family)
    cells = {k: counts.get(k, 0) for k in range(max(counts) + 1)}
    withheld = {k for k, v in cells.items() if _small(v)}
    if len(withheld) == 1:
        others = [(v, -k) for k, v in cells.items() if v and k not in withheld]
        if others:
            withheld.add(-min(others)[1])
    return tuple((k, None if k in withheld else v) for k, v in cells.items())
