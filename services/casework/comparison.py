"""A comparison cohort (kontrolgruppe): an evaluator loads its figures for the report's measures
and period, as aggregates or as pseudonymised records in CSV; the report sets the project's
figure beside each. Only aggregates are kept: records are summed as they are read."""

from __future__ import annotations

import re
import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import measures as m
from services.casework.domain import Figure
from services.casework.models import ComparisonCohort, ComparisonFigure
from services.casework.outcomes import outcomes
from services.casework.schemas import (
    ComparisonCohortIn,
    ComparisonCohortRead,
    ComparisonFigureIn,
    ComparisonRead,
    ComparisonReportRead,
)
from shared.auth import Principal
from shared.csvbody import read_csv_body
from shared.errors import NotFound, Unprocessable
from shared.events import casework as ev
from shared.outbox import record_event

AGGREGATE_COLUMNS = ["measure", "numerator", "denominator"]
RECORD_COLUMNS = ["pseudonym", "measure", "value"]
#: A pseudonym is an opaque token; anything shaped like a CPR number (ten digits, maybe with a
#: dash) is refused, so a real number cannot slip in as a pseudonym.
CPR_SHAPED = re.compile(r"\d{6}-?\d{4}")
MAX_ROWS = 100_000


def _period(period_start: date, period_end: date, where: str) -> None:
    if period_end < period_start:
        raise Unprocessable("The period ends before it starts.",
                            fields={f"{where}.period_end": "before start"})


async def load_cohort(session: AsyncSession, *, principal: Principal, data: ComparisonCohortIn
                      ) -> ComparisonCohortRead:
    """Store a comparison cohort's aggregate figures (one per measure)."""
    _period(data.period_start, data.period_end, "body")
    figures: dict[str, tuple[int, int]] = {}
    for index, figure in enumerate(data.figures):
        where = f"body.figures.{index}"
        if figure.measure in figures:
            raise Unprocessable("A measure is given twice.", fields={f"{where}.measure": "given twice"})
        if figure.numerator > figure.denominator:
            raise Unprocessable("More counted than in the group.",
                                fields={f"{where}.numerator": "above the denominator"})
        figures[figure.measure] = (figure.numerator, figure.denominator)
    return await _store(session, principal=principal, code=data.code, period_start=data.period_start,
                        period_end=data.period_end, source="aggregates", records=None, figures=figures)


async def import_cohort(session: AsyncSession, *, principal: Principal, code: str, period_start: date,
                        period_end: date, content: bytes) -> ComparisonCohortRead:
    """Load a cohort from CSV: aggregates (``measure,numerator,denominator``) or pseudonymised
    records (``pseudonym,measure,value`` with value 0 or 1), all or nothing."""
    _period(period_start, period_end, "query")
    header, rows = read_csv_body(content, headers=(AGGREGATE_COLUMNS, RECORD_COLUMNS), max_rows=MAX_ROWS)
    aggregates = header == AGGREGATE_COLUMNS
    errors: dict[str, str] = {}
    parsed: list[tuple[str, int, int]] = []
    seen: set[tuple[str, str]] = set()
    for line, row in rows:
        problem, value = _parse_row(row, aggregates)
        if not problem and value and not aggregates:
            key = (row[0], value[0])
            problem = "the pseudonym appears twice for the measure" if key in seen else None
            seen.add(key)
        if problem:
            errors[f"body.line.{line}"] = problem
        elif value:
            parsed.append(value)
    if aggregates:
        figures: dict[str, tuple[int, int]] = {}
        for measure, numerator, denominator in parsed:
            if measure in figures:
                errors.setdefault(f"body.measure.{measure}", "given twice")
            figures[measure] = (numerator, denominator)
    else:
        figures = m.aggregate_records([(measure, value) for measure, value, _ in parsed])
    if errors:
        raise Unprocessable("The file has bad rows; nothing was loaded.",
                            fields=dict(list(errors.items())[:50]))
    if not figures:
        raise Unprocessable("The file has no rows.", fields={"body": "no rows"})
    return await _store(session, principal=principal, code=code, period_start=period_start,
                        period_end=period_end, source="aggregates" if aggregates else "records",
                        records=None if aggregates else len(parsed), figures=figures)


