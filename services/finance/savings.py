"""Savings by area: a family's yearly public expenditure split into income support
(forsørgelse), the Social Services Act (Serviceloven) and the Children's Act (Barnets Lov), before
enrolment and now — entered by finance staff or imported as CSV from the economy system — and the
report of savings per family per year against the pool's (råderum's) contribution."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance import domain as f
from services.finance.funding import pool_after_grants
from services.finance.models import FamilyAreaCost, FamilySavings
from services.finance.schemas import (
    AreaCostIn,
    AreaSavingsReportRead,
    CostImportRead,
    FamilyCostsIn,
    FamilyCostsRead,
)
from shared.csvbody import read_csv_body
from shared.db import utcnow
from shared.errors import NotFound, Unprocessable
from shared.events import finance as ev
from shared.outbox import record_event

IMPORT_COLUMNS = ["family_id", "site_id", "area", "baseline_ore", "current_ore"]
MAX_ROWS = 100_000
MAX_ORE = 2**63 - 1


async def set_family_costs(session: AsyncSession, *, family_id: uuid.UUID,
                           data: FamilyCostsIn) -> FamilyCostsRead:
    """Enter a family's yearly expenditure in one or more areas (the others keep theirs)."""
    family = await session.get(FamilySavings, family_id, with_for_update=True)
    if family is None:  # finance knows the families intake enrolled: a guess would skew averages
        raise NotFound("No enrolled family with this id.")
    if family.site_id != data.site_id:
        raise Unprocessable("The family belongs to another site.",
                            fields={"body.site_id": "not the family's site"})
    figures = {f.CostArea(area): (cost.baseline_ore, cost.current_ore) for area, cost in data.areas.items()}
    await _write(session, family_id, family.site_id, figures, source="entered")
    return await _read(session, family_id, family.site_id)


async def import_costs(session: AsyncSession, *, content: bytes) -> CostImportRead:
    """Import figures from the economy system's CSV; all or nothing: a bad row loads no row and
    every bad row is named by its line."""
    _header, rows = read_csv_body(content, headers=(IMPORT_COLUMNS,), max_rows=MAX_ROWS)
    parsed: dict[tuple[uuid.UUID, f.CostArea], tuple[int, int]] = {}
    sites: dict[uuid.UUID, str] = {}
    lines: dict[uuid.UUID, list[int]] = defaultdict(list)
    errors: dict[str, str] = {}
    for line, cells in rows:
        problem, value = _parse_row(cells)
        if value is not None:
            family_id, site_id, area, amounts = value
            if (family_id, area) in parsed:
                problem = "the family's area appears twice"
            elif sites.setdefault(family_id, site_id) != site_id:
                problem = "the family appears with two sites"
            else:
                parsed[(family_id, area)] = amounts
                lines[family_id].append(line)
        if problem:
            errors[f"body.line.{line}"] = problem
    enrolled: dict[uuid.UUID, str] = {}
    ids = list(sites)
    for start in range(0, len(ids), 1000):  # the drivers cap the parameters of one statement
        enrolled.update((await session.execute(select(FamilySavings.family_id, FamilySavings.site_id).where(
            FamilySavings.family_id.in_(ids[start:start + 1000])))).tuples().all())  # type: ignore[attr-defined]
    for family_id, site_id in sites.items():
        if enrolled.get(family_id) != site_id:  # unknown, or another site: the same answer
            errors.update({f"body.line.{line}": "not a family enrolled at this site"
                           for line in lines[family_id]})
    if errors:
        ordered = sorted(errors.items(), key=lambda item: int(item[0].rsplit(".", 1)[1]))
        raise Unprocessable("The file has bad rows; nothing was imported.", fields=dict(ordered[:50]))
    if not parsed:
        raise Unprocessable("The file has no rows.", fields={"body": "no rows"})
    by_family: dict[uuid.UUID, dict[f.CostArea, tuple[int, int]]] = defaultdict(dict)
    for (family_id, area), amounts in parsed.items():
        by_family[family_id][area] = amounts
    for family_id in sorted(by_family, key=str):
        await session.get(FamilySavings, family_id, with_for_update=True)
        await _write(session, family_id, sites[family_id], by_family[family_id], source="imported")
    return CostImportRead(families=len(by_family), rows=len(parsed))


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


Parsed = tuple[uuid.UUID, str, f.CostArea, tuple[int, int]]


def _parse_row(cells: list[str]) -> tuple[str | None, Parsed | None]:
    """A row's values, or what is wrong with it (never repeating the cell)."""
    if len(cells) != len(IMPORT_COLUMNS):
        return f"needs {len(IMPORT_COLUMNS)} columns", None
    family_text, site_id, area, baseline, current = cells
    family_id = _uuid(family_text)
    if family_id is None:
        return "family_id is not an id", None
    if area not in {a.value for a in f.CostArea}:
        return "unknown area", None
    if not all(c.isascii() and c.isdigit() and int(c) <= MAX_ORE for c in (baseline, current)):
        return "amounts must be whole øre, not negative", None
    return None, (family_id, site_id, f.CostArea(area), (int(baseline), int(current)))


async def _write(session: AsyncSession, family_id: uuid.UUID, site_id: str,
                 figures: dict[f.CostArea, tuple[int, int]], *, source: str) -> None:
    for area, (baseline, current) in figures.items():
        row = await session.get(FamilyAreaCost, (family_id, area.value)) or FamilyAreaCost(
            family_id=family_id, area=area.value, site_id=site_id, baseline_ore=0, current_ore=0,
            source=source)
        row.baseline_ore, row.current_ore, row.source, row.updated_at = baseline, current, source, utcnow()
        session.add(row)
    await session.flush()
    await record_event(session, ev.FamilyCostsRecorded(
        family_id=family_id, site_id=site_id, source=source,
        areas=[ev.AreaCost(area=area.value, baseline_ore=b, current_ore=c)
               for area, (b, c) in sorted(figures.items())]))


async def _read(session: AsyncSession, family_id: uuid.UUID, site_id: str) -> FamilyCostsRead:
    rows = (await session.execute(select(FamilyAreaCost).where(
        FamilyAreaCost.family_id == family_id))).scalars()
    return FamilyCostsRead(family_id=family_id, site_id=site_id, areas={
        r.area: AreaCostIn(baseline_ore=r.baseline_ore, current_ore=r.current_ore) for r in rows})


async def savings_by_area(session: AsyncSession, *, site_id: str | None, year: int,
                          years: int) -> AreaSavingsReportRead:
    """Savings per area and in all for the families with figures, against the pool of ``year``."""
    query = select(FamilyAreaCost)
    if site_id:
        query = query.where(FamilyAreaCost.site_id == site_id)
    costs: dict[uuid.UUID, dict[f.CostArea, tuple[int, int]]] = defaultdict(dict)
    for row in (await session.execute(query)).scalars():
        costs[row.family_id][f.CostArea(row.area)] = (row.baseline_ore, row.current_ore)
    pool = await pool_after_grants(session, year=year, site_id=site_id or None)
    report = f.area_savings_report(costs, pool_per_year_ore=pool, years=years)
    return AreaSavingsReportRead(site_id=site_id, year=year, **{
        **report.__dict__, "areas": [a.__dict__ for a in report.areas], "total": report.total.__dict__})
