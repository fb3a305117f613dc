"""Use cases of partners' tips: a partner submits one, the site's team follows it up, and the
funnel counts the households it identified. Each writes and flushes; the entrypoint commits."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.intake import areas as a
from services.intake import domain as d
from services.intake import tips as t
from services.intake.area_service import load_area
from services.intake.models import Household, PartnerTip, Site
from services.intake.tip_schemas import (
    TipFollowUpIn,
    TipIn,
    TipRead,
    TipSiteSummary,
    TipStatus,
    TipSummaryRead,
)
from shared.auth import Principal
from shared.db import utcnow
from shared.errors import Conflict, NotFound, Unprocessable
from shared.observability import CPR_SHAPE
from shared.pagination import Page, paginate


def status(tip: PartnerTip) -> TipStatus:
    return TipStatus(id=tip.id, received_at=tip.received_at, state=t.TipState(tip.state))


def read(tip: PartnerTip) -> TipRead:
    return TipRead(id=tip.id, site_id=tip.site_id, address=tip.address, reason=t.TipReason(tip.reason),
                   state=t.TipState(tip.state), outcome=t.TipOutcome(tip.outcome) if tip.outcome else None,
                   household_id=tip.household_id, received_at=tip.received_at,
                   followed_up_at=tip.followed_up_at)


async def submit_tip(session: AsyncSession, *, partner: Principal, data: TipIn) -> TipStatus:
    """Take a partner's tip for the site's team; the address must lie in the site's target area,
    since the team can offer nothing elsewhere (the areas are public reference data)."""
    if CPR_SHAPE.search(data.address):  # a tip carries no CPR number, even typed into the address
        raise Unprocessable("A tip carries no CPR number.",
                            fields={"body.address": "holds a CPR-shaped number"})
    if await session.get(Site, data.site_id) is None:
        raise Unprocessable("No such site.", fields={"body.site_id": "not a site"})
    check = a.check_address(data.address, await load_area(session, data.site_id), site_id=data.site_id)
    if not check.met:
        raise Unprocessable("The address is not in the site's target area.",
                            fields={"body.address": check.explanation})
    tip = PartnerTip(site_id=data.site_id, address=data.address, reason=data.reason.value,
                     partner=partner.subject)
    session.add(tip)
    await session.flush()
    return status(tip)


async def tip_status(session: AsyncSession, *, partner: Principal, tip_id: uuid.UUID) -> TipStatus:
    """The partner's own tip only; anyone else's is answered as a tip that does not exist."""
    tip = await session.get(PartnerTip, tip_id)
    if tip is None or tip.partner != partner.subject:
        raise NotFound("No such tip.")
    return status(tip)


async def own_tips(session: AsyncSession, *, partner: Principal, cursor: str | None,
                   limit: int) -> Page[TipStatus]:
    query = select(PartnerTip).where(col(PartnerTip.partner) == partner.subject)
    return await paginate(session, query, key=PartnerTip.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=status, parse_key=uuid.UUID)


async def site_tips(session: AsyncSession, *, site_id: str | None, state: t.TipState | None,
                    cursor: str | None, limit: int) -> Page[TipRead]:
    """The tips of one site (or all, for systems) in pages, optionally in one state."""
    query = select(PartnerTip)
    if site_id is not None:
        query = query.where(col(PartnerTip.site_id) == site_id)
    if state is not None:
        query = query.where(col(PartnerTip.state) == state.value)
    return await paginate(session, query, key=PartnerTip.id, cursor=cursor, limit=limit,  # type: ignore[arg-type]
                          convert=read, parse_key=uuid.UUID)


async def check_tip_site(session: AsyncSession, *, principal: Principal, tip_id: uuid.UUID) -> None:
    """Another site's tip is answered as one that does not exist."""
    tip = await session.get(PartnerTip, tip_id)
    if tip is None or not principal.can_see_site(tip.site_id):
        raise NotFound("No such tip.")


async def follow_up(session: AsyncSession, *, tip_id: uuid.UUID, data: TipFollowUpIn) -> TipRead:
    """Record what the team found; a household named must be one of the tip's site."""
    tip = await session.get(PartnerTip, tip_id, with_for_update=True)
    if tip is None:
        raise NotFound("No such tip.")
    try:
        state = t.follow_up(t.TipState(tip.state), data.outcome,
                            names_household=data.household_id is not None)
    except t.TipConflict as exc:
        raise Conflict(str(exc)) from None
    except ValueError as exc:
        raise Unprocessable("The household does not fit the outcome.",
                            fields={"body.household_id": str(exc)}) from None
    if data.household_id is not None:
        household = await session.get(Household, data.household_id)
        if household is None or household.site_id != tip.site_id:  # another site's: as unknown
            raise Unprocessable("No such household at the tip's site.",
                                fields={"body.household_id": "not a household of the tip's site"})
    tip.state, tip.outcome, tip.household_id = state.value, data.outcome.value, data.household_id
    tip.followed_up_at = utcnow()
    await session.flush()
    return read(tip)


async def summary(session: AsyncSession, *, site_id: str | None) -> TipSummaryRead:
    """Per site: tips received and followed up, outcomes, and the funnel of the households they
    identified (aggregates only: no address, id or reason leaves)."""
    grouped = (col(PartnerTip.site_id), col(PartnerTip.state), col(PartnerTip.outcome))
    counts = select(*grouped, func.count()).group_by(*grouped)
    stages = (select(col(PartnerTip.site_id), col(Household.furthest_stage))
              .join(Household, col(Household.id) == col(PartnerTip.household_id))
              .where(col(PartnerTip.outcome) == t.TipOutcome.REGISTERED.value))
    if site_id is not None:
        counts = counts.where(col(PartnerTip.site_id) == site_id)
        stages = stages.where(col(PartnerTip.site_id) == site_id)
    sites: dict[str, TipSiteSummary] = {}

    def of(site: str) -> TipSiteSummary:
        return sites.setdefault(site, TipSiteSummary(
            site_id=site, received=0, followed_up=0,
            outcomes=dict.fromkeys((o.value for o in t.TipOutcome), 0),
            households=d.funnel_counts([])))

    for site, state, outcome, number in (await session.execute(counts)).all():
        entry = of(site)
        entry.received += number
        if state == t.TipState.FOLLOWED_UP.value:
            entry.followed_up += number
            entry.outcomes[outcome] += number
    reached: dict[str, list[d.HouseholdStatus | None]] = defaultdict(list)
    for site, stage in (await session.execute(stages)).all():
        reached[site].append(d.HouseholdStatus(stage) if stage else None)
    for site, furthest in reached.items():
        of(site).households = d.funnel_counts(furthest)
    if site_id is not None:
        of(site_id)
    return TipSummaryRead(site_id=site_id, sites=[sites[s] for s in sorted(sites)])


async def tip_funnel(session: AsyncSession, *, site_id: str | None) -> dict[str, int]:
    """The funnel of the households identified by a partner's tip (of one site or all)."""
    query = (select(col(Household.furthest_stage))
             .join(PartnerTip, col(PartnerTip.household_id) == col(Household.id))
             .where(col(PartnerTip.outcome) == t.TipOutcome.REGISTERED.value))
    if site_id is not None:
        query = query.where(col(Household.site_id) == site_id)
    stages = (await session.execute(query)).scalars()
    return d.funnel_counts([d.HouseholdStatus(s) if s else None for s in stages])
