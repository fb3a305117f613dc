"""A bad event is refused before it commits; a row that still cannot be sent is parked, its key
held, every other key flows; an operator retries or discards it (real broker, both databases)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, Role
from shared.events.envelope import Envelope
from shared.outbox import UnpublishableEvent, outbox_backlog, record_event
from shared.outbox_admin import discard_parked, list_parked, retry_parked
from shared.tables import audit_log, outbox
from tests.shared.plumbing import count, thing, things, write_thing
from tests.shared.test_outbox import _setup
from tests.support import Broker, envelopes, eventually, make_settings, read_topic

pytestmark = pytest.mark.broker
LONE_SURROGATE = "\ud800"  # valid in a Python str and in escaped JSON, not encodable as UTF-8


async def test_an_event_that_cannot_be_encoded_is_refused_and_nothing_commits(database_url: str) -> None:
    settings = make_settings(database_url=database_url)
    engine, _relay, sessionmaker = await _setup(settings)
    try:
        async with sessionmaker() as session:
            await session.execute(things.insert().values(id=str(uuid.uuid4()), family_id="f", seq=1))
            with pytest.raises(UnpublishableEvent) as refused:
                await record_event(session, thing(uuid.uuid4(), 1, note=f"hej {LONE_SURROGATE}"))
            await session.rollback()
        async with sessionmaker() as session:
            assert await count(session, things) == 0
            assert await count(session, outbox) == 0
    finally:
        await engine.dispose()
    assert refused.value.status == 422
    assert refused.value.extra["errors"] == [
        {"field": "event.note", "message": "text that cannot be encoded as UTF-8"}]


async def park_a_poison_row(session: AsyncSession, family: uuid.UUID, seq: int) -> str:
    """A row as the old code committed it: its text cannot be encoded (written past the check)."""
    envelope = Envelope(type=thing(family, seq).event_type, source="/oto/testkit", key=str(family),
                        data=thing(family, seq, note=LONE_SURROGATE).model_dump(mode="json"))
    await session.execute(outbox.insert().values(
        event_id=envelope.id, event_type=envelope.type, source=envelope.source,
        partition_key=envelope.key, occurred_at=envelope.time, payload=envelope.data))
    return envelope.id


async def test_a_poison_row_is_parked_its_key_held_other_keys_flow_then_retried_or_discarded(
        broker: Broker, database_url: str) -> None:
    settings = make_settings(broker=broker, database_url=database_url)
    engine, relay, sessionmaker = await _setup(settings)
    poisoned, discarded, healthy = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with sessionmaker() as session:
        await write_thing(session, poisoned, 1)
        poison = await park_a_poison_row(session, poisoned, 2)
        await write_thing(session, poisoned, 3)
        await write_thing(session, healthy, 1)
        other_poison = await park_a_poison_row(session, discarded, 1)
        await write_thing(session, discarded, 2)
        await write_thing(session, healthy, 2)
        await session.commit()
    admin = Principal(subject="operator", role=Role.ADMIN)
    task = asyncio.create_task(relay.run())
    try:
        # Everything that can flow has: the healthy family, and the poisoned one up to its poison.
        assert await eventually(lambda: _backlog_is(sessionmaker, pending=0, held=2, parked=2))
        first = envelopes(await read_topic(broker.bootstrap, settings.domain_topic(), expected=3))
        assert sorted((e.key, e.data["seq"]) for e in first) == sorted(
            [(str(poisoned), 1), (str(healthy), 1), (str(healthy), 2)])
        async with sessionmaker() as session:
            listed = {p.event_id: p for p in await list_parked(session)}
        assert set(listed) == {poison, other_poison}
        assert listed[poison].held == 1 and listed[poison].reason.startswith("UnicodeEncodeError")
        assert listed[poison].partition_key == str(poisoned)

        # The operator repairs the text and retries: the poison and the row held behind it follow.
        async with sessionmaker() as session:
            row = (await session.execute(select(outbox.c.payload).where(outbox.c.event_id == poison))).one()
            await session.execute(update(outbox).where(outbox.c.event_id == poison).values(
                payload={**row.payload, "note": "repaired"}))
            await retry_parked(session, event_id=poison)
            await session.commit()
        # The other poison is given up: never published, its family's later event flows, audited.
        async with sessionmaker() as session:
            await discard_parked(session, event_id=other_poison, principal=admin, endpoint="test")
        assert await eventually(lambda: _backlog_is(sessionmaker, pending=0, held=0, parked=0))
        records = envelopes(await read_topic(broker.bootstrap, settings.domain_topic(), expected=6))
        async with sessionmaker() as session:
            audited = (await session.execute(select(audit_log))).all()
    finally:
        await relay.stop()
        await task
        await engine.dispose()
    per_key: dict[str, list[Any]] = {}
    for e in records:
        per_key.setdefault(e.key, []).append(e.data["seq"])
    assert per_key == {str(poisoned): [1, 2, 3], str(healthy): [1, 2], str(discarded): [2]}
    assert other_poison not in {e.id for e in records}
    assert [(a.actor, a.subjects, a.purpose.split(" (")[0]) for a in audited] == [
        ("operator", [{"kind": "family", "id": str(discarded)}], f"discard parked event {other_poison}")]


async def _backlog_is(sessionmaker: Any, **expected: int) -> bool:
    async with sessionmaker() as session:
        backlog = await outbox_backlog(session)
    return {name: getattr(backlog, name) for name in expected} == expected
