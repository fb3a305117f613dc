"""Referral rules without I/O: the lifecycle, who may move it, due dates, consent, the catalogue."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from shared.codes import CODE_PATTERN
from shared.departments import Department
from shared.statemachine import check_transition


class ReferralsConflict(Exception):
    """A broken rule or illegal transition (HTTP 409)."""


class NotAllowed(Exception):
    """The caller's side may not make this transition (HTTP 403)."""


class State(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    ON_HOLD = "on_hold"


class Actor(StrEnum):
    TEAM = "team"
    DEPARTMENT = "department"
    SYSTEM = "system"


S = State
OPEN = frozenset({S.SENT, S.ACCEPTED, S.IN_PROGRESS})
CLOSED = frozenset({S.COMPLETED, S.DECLINED, S.CANCELLED})
TRANSITIONS: dict[State, frozenset[State]] = {
    S.DRAFT: frozenset({S.SENT, S.CANCELLED}),
    S.SENT: frozenset({S.ACCEPTED, S.DECLINED, S.CANCELLED, S.ON_HOLD}),
    S.ACCEPTED: frozenset({S.IN_PROGRESS, S.CANCELLED, S.ON_HOLD}),
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.CANCELLED, S.ON_HOLD}),
    # A hold is left only by cancelling or by a resume (RESUMES below), never by an ordinary move:
    # otherwise the department could accept or start a referral whose consent is gone.
    S.ON_HOLD: frozenset({S.CANCELLED}),
    S.COMPLETED: frozenset(), S.DECLINED: frozenset(), S.CANCELLED: frozenset(),
}
#: A resume takes a referral on hold back to the open state it had before the hold.
RESUMES: dict[State, frozenset[State]] = {S.ON_HOLD: OPEN}
MOVES: dict[State, frozenset[Actor]] = {
    S.SENT: frozenset({Actor.TEAM, Actor.SYSTEM}),
    S.ACCEPTED: frozenset({Actor.DEPARTMENT}), S.DECLINED: frozenset({Actor.DEPARTMENT}),
    S.IN_PROGRESS: frozenset({Actor.DEPARTMENT}), S.COMPLETED: frozenset({Actor.DEPARTMENT}),
    S.CANCELLED: frozenset({Actor.TEAM, Actor.SYSTEM}), S.ON_HOLD: frozenset({Actor.SYSTEM}),
}
#: The team resumes: it is the side that asks the family for consent again and sends referrals.
RESUMED_BY = frozenset({Actor.TEAM})
NEEDS_REASON = frozenset({S.DECLINED, S.CANCELLED, S.ON_HOLD})


def transition(current: State, target: State, *, actor: Actor, reason_code: str | None = None) -> State:
    if actor not in MOVES.get(target, frozenset()):
        raise NotAllowed(f"The {actor} side cannot make a referral {target}.")
    if current is S.ON_HOLD and target in RESUMES[S.ON_HOLD]:
        raise ReferralsConflict("A referral on hold goes on only when the team resumes it, once the "
                                "family's consent covers the department again.")
    check_transition(TRANSITIONS, current, target, error=ReferralsConflict, noun="referral")
    if target in NEEDS_REASON and not reason_code:
        raise ReferralsConflict(f"A referral can only become {target} with a reason.")
    return target


def resume(current: State, before_hold: State | None, *, actor: Actor, covered: set[Department],
           target_department: Department) -> State:
    """Leave a hold for the state the referral had before it, by the team, and only with consent.

    The hold was (so far always) caused by a revoked consent, so the consent gate of sending
    applies again: a resume without it would let the department work without a legal basis.
    """
    if actor not in RESUMED_BY:
        raise NotAllowed(f"The {actor} side cannot resume a referral.")
    allowed = RESUMES.get(current, frozenset())
    if not allowed:
        raise ReferralsConflict(f"Only a referral on hold can be resumed; this one is {current}.")
    if before_hold is None or before_hold not in allowed:
        raise ReferralsConflict("The referral's state before the hold is unknown: cancel it and refer again.")
    require_consent(covered, target_department)
    return before_hold


def due_at(sent_at: datetime, sla: timedelta, priority: str) -> datetime:
    """Urgent referrals get half the offer's response time."""
    return sent_at + (sla / 2 if priority == "urgent" else sla)


def is_overdue(state: State, due: datetime | None, now: datetime) -> bool:
    return state in OPEN and due is not None and now > due


def require_consent(covered: set[Department], target: Department) -> None:
    if target not in covered:
        raise ReferralsConflict(
            f"The family's consent does not cover {target.danish_name} ({target.value}): ask the family "
            "for consent to share with this department before sending.")


def state_after_consent_revoked(state: State) -> State | None:
    """Drafts are cancelled; open referrals wait on hold; closed ones stay as they are."""
    if state is S.DRAFT:
        return S.CANCELLED
    if state in OPEN:
        return S.ON_HOLD
    return None


def state_after_family_exited(state: State) -> State | None:
    """A family that left gets nothing more: everything not yet closed (drafts, open referrals,
    those on hold) is cancelled."""
    return None if state in CLOSED else S.CANCELLED


def require_family_in_programme(exited: bool) -> None:
    """No new referral for a family that has left the programme (intake's exit is final)."""
    if exited:
        raise ReferralsConflict("The family has left the programme: no new referrals can be made for it.")


# --- the catalogue ------------------------------------------------------------------------

