"""Casework rules without I/O: the makkerpar choice, the goal lifecycle, escalation, outcomes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from uuid import UUID

from shared.statemachine import check_transition


class CaseworkConflict(Exception):
    """A broken rule or illegal transition (HTTP 409)."""


class Discipline(StrEnum):
    JOB_CONSULTANT = "job_consultant"
    EDUCATION_CONSULTANT = "education_consultant"
    COMPANY_CONSULTANT = "company_consultant"
    SOCIAL_WORKER = "social_worker"
    HEALTH_CONSULTANT = "health_consultant"
    HEALTH_VISITOR = "health_visitor"
    SCHOOL_TEACHER = "school_teacher"
    PEDAGOGUE = "pedagogue"
    PSYCHOLOGIST = "psychologist"
    CITIZEN_SERVICE = "citizen_service"
    OTHER = "other"


# --- stationing ---------------------------------------------------------------------------

@dataclass(frozen=True)
class StationingPeriod:
    """One stationing of a person in the site's team, from ``starts_on`` to ``ends_on`` inclusive."""

    id: UUID
    starts_on: date
    ends_on: date | None = None

    def covers(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)


def stationing_to_cut(existing: Sequence[StationingPeriod], starts_on: date) -> StationingPeriod | None:
    """A new stationing of the same person is an FTE change: the one running on its first day ends
    the day before, so the person keeps one id (and their families) and FTE-days are never counted
    twice. A stationing that starts on or after the new one's start would overlap it: refused.
    """
    later = [p for p in existing if p.starts_on >= starts_on]
    if later:
        raise CaseworkConflict(f"The staff member is already stationed from {later[0].starts_on}; "
                               "end or change that stationing instead.")
    return next((p for p in existing if p.covers(starts_on)), None)


def check_end(periods: Iterable[StationingPeriod], ending: StationingPeriod, ends_on: date) -> None:
    """An end may not reach into the person's next stationing (its FTE-days would count twice)."""
    clash = [p for p in periods if p.id != ending.id and ending.starts_on < p.starts_on <= ends_on]
    if clash:
        raise CaseworkConflict(f"The staff member's next stationing starts {clash[0].starts_on}; "
                               "end this one before that day.")


def leaves_site(periods: Iterable[StationingPeriod], ends_on: date) -> bool:
    """Whether a stationing ending on ``ends_on`` means the person leaves the team: no stationing
    of theirs carries on the next day (an FTE change does, a departure does not)."""
    next_day = ends_on + timedelta(days=1)
    return not any(p.covers(next_day) for p in periods)


# --- makkerpar ----------------------------------------------------------------------------

@dataclass(frozen=True)
class StaffLoad:
    staff_id: UUID
    discipline: Discipline
    families: int
    fte: Decimal

    @property
    def load(self) -> Decimal:
        return Decimal(self.families) / self.fte


class NoEligiblePair(CaseworkConflict):
    """Fewer than two disciplines are available at the site."""


def choose_pair(candidates: Sequence[StaffLoad], *,
                keep: Iterable[UUID] = ()) -> tuple[StaffLoad, StaffLoad]:
    """Two staff of different disciplines: keep who is asked for (continuity), else the least loaded.

    Ties are broken by staff id so the choice is deterministic.
    """
    ranked = sorted(candidates, key=lambda s: (s.staff_id not in set(keep), s.load, str(s.staff_id)))
    if len({s.discipline for s in ranked}) < 2:
        raise NoEligiblePair("A makkerpar needs two staff of different disciplines; this site has "
                             f"{len({s.discipline for s in ranked})} discipline(s) available.")
    first = ranked[0]
    second = next(s for s in ranked[1:] if s.discipline != first.discipline)
    return first, second


def who_to_call(pair: tuple[UUID, UUID], *, away: Collection[UUID], deputies: dict[UUID, UUID],
                stationed: Collection[UUID]) -> list[UUID]:
    """Today's entry point: the pair, with a named deputy standing in for a member who is away.

    Only staff stationed today are named: a member (or deputy) who has left the team is never
    the family's number to call, even before the family's pair has been handed over.
    """
    call: list[UUID] = []
    for member in pair:
        person = deputies.get(member, member) if member in away else member
        if person in stationed and person not in call:
            call.append(person)
    return call


# --- the family plan ----------------------------------------------------------------------

