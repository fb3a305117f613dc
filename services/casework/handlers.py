"""Casework's reactions to intake's events. Handlers write and never commit (the inbox commits)."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import enrolment, service, staffing
from services.casework.models import Family
from shared.events.envelope import Envelope
from shared.events.intake import (
    ConsentGiven,
    ConsentGivenBase,
    ConsentGivenV2,
    ConsentRevoked,
    FamilyEnrolled,
    FamilyExited,
    MemberAdded,
)
from shared.inbox import Subscription

#: The municipality's calendar: an enrolment at 00:30 Danish time belongs to that Danish day.
LOCAL = ZoneInfo("Europe/Copenhagen")


def _day(envelope: Envelope) -> date:
    """The day the event happened in intake (its CloudEvents time), not the day it arrived."""
    return envelope.time.astimezone(LOCAL).date()


async def on_family_enrolled(session: AsyncSession, event: FamilyEnrolled, envelope: Envelope) -> None:
    """Register the family with its enrolment day and give it a makkerpar, unless it already has
    one (on Core statements: every enrolment costs this, see ``enrolment.py``)."""
    await enrolment.enrol(session, enrolment.Enrolment(
        family_id=event.family_id, site_id=event.site_id,
        members=[(m.person_id, m.role, m.birth_year) for m in event.members],
        shared_with=event.shared_with, day=_day(envelope)))


async def on_member_added(session: AsyncSession, event: MemberAdded, _: Envelope) -> None:
    member = event.member
    family = await service.register_family(session, family_id=event.family_id, site_id=event.site_id,
                                           members=[(member.person_id, member.role, member.birth_year)])
    _share(family, event.shared_with)


async def on_consent_changed(session: AsyncSession, event: ConsentGivenBase | ConsentRevoked,
                             _: Envelope) -> None:
    """Keep the family's consent cover as intake announces it (a family casework does not
    know yet is registered by its enrolment, which carries the cover too)."""
    family = await session.get(Family, event.family_id, with_for_update=True)
    if family is not None:
        _share(family, event.covered_after)


def _share(family: Family, departments: list[str] | None) -> None:
    """Take intake's cover when the event has it (events from before it was announced have not)."""
    if departments is not None:
        family.shared_with = sorted(departments)


async def on_family_exited(session: AsyncSession, event: FamilyExited, envelope: Envelope) -> None:
    """The family left: its pair ends (announced, so departments stop calling it) and the report
    stops counting it after the day."""
    family = await session.get(Family, event.family_id, with_for_update=True)
    if family is None:
        return
    family.status, family.exited_on, family.pair_status = "exited", _day(envelope), "ended"
    _share(family, event.shared_with)
    pair = await staffing.active_pair(session, family.id)
    if pair is not None:
        await staffing.end_pair(session, family=family, pair=pair, reason_code="family_exited")
    await session.flush()


SUBSCRIPTION = Subscription(name="casework", services=("intake",), handlers={
    FamilyEnrolled: on_family_enrolled, MemberAdded: on_member_added, FamilyExited: on_family_exited,
    ConsentGiven: on_consent_changed, ConsentGivenV2: on_consent_changed, ConsentRevoked: on_consent_changed})
