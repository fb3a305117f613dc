"""Casework's reactions to intake's events. Handlers write and never commit (the inbox commits)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import service
from services.casework.models import Family
from shared.events.envelope import Envelope
from shared.events.intake import FamilyEnrolled, FamilyExited, MemberAdded
from shared.inbox import Subscription


async def on_family_enrolled(session: AsyncSession, event: FamilyEnrolled, _: Envelope) -> None:
    """Register the family and give it a makkerpar, unless it already has one."""
    family = await service.register_family(
        session, family_id=event.family_id, site_id=event.site_id,
        members=[(m.person_id, m.role, m.birth_year) for m in event.members])
    family.status = "active"
    if await service.active_pair(session, family.id) is None:
        await service.assign_pair(session, family=family)


async def on_member_added(session: AsyncSession, event: MemberAdded, _: Envelope) -> None:
    member = event.member
    await service.register_family(session, family_id=event.family_id, site_id=event.site_id,
                                  members=[(member.person_id, member.role, member.birth_year)])


async def on_family_exited(session: AsyncSession, event: FamilyExited, _: Envelope) -> None:
    family = await session.get(Family, event.family_id, with_for_update=True)
    if family is None:
        return
    family.status = "exited"
    pair = await service.active_pair(session, family.id)
    if pair is not None:
        pair.active, pair.ended_at = False, service.now()
    await session.flush()


SUBSCRIPTION = Subscription(name="casework", services=("intake",), handlers={
    FamilyEnrolled: on_family_enrolled, MemberAdded: on_member_added, FamilyExited: on_family_exited})