class GoalState(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    ACHIEVED = "achieved"
    CANCELLED = "cancelled"


G = GoalState
GOAL_TRANSITIONS = {G.PROPOSED: {G.ACTIVE, G.CANCELLED}, G.ACTIVE: {G.ON_HOLD, G.ACHIEVED, G.CANCELLED},
                    G.ON_HOLD: {G.ACTIVE, G.CANCELLED}, G.ACHIEVED: set(), G.CANCELLED: set()}


def transition_goal(current: GoalState, target: GoalState) -> GoalState:
    """Goals run side by side: any number may be active at once (simultaneity, not a staircase)."""
    return check_transition(GOAL_TRANSITIONS, current, target, error=CaseworkConflict, noun="goal")


# --- escalation ---------------------------------------------------------------------------

class EscalationStep(StrEnum):
    TEAM_SPARRING = "team_sparring"
    COLLEAGUE_JOINS = "colleague_joins"
    FAGLIG_VEN = "faglig_ven"


LADDER = (EscalationStep.TEAM_SPARRING, EscalationStep.COLLEAGUE_JOINS, EscalationStep.FAGLIG_VEN)


def check_escalation(taken: Sequence[EscalationStep], step: EscalationStep,
                     target_department: str | None) -> None:
    """Steps are climbed in order, each once per task; the faglig ven needs a department."""
    expected = LADDER[len(taken)] if len(taken) < len(LADDER) else None
    if step is not expected:
        raise CaseworkConflict(f"The next escalation step is {expected or 'none (top reached)'}, not {step}.")
    if step is EscalationStep.FAGLIG_VEN and not target_department:
        raise CaseworkConflict("A faglig ven is asked through a department: name it.")


# --- job first ----------------------------------------------------------------------------

class MatchState(StrEnum):
    PROPOSED = "proposed"
    MATCHED = "matched"
    REJECTED = "rejected"
    PLACED = "placed"
    ENDED = "ended"


M = MatchState
MATCH_TRANSITIONS = {M.PROPOSED: {M.MATCHED, M.REJECTED}, M.MATCHED: {M.PLACED, M.REJECTED},
                     M.PLACED: {M.ENDED}, M.REJECTED: set(), M.ENDED: set()}


def transition_match(current: MatchState, target: MatchState) -> MatchState:
    """The team decides together who matches a job; only a match can start, only a placement end."""
    return check_transition(MATCH_TRANSITIONS, current, target, error=CaseworkConflict, noun="job match")


# --- outcomes -----------------------------------------------------------------------------

class EmploymentStatus(StrEnum):
    UNEMPLOYED = "unemployed"
    ORDINARY_JOB = "ordinary_job"
    FLEX_JOB = "flex_job"
    EDUCATION = "education"
    EARLY_RETIREMENT_PENSION = "early_retirement_pension"
    OTHER = "other"


IN_JOB_OR_EDUCATION = {EmploymentStatus.ORDINARY_JOB, EmploymentStatus.FLEX_JOB, EmploymentStatus.EDUCATION}
ONE_DECIMAL = Decimal("0.1")


@dataclass(frozen=True)
class Figure:
    """A share or change in per cent, with what it was computed from."""

    value: Decimal | None
    numerator: int
    denominator: int
    families: int


def _share(numerator: int, denominator: int, families: int) -> Figure:
    value = None if denominator == 0 else (Decimal(100 * numerator) / denominator).quantize(
        ONE_DECIMAL, ROUND_HALF_UP)
    return Figure(value, numerator, denominator, families)


@dataclass(frozen=True)
class NetworkAnswer:
    """An answer to the network question (1–4) given on a day, at the start or a follow-up."""

    on: date
    occasion: str
    answer: int


@dataclass(frozen=True)
class AdultRecord:
    """An adult (mother, father or other adult) of a family counted in the period."""

    family_id: UUID
    statuses: tuple[tuple[date, EmploymentStatus], ...]
    network: tuple[NetworkAnswer, ...] = ()


@dataclass(frozen=True)
class ChildRecord:
    family_id: UUID
    absences: tuple[tuple[str, Decimal], ...]  # (term, percent), any order


@dataclass(frozen=True)
class Assessment:
    """The team's wellbeing score for a family on a day."""

    family_id: UUID
    on: date
    score: int


@dataclass(frozen=True)
class LeisureJob:
    family_id: UUID
    started_on: date
    ended_on: date | None = None

    def active_on(self, day: date) -> bool:
        return self.started_on <= day and (self.ended_on is None or self.ended_on >= day)


@dataclass(frozen=True)
class OutcomesReport:
    parents_in_job_or_education: Figure
    flex_job_share_of_those: Figure
    early_retirement_pension: Figure
    absence_change: Figure
    network_yes_at_start: Figure
    network_yes_now: Figure
    leisure_jobs_change: Figure
    wellbeing_change: Figure
    children_using_fritidspas: Figure


def status_on(statuses: Iterable[tuple[date, EmploymentStatus]], day: date) -> EmploymentStatus | None:
    latest = [(since, status) for since, status in statuses if since <= day]
    return max(latest)[1] if latest else None


def term_span(term: str) -> tuple[date, date]:
    """A school term's days: spring is January–June, autumn August–December (``2026-autumn``)."""
    year, season = term.split("-")
    if season == "spring":
        return date(int(year), 1, 1), date(int(year), 6, 30)
    return date(int(year), 8, 1), date(int(year), 12, 31)


def enrolled_in_period(enrolled_on: date | None, exited_on: date | None, *, period_start: date,
                       period_end: date) -> bool:
    """A family counts in a period when it took part at some time in it: enrolled by the period's
    end and not exited before its start."""
    return (enrolled_on is not None and enrolled_on <= period_end
            and (exited_on is None or exited_on >= period_start))


def outcomes_report(adults: Sequence[AdultRecord], children: Sequence[ChildRecord], *,
                    period_start: date, period_end: date,
                    leisure_jobs: Sequence[LeisureJob] = (),
                    wellbeing: Sequence[Assessment] = (),
                    fritidspas: tuple[int, int, int] = (0, 0, 0)) -> OutcomesReport:
    """The Gellerup evaluation's measures, computed from the recorded data (never stored).

    The records are those of the families counted in the period, adults and children apart (the
    caller selects them). Statuses are states, so the one in force on the period's end counts
    even if recorded before the period; answers, scores and terms are occasions, so only those
    within the period count, and nothing after its end does.
    """
    now = {a: status_on(a.statuses, period_end) for a in adults}
    measured = [a for a in adults if now[a] is not None]
    working = [a for a in measured if now[a] in IN_JOB_OR_EDUCATION]
    flex = [a for a in working if now[a] is EmploymentStatus.FLEX_JOB]
    pension = [a for a in measured if now[a] is EmploymentStatus.EARLY_RETIREMENT_PENSION]
    fams = lambda group: len({r.family_id for r in group})  # noqa: E731
    network = _network_in_period(adults, period_start, period_end)
    return OutcomesReport(
        parents_in_job_or_education=_share(len(working), len(measured), fams(measured)),
        flex_job_share_of_those=_share(len(flex), len(working), fams(working)),
        early_retirement_pension=_share(len(pension), len(measured), fams(measured)),
        absence_change=_absence_change(children, period_start, period_end),
        network_yes_at_start=_network(network, first=True),
        network_yes_now=_network(network, first=False),
        leisure_jobs_change=_leisure_change(leisure_jobs, period_start, period_end),
        wellbeing_change=_wellbeing_change(wellbeing, period_start, period_end),
        children_using_fritidspas=_share(*fritidspas),
    )


def _relative_change(before: Decimal, after: Decimal, numerator: int, denominator: int,
                     families: int) -> Figure:
    value = None if before == 0 else ((after - before) * 100 / before).quantize(ONE_DECIMAL, ROUND_HALF_UP)
    return Figure(value, numerator, denominator, families)


def _leisure_change(jobs: Sequence[LeisureJob], start: date, end: date) -> Figure:
    """Young people in a leisure job at the period's end against its start."""
    at_start = [j for j in jobs if j.active_on(start)]
    at_end = [j for j in jobs if j.active_on(end)]
    families = len({j.family_id for j in at_start + at_end})
    return _relative_change(Decimal(len(at_start)), Decimal(len(at_end)), len(at_end), len(at_start),
                            families)


def _wellbeing_change(scores: Sequence[Assessment], start: date, end: date) -> Figure:
    """The average latest score against the average first, over the families assessed twice or
    more within the period."""
    by_family: dict[UUID, list[Assessment]] = defaultdict(list)
    for score in sorted(scores, key=lambda s: s.on):
        if start <= score.on <= end:
            by_family[score.family_id].append(score)
    assessed = [s for s in by_family.values() if len(s) >= 2]
    before = Decimal(sum(s[0].score for s in assessed))
    after = Decimal(sum(s[-1].score for s in assessed))
    return _relative_change(before, after, len(assessed), len(assessed), len(assessed))


def _absence_change(children: Sequence[ChildRecord], start: date, end: date) -> Figure:
    """Relative change of the total absence from each child's first term in the period to its
    latest, over the children with two terms or more in it (a term counts if it overlaps)."""
    def in_period(term: str) -> bool:
        first_day, last_day = term_span(term)
        return first_day <= end and last_day >= start

    terms = [(c, sorted((t for t in c.absences if in_period(t[0])), key=lambda t: term_span(t[0])))
             for c in children]
    both = [(c, t) for c, t in terms if len(t) >= 2]
    before = sum((t[0][1] for _c, t in both), Decimal(0))
    after = sum((t[-1][1] for _c, t in both), Decimal(0))
    return _relative_change(before, after, len(both), len(both), len({c.family_id for c, _t in both}))


def _network_in_period(adults: Sequence[AdultRecord], start: date,
                       end: date) -> list[tuple[UUID, list[NetworkAnswer]]]:
    """Each adult's answers within the period: the start answer first, then by day."""
    answers = [(a.family_id, sorted((n for n in a.network if start <= n.on <= end),
                                    key=lambda n: (n.occasion != "start", n.on))) for a in adults]
    return [(family, given) for family, given in answers if given]


def _network(answered: Sequence[tuple[UUID, list[NetworkAnswer]]], *, first: bool) -> Figure:
    """Share answering yes (3 or 4) at the start of the period, or in the latest answer in it."""
    pick = (lambda given: given[0]) if first else (lambda given: max(given, key=lambda n: n.on))
    yes = [family for family, given in answered if pick(given).answer >= 3]
    return _share(len(yes), len(answered), len({family for family, _ in answered}))