def _parse_row(cells: list[str], aggregates: bool) -> tuple[str | None, tuple[str, int, int] | None]:
    """A row's (measure, numerator, denominator) — for a record (measure, value, 1) — or what is
    wrong with it. The reason never repeats the cell's value."""
    if len(cells) != 3:
        return "needs three columns", None
    if aggregates:
        measure, numerator, denominator = cells
    else:
        pseudonym, measure, numerator = cells
        denominator = "1"
        if not pseudonym or CPR_SHAPED.search(pseudonym):
            return "the pseudonym is missing or shaped like a CPR number", None
    if measure not in m.COMPARABLE:
        return "unknown measure", None
    if not all(c.isascii() and c.isdigit() and len(c) <= 9 for c in (numerator, denominator)):
        return "counts must be whole numbers", None
    if int(numerator) > int(denominator):
        return "value must be 0 or 1" if not aggregates else "numerator above the denominator", None
    return None, (measure, int(numerator), int(denominator))


async def _store(session: AsyncSession, *, principal: Principal, code: str, period_start: date,
                 period_end: date, source: str, records: int | None,
                 figures: dict[str, tuple[int, int]]) -> ComparisonCohortRead:
    cohort = ComparisonCohort(code=code, period_start=period_start, period_end=period_end, source=source,
                              records=records, loaded_by=principal.subject)
    session.add(cohort)
    await session.flush()
    session.add_all([ComparisonFigure(cohort_id=cohort.id, measure=measure, numerator=n, denominator=d)
                     for measure, (n, d) in figures.items()])
    await session.flush()
    await record_event(session, ev.ComparisonCohortLoaded(
        cohort_id=cohort.id, code=code, period_start=period_start, period_end=period_end,
        source=source, records=records, measures=sorted(figures)))
    return _read(cohort, figures)


def _read(cohort: ComparisonCohort, figures: dict[str, tuple[int, int]]) -> ComparisonCohortRead:
    return ComparisonCohortRead(
        id=cohort.id, code=cohort.code, period_start=cohort.period_start, period_end=cohort.period_end,
        source=cohort.source, records=cohort.records, loaded_at=cohort.loaded_at,
        figures=[ComparisonFigureIn(measure=measure, numerator=n, denominator=d)
                 for measure, (n, d) in sorted(figures.items(), key=lambda f: m.COMPARABLE.index(f[0]))])


async def get_cohort(session: AsyncSession, *, cohort_id: uuid.UUID) -> ComparisonCohortRead:
    cohort = await session.get(ComparisonCohort, cohort_id)
    if cohort is None:
        raise NotFound("No such comparison cohort.")
    rows = (await session.execute(select(ComparisonFigure).where(
        ComparisonFigure.cohort_id == cohort_id))).scalars().all()  # type: ignore[arg-type]
    return _read(cohort, {r.measure: (r.numerator, r.denominator) for r in rows})


async def comparison_report(session: AsyncSession, *, cohort_id: uuid.UUID, site_id: str | None
                            ) -> ComparisonReportRead:
    """The project's figures for the cohort's period beside the cohort's, measure by measure."""
    cohort = await get_cohort(session, cohort_id=cohort_id)
    ours = await outcomes(session, site_id=site_id, period_start=cohort.period_start,
                          period_end=cohort.period_end)
    compared = []
    for figure in cohort.figures:
        project = getattr(ours, figure.measure)
        result = m.compare(figure.measure, Figure(**project.model_dump()), figure.numerator,
                           figure.denominator)
        compared.append(ComparisonRead(measure=result.measure, project=result.project.__dict__,
                                       comparison={k: v for k, v in result.comparison.__dict__.items()
                                                   if k != "families"},
                                       difference_points=result.difference_points, ratio=result.ratio))
    return ComparisonReportRead(cohort=cohort, site_id=site_id, measures=compared)
