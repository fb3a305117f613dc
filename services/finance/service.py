"""Finance use cases. Each writes and flushes; the entrypoint commits."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance import domain as f
from services.finance import funding as funded
from services.finance.grants import Funding
from services.finance.models import AdultStatus, FamilySavings, LedgerEntry, SiteBudget, StationingCopy
from services.finance.schemas import (
    AllocationRead,
    BudgetIn,
    BudgetRead,
    EntryRead,
    FamilySavingsRead,
    PreviewIn,
    SavingsRead,
    StatementRead,
)
from shared.departments import Department
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events import finance as ev
from shared.outbox import record_event
from shared.pagination import Page, paginate


def to_budget(data: BudgetIn) -> f.Budget:
    try:
        return f.Budget(data.site_id, data.year, data.total_ore, data.pool_ore, data.pool_share)
    except f.InvalidBudget as exc:
        raise Unprocessable(str(exc), fields={f"body.{exc.field}": str(exc)}) from None


async def set_budget(session: AsyncSession, *, data: BudgetIn) -> BudgetRead:
    budget = to_budget(data)
    row = await session.get(SiteBudget, (data.site_id, data.year), with_for_update=True)
    if row is None:
        row = SiteBudget(site_id=data.site_id, year=data.year, total_ore=0, pool_ore=0)
        session.add(row)
    row.total_ore, row.pool_ore = budget.total_ore, budget.pool_amount_ore
    await session.flush()
    await record_event(session, ev.BudgetSet(site_id=row.site_id, year=row.year, total_ore=row.total_ore,
                                             pool_ore=row.pool_ore))
    return BudgetRead.model_validate(row, from_attributes=True)


async def list_budgets(session: AsyncSession, *, year: int, site_id: str | None, cursor: str | None,
                       limit: int) -> Page[BudgetRead]:
    """The year's site budgets, by site, in pages."""
    query = select(SiteBudget).where(SiteBudget.year == year)
    if site_id is not None:
        query = query.where(SiteBudget.site_id == site_id)
    return await paginate(session, query, key=SiteBudget.site_id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=lambda row: BudgetRead.model_validate(row, from_attributes=True))


async def _budget(session: AsyncSession, site_id: str, year: int, *, lock: bool = False) -> f.Budget:
    """The stored budget; ``lock`` serialises settlements of one site and year."""
    row = await session.get(SiteBudget, (site_id, year), with_for_update=lock)
    if row is None:
        raise NotFound("No budget for this site and year.")
    return f.Budget(site_id, year, row.total_ore, pool_ore=row.pool_ore)


async def _roster_rows(session: AsyncSession, site_id: str) -> list[StationingCopy]:
    return list((await session.execute(select(StationingCopy).where(StationingCopy.site_id == site_id)))
                .scalars())


def _stationed(rows: list[StationingCopy]) -> list[f.Stationed]:
    return [f.Stationed(Department(r.department), r.fte, r.starts_on, r.ends_on) for r in rows]


async def roster(session: AsyncSession, site_id: str) -> list[f.Stationed]:
    return _stationed(await _roster_rows(session, site_id))


def _read(budget: f.Budget, allocation: f.Allocation,
          latest: StationingCopy | None = None, funding: Funding | None = None) -> AllocationRead:
    return AllocationRead(site_id=budget.site_id, year=budget.year, total_ore=budget.total_ore,
                          pool_ore=allocation.pool_ore,
                          external_ore=funding.external_ore if funding else 0,
                          pool_before_grants_ore=budget.pool_amount_ore,
                          departments={d.value: a for d, a in allocation.departments.items()},
                          fte_days={d.value: x for d, x in allocation.fte_days.items()},
                          roster_as_of=latest.changed_at if latest else None,
                          roster_event_id=latest.changed_by if latest else None)


def _latest_change(rows: list[StationingCopy]) -> StationingCopy | None:
    """The stationing changed last: the roster change an allocation over ``rows`` includes."""
    changed = [r for r in rows if r.changed_at is not None]
    return max(changed, key=lambda r: (r.changed_at, r.changed_by or "")) if changed else None


def _allocate(budget: f.Budget, people: list[f.Stationed]) -> f.Allocation:
    try:
        return f.allocate_year(budget, people)
    except f.FinanceConflict as exc:
        raise Conflict(str(exc)) from None