class FieldKind(StrEnum):
    """What an offer's information field holds. Never free text: the fields go to the department,
    and a note, a name or a CPR number typed into one must not."""

    PERSON = "person"  # a member's id
    YEAR = "year"  # a year of birth
    COUNT = "count"  # a small whole number
    CODE = "code"  # a code (``shared.codes``): lower-case words, at most four digits in a row


FIELD_KINDS: dict[str, FieldKind] = {
    "person_id": FieldKind.PERSON, "birth_year": FieldKind.YEAR, "health_concern_code": FieldKind.CODE,
    "child_school": FieldKind.CODE, "household_size": FieldKind.COUNT, "employment_status": FieldKind.CODE,
    "debt_overview": FieldKind.CODE, "housing_situation": FieldKind.CODE, "leisure_interest": FieldKind.CODE,
    "preferred_language": FieldKind.CODE}
KNOWN_FIELDS = frozenset(FIELD_KINDS)


def check_field_value(name: str, value: str, *, today: date) -> str | None:
    """Why ``value`` does not fit the field's kind, or None when it does."""
    kind = FIELD_KINDS[name]
    if kind is FieldKind.PERSON:
        try:
            UUID(value)
        except ValueError:
            return "must be a person id"
        return None
    if kind is FieldKind.CODE:
        return None if re.fullmatch(CODE_PATTERN, value) and 2 <= len(value) <= 80 else \
            "must be a code (lower-case words, at most four digits in a row), not free text"
    low, high = (1900, today.year) if kind is FieldKind.YEAR else (1, 30)
    if not re.fullmatch(r"\d{1,4}", value) or not low <= int(value) <= high:
        return f"must be a whole number from {low} to {high}"
    return None


@dataclass(frozen=True)
class OfferSeed:
    code: str
    department: Department
    title: str
    required_fields: tuple[str, ...]
    sla_days: int


D = Department
_DEPARTMENT_OFFERS = (
    OfferSeed("physical-rehabilitation", D.HEALTH_AND_CARE, "Genoptræning (physical rehabilitation)",
              ("person_id", "health_concern_code"), 14),
    OfferSeed("smoking-cessation", D.HEALTH_AND_CARE, "Rygestopkursus", ("person_id",), 21),
    OfferSeed("diabetes-course", D.HEALTH_AND_CARE, "Diabeteskursus",
              ("person_id", "preferred_language"), 30),
    OfferSeed("health-visitor", D.HEALTH_AND_CARE, "Sundhedsplejerske (health visitor)",
              ("person_id", "birth_year"), 7),
    OfferSeed("school-meeting", D.CHILDREN_AND_YOUNG_PEOPLE, "Skolesamarbejdsmøde",
              ("person_id", "child_school"), 14),
    OfferSeed("ppr-assessment", D.CHILDREN_AND_YOUNG_PEOPLE, "PPR pædagogisk-psykologisk vurdering",
              ("person_id", "child_school"), 42),
    OfferSeed("leisure-job-or-club", D.CHILDREN_AND_YOUNG_PEOPLE, "Hjælp til fritidsjob eller klub",
              ("person_id", "birth_year", "leisure_interest"), 21),
    OfferSeed("fritidspas", D.CULTURE_AND_CITIZEN_SERVICES, "Fritidspas", ("person_id", "birth_year"), 14),
    OfferSeed("citizen-service-help", D.CULTURE_AND_CITIZEN_SERVICES, "Bibliotek og borgerservice",
              ("household_size",), 7),
    OfferSeed("association-life", D.CULTURE_AND_CITIZEN_SERVICES, "Foreningsliv",
              ("person_id", "leisure_interest"), 30),
    OfferSeed("flex-job-assessment", D.SOCIAL_AND_EMPLOYMENT, "Afklaring til fleksjob",
              ("person_id", "employment_status"), 30),
    OfferSeed("rehabilitation-team", D.SOCIAL_AND_EMPLOYMENT, "Rehabiliteringsteam",
              ("person_id", "employment_status"), 60),
    OfferSeed("debt-counselling", D.SOCIAL_AND_EMPLOYMENT, "Gælds- og økonomirådgivning",
              ("household_size", "debt_overview"), 21),
    OfferSeed("housing-support", D.SOCIAL_AND_EMPLOYMENT, "Bostøtte",
              ("household_size", "housing_situation"), 30),
)
#: A specialist's advice per department: what an escalation to a faglig ven becomes by default.
FAGLIG_VEN_OFFERS = tuple(OfferSeed(f"faglig-ven-{d.value}", d, "Faglig ven: specialist advice",
                                    ("person_id",), 14) for d in Department)
SEED_OFFERS = (*_DEPARTMENT_OFFERS, *FAGLIG_VEN_OFFERS)


class FieldProblem(ValueError):
    def __init__(self, message: str, fields: list[str]) -> None:
        super().__init__(message)
        self.fields = fields


def validate_fields(required: tuple[str, ...], provided: Mapping[str, str], *,
                    today: date | None = None) -> dict[str, str]:
    """Exactly the information the offer needs, each of its kind: nothing missing, nothing more,
    no free text."""
    missing = [f for f in required if not str(provided.get(f, "")).strip()]
    extra = [f for f in provided if f not in required]
    if missing:
        raise FieldProblem(f"The offer needs: {', '.join(missing)}", missing)
    if extra:
        raise FieldProblem(f"The offer does not need: {', '.join(extra)}", extra)
    values = {f: str(provided[f]).strip() for f in required}
    wrong = {f: why for f in required if f in FIELD_KINDS
             and (why := check_field_value(f, values[f], today=today or date.today()))}
    if wrong:
        raise FieldProblem("; ".join(f"{f} {why}" for f, why in wrong.items()), list(wrong))
    return values
