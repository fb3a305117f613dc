"""Casework rules without I/O: the makkerpar choice, the goal lifecycle, escalation, outcomes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
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


def who_to_call(pair: tuple[UUID, UUID], *, away: set[UUID], deputies: dict[UUID, UUID]) -> list[UUID]:
    """Today's entry point: the pair, with a named deputy standing in for a member who is away."""
    return [deputies.get(member, member) if member in away else member for member in pair]


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
class AdultRecord:
    family_id: UUID
    statuses: tuple[tuple[date, EmploymentStatus], ...]
    network: tuple[tuple[str, int], ...] = ()  # (occasion, answer) in time order


@dataclass(frozen=True)
class ChildRecord:
    family_id: UUID
    absences: tuple[tuple[str, Decimal], ...]  # (term, percent) in term order


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


def outcomes_report(adults: Sequence[AdultRecord], children: Sequence[ChildRecord], *,
                    period_end: date, period_start: date | None = None,
                    leisure_jobs: Sequence[LeisureJob] = (),
                    wellbeing: Sequence[tuple[UUID, Sequence[int]]] = (),
                    fritidspas: tuple[int, int, int] = (0, 0, 0)) -> OutcomesReport:
    """The Gellerup evaluation's measures, computed from the recorded data (never stored)."""
    now = {a: status_on(a.statuses, period_end) for a in adults}
    measured = [a for a in adults if now[a] is not None]
    working = [a for a in measured if now[a] in IN_JOB_OR_EDUCATION]
    flex = [a for a in working if now[a] is EmploymentStatus.FLEX_JOB]
    pension = [a for a in measured if now[a] is EmploymentStatus.EARLY_RETIREMENT_PENSION]
    fams = lambda group: len({r.family_id for r in group})  # noqa: E731
    return OutcomesReport(
        parents_in_job_or_education=_share(len(working), len(measured), fams(measured)),
        flex_job_share_of_those=_share(len(flex), len(working), fams(working)),
        early_retirement_pension=_share(len(pension), len(measured), fams(measured)),
        absence_change=_absence_change(children),
        network_yes_at_start=_network(adults, first=True),
        network_yes_now=_network(adults, first=False),
        leisure_jobs_change=_leisure_change(leisure_jobs, period_start, period_end),
        wellbeing_change=_wellbeing_change(wellbeing),
        children_using_fritidspas=_share(*fritidspas),
    )


def _relative_change(before: Decimal, after: Decimal, numerator: int, denominator: int,
                     families: int) -> Figure:
    value = None if before == 0 else ((after - before) * 100 / before).quantize(ONE_DECIMAL, ROUND_HALF_UP)
    return Figure(value, numerator, denominator, families)


def _leisure_change(jobs: Sequence[LeisureJob], start: date | None, end: date) -> Figure:
    """Young people in a leisure job at the period's end against its start."""
    at_start = [j for j in jobs if start is not None and j.active_on(start)]
    at_end = [j for j in jobs if j.active_on(end)]
    families = len({j.family_id for j in at_start + at_end})
    return _relative_change(Decimal(len(at_start)), Decimal(len(at_end)), len(at_end), len(at_start),
                            families)


def _wellbeing_change(scores: Sequence[tuple[UUID, Sequence[int]]]) -> Figure:
    """The average latest score against the average first, over families assessed twice or more."""
    assessed = [s for _family, s in scores if len(s) >= 2]
    before = Decimal(sum(s[0] for s in assessed))
    after = Decimal(sum(s[-1] for s in assessed))
    return _relative_change(before, after, len(assessed), len(assessed), len(assessed))


def _absence_change(children: Sequence[ChildRecord]) -> Figure:
    """Relative change of the total absence, first term to latest, over children with both."""
    both = [c for c in children if len(c.absences) >= 2]
    before = sum((c.absences[0][1] for c in both), Decimal(0))
    after = sum((c.absences[-1][1] for c in both), Decimal(0))
    return _relative_change(before, after, len(both), len(both), len({c.family_id for c in both}))


def _network(adults: Sequence[AdultRecord], *, first: bool) -> Figure:
    answered = [a for a in adults if a.network]
    pick = (lambda a: a.network[0][1]) if first else (lambda a: a.network[-1][1])
    yes = [a for a in answered if pick(a) >= 3]
    return _share(len(yes), len(answered), len({a.family_id for a in answered}))
