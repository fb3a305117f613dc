"""The household as a write answers it: the team view's one statement, its persons told to the
write's audit entry (no member lookup of its own)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.cpr import CprVault
from services.intake.household_view import HouseholdView, load_household_view
from shared.audit import know_members


async def household_answer(session: AsyncSession, household_id: uuid.UUID, vault: CprVault) -> HouseholdView:
    """After the write's last change to the household: its answer (as ``read_household``'s), and
    every person it has held, as the audit entry names them."""
    view = await load_household_view(session, household_id=household_id, vault=vault)
    know_members(session, str(household_id), view.person_ids)
    return view