async def allocation(session: AsyncSession, *, site_id: str, year: int, publish: bool) -> AllocationRead:
    """The year's split by the stationed FTE-days casework reported; optionally announced."""
    budget = await _budget(session, site_id, year)
    funding = await funded.funding_for(session, budget)
    rows = await _roster_rows(session, site_id)
    result = _allocate(funding.net_budget(), _stationed(rows))
    if publish:
        for department, amount in result.departments.items():
            await record_event(session, ev.AllocationComputed(
                site_id=site_id, year=year, department=department.value, amount_ore=amount,  # type: ignore[arg-type]
                fte_days=str(result.fte_days[department])))
    return _read(budget, result, _latest_change(rows), funding)


def preview(data: PreviewIn) -> AllocationRead:
    budget = to_budget(data)
    people = []
    for index, entry in enumerate(data.roster):
        try:
            people.append(f.Stationed(entry.department, entry.fte, entry.starts_on, entry.ends_on))
        except f.InvalidBudget as exc:
            raise Unprocessable(str(exc), fields={f"body.roster.{index}.{exc.field}": str(exc)}) from None
    return _read(budget, _allocate(budget, people))


async def settle(session: AsyncSession, *, site_id: str, year: int, quarter: int | None) -> list[EntryRead]:
    """Charge each department for a quarter (or the year) once; issue again only by correction."""
    # The municipality charges only what external funding does not pay.
    gross = await _budget(session, site_id, year, lock=True)
    budget = (await funded.funding_for(session, gross)).net_budget()
    people = await roster(session, site_id)
    if quarter is None:
        start, end = f.year_bounds(year)
        parts = _allocate(budget, people).departments
    else:
        start, end, parts = f.allocate_quarters(budget, people)[quarter - 1]
    overlapping = (await session.execute(select(LedgerEntry.id).where(
        LedgerEntry.site_id == site_id, LedgerEntry.period_start <= end, LedgerEntry.period_end >= start,
        LedgerEntry.kind == "charge"))).first()
    if overlapping is not None:
        raise Conflict("This period, or part of it, is already settled; post a correction instead.")
    entries = []
    for department, amount in parts.items():
        entry = LedgerEntry(site_id=site_id, department=department.value, period_start=start, period_end=end,
                            amount_ore=amount, kind="charge")
        session.add(entry)
        await session.flush()
        await record_event(session, ev.SettlementIssued(
            site_id=site_id, year=year, department=department.value, entry_id=entry.id,  # type: ignore[arg-type]
            period_start=start, period_end=end, amount_ore=amount))
        entries.append(EntryRead.model_validate(entry, from_attributes=True))
    return entries


async def correct(session: AsyncSession, *, entry_id: uuid.UUID, amount_ore: int) -> list[EntryRead]:
    original = await session.get(LedgerEntry, entry_id, with_for_update=True)
    if original is None or original.kind == "reversal":
        raise NotFound("No such charge.")
    reversed_already = (await session.execute(select(LedgerEntry.id).where(
        LedgerEntry.reverses == entry_id))).first()
    if reversed_already is not None:
        raise Conflict("This entry was already corrected; correct the newest entry instead.")
    minus, plus = f.correction_entries(original.amount_ore, amount_ore)
    common = {"site_id": original.site_id, "department": original.department,
              "period_start": original.period_start, "period_end": original.period_end}
    reversal = LedgerEntry(**common, amount_ore=minus, kind="reversal", reverses=original.id)
    correction = LedgerEntry(**common, amount_ore=plus, kind="correction")
    session.add_all([reversal, correction])
    await session.flush()
    await record_event(session, ev.CorrectionPosted(
        site_id=original.site_id, year=original.period_start.year, department=original.department,  # type: ignore[arg-type]
        original_entry_id=original.id, reversal_entry_id=reversal.id, correction_entry_id=correction.id,
        amount_ore=plus))
    return [EntryRead.model_validate(e, from_attributes=True) for e in (reversal, correction)]


async def statement(session: AsyncSession, *, site_id: str, department: str, year: int) -> StatementRead:
    rows = (await session.execute(select(LedgerEntry).where(
        LedgerEntry.site_id == site_id, LedgerEntry.department == department,
        LedgerEntry.period_start >= date(year, 1, 1), LedgerEntry.period_start <= date(year, 12, 31))
        .order_by(LedgerEntry.period_start, LedgerEntry.issued_at))).scalars().all()
    entries = [EntryRead.model_validate(r, from_attributes=True) for r in rows]
    return StatementRead(site_id=site_id, department=department, year=year, entries=entries,
                         balance_ore=sum(e.amount_ore for e in entries),
                         external_funding_ore=await _grant_relief(session, site_id, department, year))


