"""Intake's reactions to casework: which staff work at which site (outreach names one of them)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.models import KnownStaff
from shared.events.casework import StaffStationed
from shared.events.envelope import Envelope
from shared.inbox import Subscription


async def on_staff_stationed(session: AsyncSession, event: StaffStationed, _: Envelope) -> None:
    """Learn a staff member of a site; a stationing at another site moves them there."""
    known = await session.get(KnownStaff, event.staff_id)
    if known is None:
        session.add(KnownStaff(staff_id=event.staff_id, site_id=event.site_id))
    else:
        known.site_id = event.site_id
    await session.flush()


SUBSCRIPTION = Subscription(name="intake", services=("casework",),
                            handlers={StaffStationed: on_staff_stationed})
