"""Intake use cases for outreach: attempts to reach a family, and the funnel they feed."""

from __future__ import annotations

import uuid
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import domain as d
from services.intake.cpr import CprVault
from services.intake.models import Household, KnownStaff, OutreachAttempt
from services.intake.schemas import HouseholdRead, OutreachIn
from services.intake.service.answers import household_answer
from services.intake.service.households import change_status, lock_household_row
from shared.errors import Unprocessable
from shared.events import intake as events
from shared.outbox import record_event

_INSERT_ATTEMPT = OutreachAttempt.__table__.insert()  # type: ignore[attr-defined]


async def record_outreach(session: AsyncSession, *, household_id: uuid.UUID, data: OutreachIn,
                          vault: CprVault, caller: str) -> HouseholdRead:
    household = await lock_household_row(session, household_id)
    if data.at.tzinfo is None:
        raise Unprocessable("Times must carry a time zone.", fields={"body.at": "no time zone"})
    staff_id = await _outreach_staff(session, data.staff_id, caller=caller, site_id=household.site_id)
    status = d.status_after_attempt(d.HouseholdStatus(household.status), d.ContactOutcome(data.outcome))
    attempt_id, at = uuid.uuid4(), data.at.astimezone(UTC)
    await session.execute(_INSERT_ATTEMPT, {"id": attempt_id, "household_id": household.id, "at": at,
                                            "staff_id": staff_id, "channel": data.channel,
                                            "outcome": data.outcome})
    await change_status(session, household, status)
    await record_event(session, events.OutreachAttemptRecorded(
        family_id=household.id, site_id=household.site_id, attempt_id=attempt_id, at=at,
        staff_id=staff_id, outcome=data.outcome, status=status.value))
    return (await household_answer(session, household_id, vault)).read


async def _outreach_staff(session: AsyncSession, staff_id: str | None, *, caller: str, site_id: str) -> str:
    """Who made the attempt: the caller, or a staff member of the site known from casework.

    The id goes on intake's topic, so it must be a known id and never free text (a name, a note
    or a CPR number typed into the field is refused, and the value is not echoed).
    """
    if staff_id is None or staff_id == caller:
        return caller
    try:
        known = await session.get(KnownStaff, uuid.UUID(staff_id))
    except ValueError:
        known = None
    if known is None or known.site_id != site_id:
        raise Unprocessable("Not a staff member of this site.", fields={
            "body.staff_id": "not a staff member of the household's site, nor the caller"})
    return str(known.staff_id)


async def funnel(session: AsyncSession, *, site_id: str | None) -> dict[str, int]:
    query = select(Household.furthest_stage)
    if site_id:
        query = query.where(Household.site_id == site_id)
    stages = [d.HouseholdStatus(s) if s else None for s in (await session.execute(query)).scalars()]
    return d.funnel_counts(stages)