async def _grant_relief(session: AsyncSession, site_id: str, department: str, year: int) -> int | None:
    """What the grants take off the department's share of the year (None when nothing is split)."""
    row = await session.get(SiteBudget, (site_id, year))
    people = await roster(session, site_id)
    if row is None:
        return None
    budget = f.Budget(site_id, year, row.total_ore, pool_ore=row.pool_ore)
    net = (await funded.funding_for(session, budget)).net_budget()
    try:
        gross_share = f.allocate_year(budget, people).departments[Department(department)]
        net_share = f.allocate_year(net, people).departments[Department(department)]
    except f.FinanceConflict:  # nobody stationed in the year: no shares to compare
        return None
    return gross_share - net_share


def statement_csv(data: StatementRead) -> str:
    """RFC 4180 CSV for the finance system: amounts in øre and as DKK with two decimals. Before
    the balance, when the year is split, a line with what external grants took off the
    department's share (already left out of the charges, so not part of the balance)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["entry_id", "site_id", "department", "period_start", "period_end", "kind", "reverses",
                     "amount_ore", "amount_dkk"])
    for e in data.entries:
        writer.writerow([e.id, e.site_id, e.department, e.period_start, e.period_end, e.kind,
                         e.reverses or "", e.amount_ore, f.format_dkk(e.amount_ore)])
    if data.external_funding_ore is not None:
        writer.writerow(["external_funding", data.site_id, data.department, "", "", "", "",
                         data.external_funding_ore, f.format_dkk(data.external_funding_ore)])
    writer.writerow(["balance", data.site_id, data.department, "", "", "", "", data.balance_ore,
                     f.format_dkk(data.balance_ore)])
    return out.getvalue()


async def set_savings(session: AsyncSession, *, family_id: uuid.UUID, site_id: str, baseline_ore: int,
                      current_ore: int) -> dict[str, int]:
    row = await session.get(FamilySavings, family_id, with_for_update=True)
    if row is None:  # finance knows the families intake enrolled: a guessed id would skew averages
        raise NotFound("No enrolled family with this id.")
    if row.site_id != site_id:
        raise Unprocessable("The family belongs to another site.",
                            fields={"body.site_id": "not the family's site"})
    row.baseline_ore, row.current_ore = baseline_ore, current_ore
    session.add(row)
    await session.flush()
    return {"savings_per_year_ore": baseline_ore - current_ore}


async def savings(session: AsyncSession, *, site_id: str | None, years: int, year: int) -> SavingsRead:
    query = select(FamilySavings).where(FamilySavings.baseline_ore.is_not(None),  # type: ignore[union-attr]
                                        FamilySavings.current_ore.is_not(None))  # type: ignore[union-attr]
    # Families with entered figures use them; the others are derived from outcome events.
    if site_id:
        query = query.where(FamilySavings.site_id == site_id)
    entered = {r.family_id: (r.baseline_ore or 0, r.current_ore or 0)
               for r in (await session.execute(query)).scalars()}
    derived = await _derived_savings(session, site_id, exclude=set(entered))
    pool = await funded.pool_after_grants(session, year=year, site_id=site_id or None)
    report = f.savings_report([*entered.values(), *derived.values()], pool_per_year_ore=pool, years=years)
    every = sorted({**entered, **derived}.items(), key=lambda item: str(item[0]))
    per_family = [FamilySavingsRead(family_id=family, savings_per_year_ore=base - now,
                                    derived=family in derived) for family, (base, now) in every]
    return SavingsRead(site_id=site_id, years=years, per_family=per_family, **report.__dict__)


async def _derived_savings(session: AsyncSession, site_id: str | None,
                           exclude: set[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """Per family: the rate table applied to its adults' first and latest employment status."""
    query = select(AdultStatus)
    if site_id:
        query = query.where(AdultStatus.site_id == site_id)
    families: dict[uuid.UUID, tuple[int, int]] = {}
    for row in (await session.execute(query)).scalars():
        if row.family_id in exclude:
            continue
        baseline, current = families.get(row.family_id, (0, 0))
        families[row.family_id] = (baseline + f.RATE_TABLE_ORE[row.first_status],
                                   current + f.RATE_TABLE_ORE[row.current_status])
    return families
