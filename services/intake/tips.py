"""Partners' tips without I/O: why a partner passes on an address, what the team found, and what
the partner may be told about it.

A caretaker (*vicevært*), the housing-social plan's staff or a civil-society organisation passes on
an address and a reason code: no names, no CPR number. The site's team follows it up; the partner
learns only that the tip was received and whether it has been followed up — never what was found.
"""

from __future__ import annotations

from enum import StrEnum


class TipReason(StrEnum):
    """Why the partner thinks the household might want the offer (a code, never free text)."""

    LONG_TERM_UNEMPLOYMENT = "long_term_unemployment"
    CHILDREN_STRUGGLING = "children_struggling"
    SCHOOL_ABSENCE = "school_absence"
    SOCIAL_ISOLATION = "social_isolation"
    HOUSING_OR_ECONOMY = "housing_or_economy"
    HEALTH = "health"
    OTHER = "other"


class TipState(StrEnum):
    """All the partner is ever told."""

    RECEIVED = "received"
    FOLLOWED_UP = "followed_up"


class TipOutcome(StrEnum):
    """What the team found when following a tip up (the team's, never the partner's to see)."""

    #: The team registered the household from the tip: it is "identified by a partner's tip".
    REGISTERED = "registered"
    #: The household was registered already (by the register import or an earlier tip).
    ALREADY_KNOWN = "already_known"
    NOT_FOUND = "not_found"
    DECLINED = "declined"
    NOT_ELIGIBLE = "not_eligible"


#: Outcomes that name the household the tip led to; the others must not name one.
NAMES_HOUSEHOLD = frozenset({TipOutcome.REGISTERED, TipOutcome.ALREADY_KNOWN})


class TipConflict(Exception):
    """A broken rule of following up (HTTP 409)."""


def follow_up(state: TipState, outcome: TipOutcome, *, names_household: bool) -> TipState:
    """A tip is followed up once; an outcome naming the household must name one, the others not.

    Raises ``TipConflict`` for a second follow-up and ``ValueError`` for a mismatched household."""
    if state is TipState.FOLLOWED_UP:
        raise TipConflict("This tip has already been followed up.")
    if names_household != (outcome in NAMES_HOUSEHOLD):
        raise ValueError("name the household for registered or already_known, and only then")
    return TipState.FOLLOWED_UP
