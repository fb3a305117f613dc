"""Reads of the read model for the views: small queries, filtered in SQL, a page at a time."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashboard import tables as t

PAGE_SIZE = 50
#: States in which a referral still waits for the department (an SLA can be missed).
OPEN_STATES = ("sent", "accepted", "in_progress", "on_hold")


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int
    page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


async def sites(session: AsyncSession) -> list[str]:
    """Every site the department has seen, for the site filter."""
    found: set[str] = set()
    for table in (t.families, t.referrals, t.stationings, t.charges):
        found.update((await session.execute(select(table.c.site_id).distinct())).scalars())
    return sorted(found)


async def families(session: AsyncSession, *, site: str | None, state: str | None, family_id: str | None,
                   page: int) -> Page:
    """Families, most recently active first, with their members."""
    where = []
    if site:
        where.append(t.families.c.site_id == site)
    if state:
        where.append(t.families.c.state == state)
    if family_id:
        where.append(t.families.c.family_id == family_id)
    total = (await session.execute(select(func.count()).select_from(t.families).where(*where))).scalar_one()
    rows = [dict(r._mapping) for r in await session.execute(
        select(t.families).where(*where).order_by(t.families.c.last_event_at.desc(), t.families.c.family_id)
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))]
    by_family = await _members(session, [r["family_id"] for r in rows])
    for row in rows:
        row["members"] = by_family.get(row["family_id"], [])
    return Page(rows, total, page)


async def _members(session: AsyncSession, family_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if family_ids:
        for r in await session.execute(select(t.members).where(t.members.c.family_id.in_(family_ids))
                                       .order_by(t.members.c.birth_year, t.members.c.person_id)):
            by_family[r.family_id].append(dict(r._mapping))
    return by_family


async def family(session: AsyncSession, family_id: str) -> dict[str, Any] | None:
    """One family with its members, referrals and timeline (newest first)."""
    row = (await session.execute(select(t.families).where(t.families.c.family_id == family_id))).first()
    if row is None:
        return None
    result = dict(row._mapping)
    result["members"] = (await _members(session, [family_id])).get(family_id, [])
    result["timeline"] = [dict(r._mapping) for r in await session.execute(
        select(t.timeline).where(t.timeline.c.family_id == family_id).order_by(t.timeline.c.at.desc()))]
    result["referrals"] = [dict(r._mapping) for r in await session.execute(
        select(t.referrals).where(t.referrals.c.family_id == family_id)
        .order_by(t.referrals.c.updated_at.desc()))]
    return result


def overdue_clause(now: datetime) -> Any:
    return and_(t.referrals.c.state.in_(OPEN_STATES),
                or_(t.referrals.c.overdue_announced.is_(True), t.referrals.c.due_at < now))


async def referrals(session: AsyncSession, *, site: str | None, state: str | None, overdue: bool,
                    now: datetime, page: int) -> Page:
    """Referrals, overdue first, then by due date; each row says whether it is overdue."""
    where = []
    if site:
        where.append(t.referrals.c.site_id == site)
    if state:
        where.append(t.referrals.c.state == state)
    if overdue:
        where.append(overdue_clause(now))
    is_overdue = overdue_clause(now).label("overdue")
    total = (await session.execute(select(func.count()).select_from(t.referrals).where(*where))).scalar_one()
    rows = [dict(r._mapping) for r in await session.execute(
        select(t.referrals, is_overdue).where(*where)
        .order_by(is_overdue.desc(), t.referrals.c.due_at.is_(None), t.referrals.c.due_at,
                  t.referrals.c.referral_id)
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))]
    for row in rows:
        row["overdue"] = bool(row["overdue"])
    return Page(rows, total, page)


async def staff(session: AsyncSession, *, site: str | None, today: str) -> list[dict[str, Any]]:
    """Per site: the department's stationed staff and the FTE of those stationed today."""
    query = select(t.stationings).order_by(t.stationings.c.site_id, t.stationings.c.starts_on)
    if site:
        query = query.where(t.stationings.c.site_id == site)
    by_site: dict[str, dict[str, Any]] = {}
    for r in await session.execute(query):
        entry = by_site.setdefault(r.site_id, {"site_id": r.site_id, "staff": [], "fte": Decimal(0)})
        active = (r.starts_on or "") <= today and (r.ends_on is None or r.ends_on >= today)
        entry["staff"].append({**dict(r._mapping), "active": active})
        if active and r.fte:
            entry["fte"] += Decimal(r.fte)
    return list(by_site.values())


async def charges(session: AsyncSession, *, site: str | None) -> list[dict[str, Any]]:
    """The department's co-financing: allocations, then settlements and corrections, by year."""
    query = select(t.charges).order_by(t.charges.c.year.desc(), t.charges.c.site_id, t.charges.c.kind,
                                        t.charges.c.period_start, t.charges.c.at)
    if site:
        query = query.where(t.charges.c.site_id == site)
    return [dict(r._mapping) for r in await session.execute(query)]
