"""Intake use cases for sites and their capacity."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import domain as d
from services.intake.models import Household, Site
from services.intake.schemas import SiteIn, SiteRead


async def seed_sites(session: AsyncSession) -> None:
    """Create the default sites if missing (their capacity is then the admin's to change)."""
    for site in d.DEFAULT_SITES:
        if await session.get(Site, site.id) is None:
            session.add(Site(id=site.id, name=site.name, capacity=site.capacity))
    await session.flush()


async def list_sites(session: AsyncSession) -> list[SiteRead]:
    counts = dict(((await session.execute(select(Household.site_id, Household.status, func.count())
                                          .group_by(Household.site_id, Household.status)))
                  .all() and {}) or {})
    rows = (await session.execute(select(Household.site_id, Household.status, func.count())
                                  .group_by(Household.site_id, Household.status))).all()
    counts = defaultdict(int, {(site, status): n for site, status, n in rows})
    sites = (await session.execute(select(Site).order_by(Site.id))).scalars()
    return [SiteRead(id=s.id, name=s.name, capacity=s.capacity, enrolled=counts[(s.id, "enrolled")],
                     waitlisted=counts[(s.id, "waitlisted")]) for s in sites]


async def upsert_site(session: AsyncSession, *, data: SiteIn) -> SiteRead:
    site = await session.get(Site, data.id, with_for_update=True)
    if site is None:
        site = Site(id=data.id, name=data.name, capacity=data.capacity)
        session.add(site)
    else:
        site.name, site.capacity = data.name, data.capacity
    await session.flush()
    return next(s for s in await list_sites(session) if s.id == data.id)
