"""A tiny state table and test event so the plumbing is tested without any service."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from pydantic import ConfigDict
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.departments import Department
from shared.events import FamilyEvent, event
from shared.slices.policy import SlicePolicy, SliceRule
from shared.tables import plumbing_metadata

test_metadata = MetaData()
things = Table("things", test_metadata, Column("id", String(36), primary_key=True),
               Column("family_id", String(36)), Column("seq", Integer))
effects = Table("effects", test_metadata, Column("event_id", String(36)),
                Column("family_id", String(36)), Column("seq", Integer))


@event("testkit", "thing-happened")
class ThingHappened(FamilyEvent):
    """A thing happened to a family (plumbing tests only)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "family_id": "6f1c1c8e-3b7a-4d0e-9d8e-1f2a3b4c5d6e", "site_id": "gellerup", "seq": 1,
        "note": "private"}]})
    seq: int
    note: str = ""


async def create_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(plumbing_metadata.create_all)
        await conn.run_sync(test_metadata.create_all)


def thing(family_id: UUID, seq: int, **extra: Any) -> ThingHappened:
    return ThingHappened(family_id=family_id, site_id="gellerup", seq=seq, **extra)


async def write_thing(session: AsyncSession, family_id: UUID, seq: int) -> None:
    """A state change and its event in one transaction (the caller commits or rolls back)."""
    from shared.outbox import record_event

    await session.execute(things.insert().values(id=str(uuid.uuid4()), family_id=str(family_id),
                                                 seq=seq))
    await record_event(session, thing(family_id, seq))


async def count(session: AsyncSession, table: Table) -> int:
    return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


def health_sees_seq() -> SlicePolicy:
    """A policy that sends every thing to Sundhed og Omsorg with its sequence number only."""
    return SlicePolicy([SliceRule(Department.HEALTH_AND_CARE, ThingHappened, ("seq",),
                                  reason="test: health sees the sequence number")])
