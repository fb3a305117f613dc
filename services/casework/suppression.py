"""The small-number rule of the steering report, without I/O: which cells are shown as "<5".

Official statistics withhold any cell counting fewer than five persons or families, and then
withhold enough *other* cells that the first cannot be worked out from what is shown. This module
is that rule as data and one function, so the report's composer only describes its cells:

- a :class:`Cell` is a figure; ``counts=True`` when it counts persons or families (the rule's
  subject); ``hidden=True`` when the report never shows it but a reader could work it out (the
  "not in job" remainder of a share's denominator), so it is protected like a shown one;
  ``depends_on`` names the counts a derived figure (a share, an average) is computed from;
- a :class:`Group` says ``total = sum(parts)`` (the sites' enrolled families add up to all sites').

:func:`suppress` withholds, in order: every count from 1 to ``LIMIT - 1`` (primary suppression);
then, in each group, while a withheld member could be recomputed — it is the group's only unknown,
or the unknowns' known sum equals their number so each must be 1 — the smallest shown member
(a non-zero part first, else the total) is withheld too (complementary suppression); finally every
derived figure whose counts are withheld. Zero is shown: an empty cell describes nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

#: Counts from 1 to ``LIMIT - 1`` are withheld.
LIMIT = 5
#: How a withheld figure reads in every format.
SUPPRESSED = "<5"


@dataclass(frozen=True)
class Cell:
    """One figure of the report, keyed ``section.row.column``."""

    key: str
    value: int | Decimal | None
    counts: bool = False
    hidden: bool = False
    depends_on: tuple[str, ...] = ()
    #: Already withheld by the service that computed it (intake's profile applies the same rule).
    withheld: bool = False


@dataclass(frozen=True)
class Group:
    """``total`` is the sum of ``parts``: what a reader could use to recompute one of them."""

    total: str
    parts: tuple[str, ...]


def is_small(value: int | Decimal | None) -> bool:
    return value is not None and 0 < value < LIMIT


def suppress(cells: Mapping[str, Cell], groups: Iterable[Group]) -> frozenset[str]:
    """The keys of every cell to show as "<5" (hidden cells included when they are protected)."""
    groups = list(groups)
    withheld = {k for k, c in cells.items() if c.withheld or (c.counts and is_small(c.value))}
    changed = True
    while changed:
        changed = False
        for group in groups:
            if _recomputable(cells, group, withheld) and (extra := _complement(cells, group, withheld)):
                withheld.add(extra)
                changed = True
    derived = {k for k, c in cells.items() if any(d in withheld for d in c.depends_on)}
    while derived - withheld:
        withheld |= derived
        derived = {k for k, c in cells.items() if any(d in withheld for d in c.depends_on)}
    return frozenset(withheld)


def _unknown(cell: Cell, withheld: set[str]) -> bool:
    return cell.hidden or cell.key in withheld


def _recomputable(cells: Mapping[str, Cell], group: Group, withheld: set[str]) -> bool:
    """Could a reader recompute a withheld member of the group from the shown ones?"""
    members = [cells[group.total], *(cells[p] for p in group.parts)]
    unknown = [c for c in members if _unknown(c, withheld)]
    if not any(c.key in withheld for c in unknown):
        return False
    if len(unknown) == 1:
        return True
    total = cells[group.total]
    if _unknown(total, withheld) or any(c.hidden and c.key not in withheld for c in unknown):
        return False
    # Every withheld count is at least 1 (zero is shown), so k unknown parts summing to k are all 1.
    known = sum(int(c.value or 0) for c in members[1:] if not _unknown(c, withheld))
    return int(total.value or 0) - known == len(unknown)


def _complement(cells: Mapping[str, Cell], group: Group, withheld: set[str]) -> str | None:
    """The shown member to withhold as well: the smallest non-zero part, else the total."""
    parts = [cells[p] for p in group.parts if not _unknown(cells[p], withheld) and cells[p].value]
    if parts:
        return min(parts, key=lambda c: (c.value or 0, c.key)).key
    total = cells[group.total]
    return None if _unknown(total, withheld) else total.key
