"""Use cases of the target areas: an admin defines or imports a site's area; screening reads it."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.intake import areas as a
from services.intake.models import Site, TargetArea, TargetAreaStreet
from services.intake.schemas import AreaIn, AreaRead, AreaStreetRead
from shared.db import utcnow
from shared.errors import NotFound, Unprocessable


async def load_area(session: AsyncSession, site_id: str) -> a.Area | None:
    """The site's area as the screening needs it; None while none is defined."""
    area = await session.get(TargetArea, site_id)
    if area is None:
        return None
    return a.Area(area.name, tuple(a.StreetRange(r.street, r.from_number, r.to_number, a.Side(r.side))
                                   for r in await _streets(session, site_id)))


async def _streets(session: AsyncSession, site_id: str) -> list[TargetAreaStreet]:
    rows = await session.execute(select(TargetAreaStreet).where(col(TargetAreaStreet.site_id) == site_id)
                                 .order_by(col(TargetAreaStreet.id)))
    return list(rows.scalars())


async def define_area(session: AsyncSession, *, site_id: str, data: AreaIn, by: str) -> AreaRead:
    """Replace the site's area with the given streets (checked first, so nothing half-written)."""
    problems: dict[str, str] = {}
    streets: list[a.StreetRange] = []
    for index, s in enumerate(data.streets):
        try:
            streets.append(a.street_range(s.street, s.from_number, s.to_number, s.side, line=index))
        except a.AreaRowError as exc:
            problems[f"body.streets.{index}"] = exc.reason
    if problems:
        raise Unprocessable("Some streets are not valid.", fields=problems)
    return await _replace(session, site_id=site_id, name=data.name, streets=streets, by=by)


async def import_area(session: AsyncSession, *, site_id: str, content: bytes, name: str | None,
                      by: str) -> AreaRead:
    """Replace the site's area with the streets of a CSV file; a file with a bad row changes
    nothing and every bad row is named by its line."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unprocessable("The file is not UTF-8 text.", fields={"body": "not UTF-8"}) from None
    streets, errors = a.read_area_csv(text)
    if errors:
        raise Unprocessable("The area file has bad rows; nothing was changed.",
                            fields={f"body.line {e.line}": e.reason for e in errors})
    current = await session.get(TargetArea, site_id)
    chosen = name or (current.name if current else None) or await _site_name(session, site_id)
    return await _replace(session, site_id=site_id, name=chosen, streets=streets, by=by)


async def read_area(session: AsyncSession, *, site_id: str) -> AreaRead:
    area = await session.get(TargetArea, site_id)
    if area is None:
        await _site_name(session, site_id)  # an unknown site is 404 as such
        raise NotFound(f"No target area is defined for site {site_id} yet.")
    return AreaRead(site_id=site_id, name=area.name, updated_at=area.updated_at, streets=[
        AreaStreetRead(street=r.street, from_number=r.from_number, to_number=r.to_number, side=r.side)
        for r in await _streets(session, site_id)])


async def _site_name(session: AsyncSession, site_id: str) -> str:
    site = await session.get(Site, site_id)
    if site is None:
        raise NotFound("No such site.")
    return site.name


async def _replace(session: AsyncSession, *, site_id: str, name: str, streets: list[a.StreetRange],
                   by: str) -> AreaRead:
    site = await session.get(Site, site_id, with_for_update=True)  # one change to an area at a time
    if site is None:
        raise NotFound("No such site.")
    area = await session.get(TargetArea, site_id)
    if area is None:
        area = TargetArea(site_id=site_id, name=name, updated_by=by)
        session.add(area)
    else:
        area.name, area.updated_at, area.updated_by = name, utcnow(), by
    await session.flush()
    await session.execute(delete(TargetAreaStreet).where(col(TargetAreaStreet.site_id) == site_id))
    session.add_all(TargetAreaStreet(site_id=site_id, street=s.street, street_key=a.street_key(s.street),
                                     from_number=s.from_number, to_number=s.to_number, side=s.side.value)
                    for s in streets)
    await session.flush()
    return await read_area(session, site_id=site_id)
