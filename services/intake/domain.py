"""Intake rules, without I/O: eligibility, the outreach funnel, consent, enrolment, import rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from uuid import UUID

from services.intake.areas import Area, check_address
from services.intake.cpr import Cpr, InvalidCpr, parse_cpr
from shared.consent import Cover, is_adult
from shared.consent import covered_departments as shared_covered
from shared.departments import Department
from shared.statemachine import check_transition


class IntakeConflict(Exception):
    """A broken rule or an illegal transition (HTTP 409); the message says which."""


@dataclass(frozen=True)
class SiteDefaults:
    id: str
    name: str
    capacity: int


DEFAULT_SITES = (
    SiteDefaults("gellerup", "Gellerup (Gellerupparken og Toveshøj)", 75),
    SiteDefaults("viby", "Viby", 75),
    SiteDefaults("tilst", "Tilst", 38),
)


class MemberRole(StrEnum):
    MOTHER = "mother"
    FATHER = "father"
    OTHER_ADULT = "other_adult"
    CHILD = "child"

    @property
    def is_adult(self) -> bool:
        return is_adult(self.value)

    @property
    def is_parent(self) -> bool:
        return self in (MemberRole.MOTHER, MemberRole.FATHER)


# --- eligibility -------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberFacts:
    person_id: UUID
    role: MemberRole
    birth_date: date
    unemployed_since: date | None = None
    lives_at_address: bool = True


@dataclass(frozen=True)
class HouseholdFacts:
    site_id: str
    members: tuple[MemberFacts, ...]
    address: str = ""


@dataclass(frozen=True)
class Criterion:
    code: str
    met: bool
    explanation: str
    #: Not decidable on the data (a site without a target area): not met, and said so.
    unknown: bool = False

    @property
    def state(self) -> str:
        return "unknown" if self.unknown else ("met" if self.met else "not_met")


@dataclass(frozen=True)
class Screening:
    criteria: tuple[Criterion, ...]

    @property
    def eligible(self) -> bool:
        return all(c.met for c in self.criteria)


def one_year_before(today: date) -> date:
    """29 Feb minus a year is 28 Feb."""
    try:
        return today.replace(year=today.year - 1)
    except ValueError:
        return today.replace(year=today.year - 1, day=28)


def screen(household: HouseholdFacts, *, today: date, area: Area | None) -> Screening:
    """The model's three criteria, each met, not met or unknown, with the reason in words.

    ``area`` is the target area of the household's site; ``None`` (none defined yet) makes the
    area criterion unknown, and an unknown criterion is not met, so the household is not eligible.
    """
    return Screening((_in_target_area(household, area), _child_at_address(household),
                      _parent_long_unemployed(household, today)))


def _in_target_area(household: HouseholdFacts, area: Area | None) -> Criterion:
    check = check_address(household.address, area, site_id=household.site_id)
    return Criterion("target_area", bool(check.met), check.explanation, unknown=check.met is None)


def _child_at_address(household: HouseholdFacts) -> Criterion:
    children = [m for m in household.members if m.role is MemberRole.CHILD and m.lives_at_address]
    if children:
        return Criterion("child_at_address", True, f"{len(children)} child(ren) live at the address")
    return Criterion("child_at_address", False, "no child lives at the address")


def _parent_long_unemployed(household: HouseholdFacts, today: date) -> Criterion:
    cutoff = one_year_before(today)
    parents = [m for m in household.members if m.role.is_parent]
    long_unemployed = [m for m in parents if m.unemployed_since and m.unemployed_since <= cutoff]
    if long_unemployed:
        who = ", ".join(f"{m.role} unemployed since {m.unemployed_since} "
                        f"({_years(m.unemployed_since, today)} years)"  # type: ignore[arg-type]
                        for m in long_unemployed)
        return Criterion("parent_unemployed_12_months", True, who)
    if not parents:
        return Criterion("parent_unemployed_12_months", False, "no mother or father in the household")
    return Criterion("parent_unemployed_12_months", False,
                     f"no mother or father has been unemployed since {cutoff} or earlier")


def _years(since: date, today: date) -> int:
    return today.year - since.year - ((today.month, today.day) < (since.month, since.day))


# --- the outreach funnel ------------------------------------------------------------------

class HouseholdStatus(StrEnum):
    NOT_ELIGIBLE = "not_eligible"
    IDENTIFIED = "identified"
    NO_ANSWER = "no_answer"
    CONTACTED = "contacted"
    INVITED = "invited"
    DECLINED = "declined"
    CONSENTED = "consented"
    WAITLISTED = "waitlisted"
    ENROLLED = "enrolled"
    EXITED = "exited"


S = HouseholdStatus
TRANSITIONS: dict[HouseholdStatus, frozenset[HouseholdStatus]] = {
    S.NOT_ELIGIBLE: frozenset({S.IDENTIFIED}),
    S.IDENTIFIED: frozenset({S.CONTACTED, S.NO_ANSWER, S.INVITED, S.DECLINED, S.NOT_ELIGIBLE}),
    S.NO_ANSWER: frozenset({S.CONTACTED, S.NO_ANSWER, S.INVITED, S.DECLINED, S.NOT_ELIGIBLE}),
    S.CONTACTED: frozenset({S.CONTACTED, S.INVITED, S.DECLINED, S.NOT_ELIGIBLE}),
    S.INVITED: frozenset({S.CONSENTED, S.DECLINED, S.INVITED}),
    S.DECLINED: frozenset({S.CONTACTED, S.INVITED}),
    S.CONSENTED: frozenset({S.ENROLLED, S.WAITLISTED, S.DECLINED}),
    S.WAITLISTED: frozenset({S.ENROLLED, S.EXITED}),
    S.ENROLLED: frozenset({S.EXITED}),
    S.EXITED: frozenset(),
}
#: The funnel's stages, in order; counts are cumulative ("reached at least this stage").
FUNNEL_ORDER = (S.IDENTIFIED, S.CONTACTED, S.INVITED, S.CONSENTED, S.ENROLLED)
#: The stage a status proves a household has reached. A decline proves a contact (at least); a
#: waitlisted family has consented but is not enrolled; not eligible and exited prove nothing more
#: than what came before, which only the household's furthest stage remembers.
_STAGE_SHOWN_BY = {S.IDENTIFIED: S.IDENTIFIED, S.NO_ANSWER: S.IDENTIFIED, S.CONTACTED: S.CONTACTED,
                   S.DECLINED: S.CONTACTED, S.INVITED: S.INVITED, S.CONSENTED: S.CONSENTED,
                   S.WAITLISTED: S.CONSENTED, S.ENROLLED: S.ENROLLED}


def transition(current: HouseholdStatus, target: HouseholdStatus) -> HouseholdStatus:
    return check_transition(TRANSITIONS, current, target, error=IntakeConflict, noun="household")


class ContactOutcome(StrEnum):
    NOT_HOME = "not_home"
    DECLINED = "declined"
    WANTS_TO_HEAR_MORE = "wants_to_hear_more"
    AGREED = "agreed"


_AFTER_ATTEMPT = {ContactOutcome.NOT_HOME: S.NO_ANSWER, ContactOutcome.DECLINED: S.DECLINED,
                  ContactOutcome.WANTS_TO_HEAR_MORE: S.CONTACTED, ContactOutcome.AGREED: S.INVITED}


def status_after_attempt(current: HouseholdStatus, outcome: ContactOutcome) -> HouseholdStatus:
    """A door-knock moves the funnel; outreach to an enrolled family is refused."""
    target = _AFTER_ATTEMPT[outcome]
    if current is S.INVITED and outcome is ContactOutcome.NOT_HOME:
        return current  # already invited: a missed visit does not undo the invitation
    return transition(current, target)


def furthest_stage(previous: HouseholdStatus | None, status: HouseholdStatus) -> HouseholdStatus | None:
    """The furthest funnel stage reached once the household is in ``status``.

    Kept on every transition because the current status forgets the past: a family that declines
    after an invitation was invited, and one that leaves the waitlist was never enrolled.
    """
    shown = _STAGE_SHOWN_BY.get(status)
    if shown is None or (previous is not None and FUNNEL_ORDER.index(previous) >= FUNNEL_ORDER.index(shown)):
        return previous
    return shown


def funnel_counts(furthest: Iterable[HouseholdStatus | None]) -> dict[str, int]:
    """Cumulative counts from each household's furthest stage: how many reached at least each
    stage (223 identified … 62 enrolled). Households never identified (not eligible) count nowhere."""
    counts = dict.fromkeys((stage.value for stage in FUNNEL_ORDER), 0)
    for reached in furthest:
        if reached is None:
            continue
        for stage in FUNNEL_ORDER[: FUNNEL_ORDER.index(reached) + 1]:
            counts[stage.value] += 1
    return counts


# --- consent ------------------------------------------------------------------------------

class ConsentState(StrEnum):
    GIVEN = "given"
    RENEWED = "renewed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


CONSENT_TRANSITIONS = {
    ConsentState.GIVEN: frozenset({ConsentState.RENEWED, ConsentState.WITHDRAWN, ConsentState.EXPIRED}),
    ConsentState.RENEWED: frozenset({ConsentState.RENEWED, ConsentState.WITHDRAWN, ConsentState.EXPIRED}),
    ConsentState.WITHDRAWN: frozenset(),
    ConsentState.EXPIRED: frozenset(),
}


def transition_consent(current: ConsentState, target: ConsentState) -> ConsentState:
    """A withdrawn or expired consent stays so: the family gives a new one."""
    return check_transition(CONSENT_TRANSITIONS, current, target, error=IntakeConflict, noun="consent")


def check_consent_giver(subject: MemberRole, giver: MemberRole, same_person: bool) -> None:
    """Adults consent for themselves; a child's consent is given by an adult of the household."""
    if subject.is_adult and not same_person:
        raise IntakeConflict("An adult gives consent for themselves.")
    if not subject.is_adult and not giver.is_adult:
        raise IntakeConflict("A child's consent is given by an adult of the household.")


