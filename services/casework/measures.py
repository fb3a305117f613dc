"""The evaluation's further measures, as pure rules (no I/O): spouses and adult children as their
own group, young people starting a youth education, the family-reported questions, and the
comparison of a project figure with a comparison cohort's (kontrolgruppe).

Kept apart from ``domain.py`` so the original report's rules stay small; the report in
``outcomes.py`` calls both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from services.casework.domain import IN_JOB_OR_EDUCATION, EmploymentStatus, Figure, _share, status_on
from shared.consent import ADULT_ROLES

#: Parents in the report's sense: intake's mother and father. Intake gives a spouse or an adult
#: child at the address the role ``other_adult`` (added later, or registered with the household);
#: they are reported as their own group, never mixed into the parents' shares.
PARENT_ROLES = frozenset({"mother", "father"})
OTHER_ADULT_ROLES = ADULT_ROLES - PARENT_ROLES
#: Young people for the youth-education measure: aged 15–25 in the year the period ends.
YOUTH_AGES = range(15, 26)
#: The family-reported questions and the points on each one's scale (1 = worst). Asked of each
#: adult at the start and at follow-ups, like the network question.
QUESTIONS: dict[str, int] = {
    "health_mastery": 5,        # mastering one's own health
    "wellbeing": 5,             # how one is doing
    "surplus_energy": 5,        # overskud
    "quality_of_life": 5,       # livskvalitet
    "trust_in_municipality": 4,  # tillid til kommunen
}
TWO_DECIMALS = Decimal("0.01")
ONE_DECIMAL = Decimal("0.1")


def age_in(year: int, birth_year: int) -> int:
    """The age a person reaches in a year (intake shares only the birth year)."""
    return year - birth_year


def is_young(birth_year: int, period_end: date) -> bool:
    return age_in(period_end.year, birth_year) in YOUTH_AGES


def in_job_or_education_share(statuses: Sequence[tuple[UUID, Sequence[tuple[date, EmploymentStatus]]]],
                              period_end: date) -> Figure:
    """Of a group's members with a status on the period's end, those in job or education then."""
    now = [(family, status_on(given, period_end)) for family, given in statuses]
    measured = [(family, status) for family, status in now if status is not None]
    working = [family for family, status in measured if status in IN_JOB_OR_EDUCATION]
    return _share(len(working), len(measured), len({family for family, _ in measured}))


@dataclass(frozen=True)
class YoungPerson:
    family_id: UUID
    birth_year: int
    education_starts: tuple[date, ...] = ()


def youth_education_started(young: Sequence[YoungPerson], *, period_start: date, period_end: date) -> Figure:
    """Of the families' members aged 15–25 in the period's last year, those who started a youth
    education within the period."""
    counted = [p for p in young if is_young(p.birth_year, period_end)]
    started = [p for p in counted if any(period_start <= on <= period_end for on in p.education_starts)]
    return _share(len(started), len(counted), len({p.family_id for p in counted}))


@dataclass(frozen=True)
class Answer:
    """An adult's answer to a family-reported question on a day."""

    person_id: UUID
    family_id: UUID
    question: str
    on: date
    occasion: str
    answer: int


@dataclass(frozen=True)
class QuestionChange:
    question: str
    scale: int
    respondents: int
    families: int
    average_at_start: Decimal | None
    average_now: Decimal | None
    change: Decimal | None
    improved: Figure


def _mean(total: int, count: int) -> Decimal | None:
    return None if count == 0 else (Decimal(total) / count).quantize(TWO_DECIMALS, ROUND_HALF_UP)


def question_changes(answers: Sequence[Answer], *, period_start: date,
                     period_end: date) -> list[QuestionChange]:
    """Per question, over the adults who answered it twice or more within the period: the average
    first answer (the one marked ``start``, else the earliest), the average latest answer, and the
    change between them in points of the scale; and the share whose latest answer is higher."""
    given: dict[tuple[str, UUID], list[Answer]] = defaultdict(list)
    for a in answers:
        if period_start <= a.on <= period_end:
            given[(a.question, a.person_id)].append(a)
    result = []
    for question, scale in QUESTIONS.items():
        pairs = []
        for (asked, _person), own in given.items():
            if asked != question or len(own) < 2:
                continue
            first = min(own, key=lambda a: (a.occasion != "start", a.on))
            latest = max((a for a in own if a is not first), key=lambda a: a.on)
            pairs.append((first, latest))
        before, after = sum(f.answer for f, _ in pairs), sum(latest.answer for _, latest in pairs)
        improved = [f for f, latest in pairs if latest.answer > f.answer]
        families = len({f.family_id for f, _ in pairs})
        result.append(QuestionChange(
            question, scale, len(pairs), families, _mean(before, len(pairs)), _mean(after, len(pairs)),
            _mean(after - before, len(pairs)),
            _share(len(improved), len(pairs), families)))
    return result


# --- the comparison cohort ------------------------------------------------------------------

#: The report's shares a comparison cohort can be set beside: each is a count of a group over
#: the group, so another cohort's numerator and denominator mean the same.
COMPARABLE = ("parents_in_job_or_education", "flex_job_share_of_those", "early_retirement_pension",
              "network_yes_at_start", "network_yes_now", "children_using_fritidspas",
              "other_adults_in_job_or_education", "youth_education_started")


@dataclass(frozen=True)
class Comparison:
    measure: str
    project: Figure
    comparison: Figure
    difference_points: Decimal | None
    ratio: Decimal | None


def compare(measure: str, project: Figure, numerator: int, denominator: int) -> Comparison:
    """The project's share beside the comparison cohort's: the difference in percentage points
    (project − comparison, one decimal) and the ratio (project ÷ comparison, two decimals), both
    from the exact shares and rounded half up once; ``None`` where a share or the ratio is
    undefined (an empty group, a comparison share of nought)."""
    other = _share(numerator, denominator, 0)
    if project.denominator == 0 or denominator == 0:
        return Comparison(measure, project, other, None, None)
    ours = Decimal(project.numerator) / project.denominator
    theirs = Decimal(numerator) / denominator
    difference = (100 * (ours - theirs)).quantize(ONE_DECIMAL, ROUND_HALF_UP)
    ratio = None if numerator == 0 else (ours / theirs).quantize(TWO_DECIMALS, ROUND_HALF_UP)
    return Comparison(measure, project, other, difference, ratio)


def aggregate_records(records: Sequence[tuple[str, int]]) -> dict[str, tuple[int, int]]:
    """Pseudonymised records (measure, 0 or 1) summed to (numerator, denominator) per measure."""
    totals: dict[str, tuple[int, int]] = {}
    for measure, value in records:
        numerator, denominator = totals.get(measure, (0, 0))
        totals[measure] = (numerator + value, denominator + 1)
    return totals
