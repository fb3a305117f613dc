"""Finance's reactions to casework's stationing events and intake's enrolments."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.models import FamilySavings, StationingCopy
from shared.events.casework import StaffStationed, StationingEnded
from shared.events.envelope import Envelope
from shared.events.intake import FamilyEnrolled
from shared.inbox import Subscription


async def on_staff_stationed(session: AsyncSession, event: StaffStationed, _: Envelope) -> None:
    """Keyed by the stationing id: the same stationing reported twice is counted once."""
    row = await session.get(StationingCopy, event.stationing_id) or StationingCopy(
        id=event.stationing_id, staff_id=event.staff_id, site_id=event.site_id, department=event.department,
        fte=event.fte, starts_on=event.starts_on)
    row.fte, row.starts_on, row.ends_on = event.fte, event.starts_on, event.ends_on
    session.add(row)
    await session.flush()


async def on_stationing_ended(session: AsyncSession, event: StationingEnded, _: Envelope) -> None:
    row = await session.get(StationingCopy, event.stationing_id)
    if row is not None:
        row.ends_on = event.ends_on
        await session.flush()


async def on_family_enrolled(session: AsyncSession, event: FamilyEnrolled, _: Envelope) -> None:
    if await session.get(FamilySavings, event.family_id) is None:
        session.add(FamilySavings(family_id=event.family_id, site_id=event.site_id))
        await session.flush()


SUBSCRIPTION = Subscription(name="finance", services=("intake", "casework"), handlers={
    StaffStationed: on_staff_stationed, StationingEnded: on_stationing_ended,
    FamilyEnrolled: on_family_enrolled})
