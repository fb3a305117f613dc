"""Finance's reactions to casework's stationing events and intake's enrolments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.models import AdultStatus, FamilySavings, StationingCopy
from shared.db import insert_rows
from shared.events.casework import EmploymentStatusRecorded, StaffStationed, StationingEnded
from shared.events.envelope import Envelope
from shared.events.intake import FamilyEnrolled
from shared.inbox import Subscription, one_at_a_time

STATIONINGS, SAVINGS = (cast(Table, model.__table__) for model in (StationingCopy, FamilySavings))


async def on_staff_stationings(session: AsyncSession,
                               batch: Sequence[tuple[StaffStationed, Envelope]]) -> None:
    """Keyed by the stationing id: the same stationing reported twice is counted once; a later
    report changes its extent and remembers the roster change (``_changed_by``)."""
    await insert_rows(session, STATIONINGS, [
        {"id": e.stationing_id, "staff_id": e.staff_id, "site_id": e.site_id, "department": e.department,
         "fte": e.fte, "starts_on": e.starts_on, "ends_on": e.ends_on, "changed_by": envelope.id,
         "changed_at": envelope.time} for e, envelope in batch],
        update=("fte", "starts_on", "ends_on", "changed_by", "changed_at"))


async def on_stationing_ended(session: AsyncSession, event: StationingEnded, envelope: Envelope) -> None:
    row = await session.get(StationingCopy, event.stationing_id)
    if row is not None:
        row.ends_on = event.ends_on
        _changed_by(row, envelope)
        await session.flush()


def _changed_by(row: StationingCopy, envelope: Envelope) -> None:
    """Remember the roster change (casework's event) so allocations can say what they include."""
    row.changed_by, row.changed_at = envelope.id, envelope.time


async def on_families_enrolled(session: AsyncSession,
                               batch: Sequence[tuple[FamilyEnrolled, Envelope]]) -> None:
    await insert_rows(session, SAVINGS, [{"family_id": e.family_id, "site_id": e.site_id} for e, _ in batch])


on_staff_stationed = one_at_a_time(on_staff_stationings)
on_family_enrolled = one_at_a_time(on_families_enrolled)


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
    StationingEnded: on_stationing_ended, EmploymentStatusRecorded: on_employment_status},
    batch_handlers={StaffStationed: on_staff_stationings, FamilyEnrolled: on_families_enrolled})