@dataclass(frozen=True)
class ConsentFacts:
    person_role: MemberRole
    departments: frozenset[Department]
    state: ConsentState
    expires_on: date | None


def covered_departments(consents: Iterable[ConsentFacts], *, today: date) -> set[Department]:
    """Departments the family's consent covers: the shared rule over its valid consents
    (``departments`` are those not withdrawn)."""
    return shared_covered((Cover(department, c.person_role.value, c.expires_on) for c in consents
                           if c.state in (ConsentState.GIVEN, ConsentState.RENEWED)
                           for department in c.departments), today=today)


# --- enrolment ----------------------------------------------------------------------------

class ExitReason(StrEnum):
    GOALS_REACHED = "goals_reached"
    MOVED_AWAY = "moved_away"
    WITHDREW = "withdrew"
    OTHER = "other"


def decide_enrolment(*, has_consent: bool, enrolled: int, capacity: int) -> HouseholdStatus:
    """Enrol if there is room, else waitlist; never without consent."""
    if not has_consent:
        raise IntakeConflict("A family can only be enrolled with a valid consent from an adult.")
    return S.ENROLLED if enrolled < capacity else S.WAITLISTED


def next_from_waitlist(waitlist: Iterable[tuple[UUID, set[Department]]]) -> UUID | None:
    """Who gets a freed place: the first family in waitlist order whose consent still covers a
    department. Consent may have been withdrawn or have expired while the family waited; such a
    family keeps its place in the queue (it can consent again) and the next one is asked."""
    return next((household_id for household_id, covered in waitlist if covered), None)


