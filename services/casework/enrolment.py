"""A family's enrolment as intake announces it (``family-enrolled``), on Core statements.

Every enrolment costs casework this handler, so it runs the statements it needs and no more: the
family's row locked and read, the candidates for its pair in one read, the family written once
with its final values (an insert for a family casework does not know yet, else one update), its
members in one statement that skips those already known, the pair and the event. The ORM path it
replaced wrote the same rows in 17 statements for a family of three (``tests/casework/
test_enrolment_fast_path.py`` compares every row and counts the statements).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import staffing
from services.casework.models import Family, FamilyMember, Makkerpar
from shared.db import insert_rows

_families = Family.__table__  # type: ignore[attr-defined]
_members = FamilyMember.__table__  # type: ignore[attr-defined]
_pairs = Makkerpar.__table__  # type: ignore[attr-defined]

_LOCK_FAMILY = (select(_families.c.site_id, _families.c.status, _families.c.pair_status,
                       _families.c.enrolled_on, _families.c.exited_on, _families.c.shared_with)
                .where(_families.c.id == bindparam("family_id")).with_for_update())
_HAS_PAIR = select(_pairs.c.id).where(_pairs.c.family_id == bindparam("family_id"), _pairs.c.active)
_INSERT_FAMILY = _families.insert()
_UPDATE_FAMILY = _families.update().where(_families.c.id == bindparam("family_id"))


@dataclass(frozen=True)
class Enrolment:
    """What ``family-enrolled`` tells casework (members as person id, role, birth year)."""

    family_id: uuid.UUID
    site_id: str
    members: Sequence[tuple[uuid.UUID, str, int]]
    shared_with: Sequence[str] | None
    day: date


async def enrol(session: AsyncSession, enrolment: Enrolment) -> None:
    """Register the family with its enrolment day and give it a makkerpar, unless it has one.

    Pending ORM changes of earlier events in the same batch are flushed first (these statements
    read the rows), and objects the session holds are expired after (they may be stale now)."""
    if len({person for person, _, _ in enrolment.members}) < len(enrolment.members):
        raise ValueError("A person is named twice among the family's members.")
    held = bool(session.identity_map) or bool(session.new) or bool(session.dirty) or bool(session.deleted)
    if held:
        await session.flush()
    await _enrol(session, enrolment)
    if held:
        session.expire_all()


async def _enrol(session: AsyncSession, enrolment: Enrolment) -> None:
    known = (await session.execute(_LOCK_FAMILY, {"family_id": enrolment.family_id})).first()
    if known is None:
        family = staffing.FamilyRef(enrolment.family_id, enrolment.site_id, _cover(enrolment.shared_with, []))
        needs_pair = True
        pair = await staffing.choose_pair(session, family.site_id)
        await session.execute(_INSERT_FAMILY, {
            "id": family.id, "site_id": family.site_id, "status": "active", "pair_status": _pair_status(pair),
            "wishes": "", "enrolled_on": enrolment.day, "exited_on": None, "shared_with": family.shared_with})
    else:
        family = staffing.FamilyRef(enrolment.family_id, known.site_id,
                                    _cover(enrolment.shared_with, known.shared_with))
        needs_pair = (await session.execute(_HAS_PAIR, {"family_id": family.id})).first() is None
        pair = await staffing.choose_pair(session, family.site_id) if needs_pair else None
        restarts = known.enrolled_on is None or known.status == "exited"
        await session.execute(_UPDATE_FAMILY, {
            "family_id": family.id, "status": "active", "shared_with": family.shared_with,
            "pair_status": _pair_status(pair) if needs_pair else known.pair_status,
            "enrolled_on": enrolment.day if restarts else known.enrolled_on,
            "exited_on": None if restarts else known.exited_on})
    await _add_members(session, enrolment)
    if not needs_pair:
        return
    if pair is None:
        await staffing.record_pending(session, family)
    else:
        await staffing.record_pair(session, family, pair, reason_code="enrolled")


def _cover(announced: Sequence[str] | None, kept: Sequence[str]) -> list[str]:
    """Intake's cover when the event has it (events from before it was announced have not)."""
    return sorted(announced) if announced is not None else list(kept)


def _pair_status(pair: object | None) -> str:
    return "pending" if pair is None else "assigned"


async def _add_members(session: AsyncSession, enrolment: Enrolment) -> None:
    """The members casework does not know yet (a person known already keeps their row)."""
    await insert_rows(session, _members, [
        {"person_id": person_id, "family_id": enrolment.family_id, "role": role, "birth_year": birth_year}
        for person_id, role, birth_year in enrolment.members])
