"""Use cases of external funding: record a grant, list grants, and a site's year after its grants
(what allocations and settlements split). Each writes and flushes; the entrypoint commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.finance import grants as g
from services.finance.domain import Budget, InvalidBudget, year_bounds
from services.finance.funding_schemas import FundingRead, GrantIn, GrantRead, GrantShareRead, GrantYearRead
from services.finance.models import ExternalGrant, SiteBudget
from shared.errors import Conflict, Unprocessable
from shared.events import finance as ev
from shared.outbox import record_event
from shared.pagination import Page, paginate


def _grant(row: ExternalGrant) -> g.Grant:
    return g.Grant(row.code, row.funder, row.site_id, row.period_start, row.period_end, row.amount_ore,
                   g.PaysFor(row.pays_for))


def grant_read(row: ExternalGrant) -> GrantRead:
    years = g.grant_per_year(_grant(row))
    return GrantRead(id=row.id, site_id=row.site_id, code=row.code, funder=row.funder,
                     period_start=row.period_start, period_end=row.period_end, amount_ore=row.amount_ore,
                     pays_for=g.PaysFor(row.pays_for),
                     years=[GrantYearRead(year=year, amount_ore=amount) for year, amount in years.items()])


async def record_grant(session: AsyncSession, *, data: GrantIn) -> GrantRead:
    """Record a site's external grant; its code is the site's own, so a second one is 409."""
    try:
        grant = g.Grant(data.code, data.funder, data.site_id, data.period_start, data.period_end,
                        data.amount_ore, data.pays_for)
    except InvalidBudget as exc:
        raise Unprocessable(str(exc), fields={f"body.{exc.field}": str(exc)}) from None
    for name, day in (("period_start", data.period_start), ("period_end", data.period_end)):
        if not 2019 <= day.year <= 2100:
            raise Unprocessable("The period must lie within 2019–2100.",
                                fields={f"body.{name}": "before 2019 or after 2100"})
    taken = (await session.execute(select(col(ExternalGrant.id)).where(
        col(ExternalGrant.site_id) == data.site_id, col(ExternalGrant.code) == data.code))).first()
    if taken is not None:
        raise Conflict(f"The site already has a grant with the code {data.code}.")
    row = ExternalGrant(site_id=grant.site_id, code=grant.code, funder=grant.funder,
                        period_start=grant.period_start, period_end=grant.period_end,
                        amount_ore=grant.amount_ore, pays_for=grant.pays_for.value)
    session.add(row)
    await session.flush()
    await record_event(session, ev.GrantRecorded(
        grant_id=row.id, site_id=row.site_id, code=row.code, funder=row.funder,
        period_start=row.period_start, period_end=row.period_end, amount_ore=row.amount_ore,
        pays_for=grant.pays_for.value))
    return grant_read(row)


def _in_year(year: int) -> ColumnElement[bool]:
    """The grant pays for at least one day of the year."""
    first, last = year_bounds(year)
    return (col(ExternalGrant.period_start) <= last) & (col(ExternalGrant.period_end) >= first)


async def list_grants(session: AsyncSession, *, site_id: str | None, year: int | None, cursor: str | None,
                      limit: int) -> Page[GrantRead]:
    """The grants, of one site or all, paying for some of ``year`` if given, in pages."""
    query = select(ExternalGrant)
    if site_id is not None:
        query = query.where(col(ExternalGrant.site_id) == site_id)
    if year is not None:
        query = query.where(_in_year(year))
    return await paginate(session, query, key=ExternalGrant.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=grant_read, parse_key=uuid.UUID)


async def _grants(session: AsyncSession, site_id: str, year: int) -> list[ExternalGrant]:
    """The site's grants paying for some of the year, oldest period first (the order they apply)."""
    rows = await session.execute(select(ExternalGrant).where(col(ExternalGrant.site_id) == site_id,
                                                             _in_year(year))
                                 .order_by(col(ExternalGrant.period_start), col(ExternalGrant.recorded_at),
                                           col(ExternalGrant.id)))
    return list(rows.scalars())


async def funding_for(session: AsyncSession, budget: Budget) -> g.Funding:
    """The budget's year with the site's grants taken off: who pays what."""
    rows = await _grants(session, budget.site_id, budget.year)
    return g.apply_grants(budget, [_grant(row) for row in rows])


async def pool_after_grants(session: AsyncSession, *, year: int, site_id: str | None) -> int:
    """The råderum part the municipality itself pays in ``year`` (one site, or every site with a
    budget), after the sites' grants: what savings must cover to break even. A foundation's grant
    for the operating cost lowers the pool, so the pool before grants would set the bar too high."""
    budgets = select(SiteBudget).where(col(SiteBudget.year) == year)
    if site_id is not None:
        budgets = budgets.where(col(SiteBudget.site_id) == site_id)
    total = 0
    for row in (await session.execute(budgets)).scalars():
        funded = await funding_for(session, Budget(row.site_id, year, row.total_ore, pool_ore=row.pool_ore))
        total += funded.pool_ore
    return total


def share_reads(funding: g.Funding, rows: Sequence[ExternalGrant]) -> list[GrantShareRead]:
    ids = {(row.code, row.site_id): row.id for row in rows}
    return [GrantShareRead(grant_id=ids[(s.grant.code, s.grant.site_id)], code=s.grant.code,
                           funder=s.grant.funder, pays_for=s.grant.pays_for, amount_ore=s.amount_ore,
                           pool_reduction_ore=s.pool_reduction_ore,
                           departments_reduction_ore=s.departments_reduction_ore, unused_ore=s.unused_ore)
            for s in funding.shares]


async def funding(session: AsyncSession, *, year: int, site_id: str | None) -> list[FundingRead]:
    """Per site (with a budget or a grant in ``year``): the budget, the grants' part and what the
    råderum and the departments pay after them."""
    budgets = select(SiteBudget).where(col(SiteBudget.year) == year)
    granted = select(col(ExternalGrant.site_id)).where(_in_year(year)).distinct()
    if site_id is not None:
        budgets = budgets.where(col(SiteBudget.site_id) == site_id)
        granted = granted.where(col(ExternalGrant.site_id) == site_id)
    by_site = {row.site_id: row for row in (await session.execute(budgets)).scalars()}
    sites = sorted(set(by_site) | set((await session.execute(granted)).scalars()))
    answer = []
    for site in sites:
        rows = await _grants(session, site, year)
        row = by_site.get(site)
        if row is None:  # grants without a budget reduce nobody's payment yet
            shares = [GrantShareRead(grant_id=r.id, code=r.code, funder=r.funder,
                                     pays_for=g.PaysFor(r.pays_for),
                                     amount_ore=(amount := g.grant_per_year(_grant(r)).get(year, 0)),
                                     pool_reduction_ore=0, departments_reduction_ore=0, unused_ore=amount)
                      for r in rows]
            answer.append(FundingRead(site_id=site, year=year, total_ore=None, external_ore=0,
                                      pool_before_grants_ore=None, pool_ore=None,
                                      departments_before_grants_ore=None, departments_ore=None,
                                      grants=shares))
            continue
        budget = Budget(site, year, row.total_ore, pool_ore=row.pool_ore)
        result = g.apply_grants(budget, [_grant(r) for r in rows])
        answer.append(FundingRead(site_id=site, year=year, total_ore=budget.total_ore,
                                  external_ore=result.external_ore,
                                  pool_before_grants_ore=budget.pool_amount_ore, pool_ore=result.pool_ore,
                                  departments_before_grants_ore=budget.departments_ore,
                                  departments_ore=result.departments_ore, grants=share_reads(result, rows)))
    return answer