# --- register import ----------------------------------------------------------------------

IMPORT_COLUMNS = ("household_ref", "site_id", "address", "cpr", "role", "unemployed_since",
                  "lives_at_address")


@dataclass(frozen=True)
class ImportRow:
    line: int
    household_ref: str
    site_id: str
    address: str
    cpr: Cpr
    role: MemberRole
    unemployed_since: date | None
    lives_at_address: bool


class ImportRowError(ValueError):
    """A bad row: its line, the reason (never the CPR number) and its household if it names one."""

    def __init__(self, line: int, reason: str, household_ref: str | None = None) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason, self.household_ref = line, reason, household_ref


def missing_import_columns(text: str) -> list[str]:
    """The required columns the file's first line does not name (all of them for JSON, say)."""
    try:
        header = next(csv.reader(io.StringIO(text, newline="")), [])
    except csv.Error:
        header = []
    return [c for c in IMPORT_COLUMNS if c not in header]  # as exact as ``read_import`` is


def read_import(text: str, *, site: str | None = None) -> Iterator[ImportRow | ImportRowError]:
    """Parse the register extract row by row; a bad row yields its error and parsing goes on.

    ``site``: the importer's own site, when it is bound to one (a team leader); a row for any
    other site is bad. ``None`` (municipal systems, the operator's CLI) accepts every site.
    """
    # newline="": the csv module reads \r, \n and \r\n line ends itself (and inside quotes).
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [c for c in IMPORT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            yield ImportRowError(1, f"missing columns: {', '.join(missing)}")
            return
        for line, row in enumerate(reader, start=2):
            try:
                yield parse_import_row(row, line, site=site)
            except ImportRowError as exc:
                yield exc
    except csv.Error as exc:
        # A file that is not CSV past this point (e.g. a field over the csv module's size
        # limit) is a bad row for the report, not a server error; the message holds no data.
        yield ImportRowError(reader.line_num + 1, f"not valid CSV: {exc}")


def parse_import_row(row: dict[str, str], line: int, *, site: str | None = None) -> ImportRow:
    ref = (row.get("household_ref") or "").strip() or None

    def bad(reason: str) -> ImportRowError:
        return ImportRowError(line, reason, ref)

    def text(name: str) -> str:
        value = (row.get(name) or "").strip()
        if not value:
            raise bad(f"{name} is empty")
        return value

    household_ref, site_id = text("household_ref"), text("site_id")
    if site is not None and site_id != site:
        raise bad(f"site {site_id} is not yours")
    try:
        cpr = parse_cpr(text("cpr"))
    except InvalidCpr as exc:
        raise bad(f"cpr: {exc}") from None
    try:
        role = MemberRole(text("role"))
    except ValueError:
        raise bad(f"role must be one of {', '.join(MemberRole)}") from None
    since_raw = (row.get("unemployed_since") or "").strip()
    try:
        since = date.fromisoformat(since_raw) if since_raw else None
    except ValueError:
        raise bad("unemployed_since is not an ISO date") from None
    lives = (row.get("lives_at_address") or "yes").strip().lower()
    if lives not in ("yes", "no"):
        raise bad("lives_at_address must be yes or no")
    return ImportRow(line, household_ref, site_id, text("address"), cpr, role, since, lives == "yes")


def group_households(items: Iterable[ImportRow | ImportRowError],
                     ) -> tuple[dict[str, list[ImportRow]], list[ImportRowError]]:
    """Good rows by household, and every row that is not imported, in line order.

    A household is all or nothing: if any of its rows is bad, none is imported and each is
    reported. Importing the rest would create the household without that member, and the
    corrected file would then be skipped as already imported (households are known by reference).
    """
    rows: dict[str, list[ImportRow]] = {}
    errors: list[ImportRowError] = []
    for item in items:
        if isinstance(item, ImportRowError):
            errors.append(item)
        else:
            rows.setdefault(item.household_ref, []).append(item)
    spoilt = {e.household_ref for e in errors if e.household_ref is not None}
    for ref in spoilt & rows.keys():
        lines = [str(e.line) for e in errors if e.household_ref == ref]
        because = f"line{'s' if len(lines) > 1 else ''} {', '.join(lines)}"
        errors += [ImportRowError(r.line, f"household {ref} is not imported because of {because}", ref)
                   for r in rows.pop(ref)]
    return rows, sorted(errors, key=lambda e: e.line)
