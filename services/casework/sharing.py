"""Casework's family events go only to the departments the family's consent covers."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.casework.models import Family
from shared.events import FamilyEvent
from shared.outbox import record_event


async def record_family_event(session: AsyncSession, event: FamilyEvent) -> None:
    """Record a family event stamped with the departments the family's consent covers (as intake
    last announced it), so the slice policy sends it to no other department."""
    family = await session.get(Family, event.family_id)
    await record_family_event_for(session, event, list(family.shared_with) if family is not None else [])


async def record_family_event_for(session: AsyncSession, event: FamilyEvent, shared_with: list[str]) -> None:
    """The same, for a caller that holds the family's cover already (no read of the family)."""
    await record_event(session, event.model_copy(update={"shared_with": list(shared_with)}))
