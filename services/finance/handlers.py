"""Finance's reactions to casework's stationing events and intake's enrolments."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.models import AdultStatus, FamilySavings, StationingCopy
from shared.events.casework import EmploymentStatusRecorded, StaffStationed, StationingEnded
from shared.events.envelope import Envelope
from shared.events.intake import FamilyEnrolled
from shared.inbox import Subscription


async def on_staff_stationed(session: AsyncSession, event: StaffStationed, envelope: Envelope) -> None:
    """Keyed by the stationing id: the same stationing reported twice is counted once."""
    row = await session.get(StationingCopy, event.stationing_id) or StationingCopy(
        id=event.stationing_id, staff_id=event.staff_id, site_id=event.site_id, department=event.department,
        fte=event.fte, starts_on=event.starts_on)
    row.fte, row.starts_on, row.ends_on = event.fte, event.starts_on, event.ends_on
    _changed_by(row, envelope)
    session.add(row)
    await session.flush()


async def on_stationing_ended(session: AsyncSession, event: StationingEnded, envelope: Envelope) -> None:
    row = await session.get(StationingCopy, event.stationing_id)
    if row is not None:
        row.ends_on = event.ends_on
        _changed_by(row, envelope)
        await session.flush()


def _changed_by(row: StationingCopy, envelope: Envelope) -> None:
    """Remember the roster change (casework's event) so allocations can say what they include."""
    row.changed_by, row.changed_at = envelope.id, envelope.time


async def on_family_enrolled(session: AsyncSession, event: FamilyEnrolled, _: Envelope) -> None:
    if await session.get(FamilySavings, event.family_id) is None:
        session.add(FamilySavings(family_id=event.family_id, site_id=event.site_id))
        await session.flush()


async def on_employment_status(session: AsyncSession, event: EmploymentStatusRecorded, _: Envelope) -> None:
    """Keep the first (baseline) and the latest status; the rate table turns them into money."""
    row = await session.get(AdultStatus, event.person_id, with_for_update=True)
    if row is None:
        session.add(AdultStatus(person_id=event.person_id, family_id=event.family_id, site_id=event.site_id,
                                first_status=event.status, first_since=event.since,
                                current_status=event.status, current_since=event.since))
    elif event.since < row.first_since:
        row.first_status, row.first_since = event.status, event.since
    elif event.since >= row.current_since:
        row.current_status, row.current_since = event.status, event.since
    if await session.get(FamilySavings, event.family_id) is None:
        session.add(FamilySavings(family_id=event.family_id, site_id=event.site_id))
    await session.flush()


SUBSCRIPTION = Subscription(name="finance", services=("intake", "casework"), handlers={
    StaffStationed: on_staff_stationed, StationingEnded: on_stationing_ended,
    FamilyEnrolled: on_family_enrolled, EmploymentStatusRecorded: on_employment_status})
