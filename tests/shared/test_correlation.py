"""A correlation id read from a Kafka header is passed on only in a safe shape.

Any producer can write an ``oto_correlation_id`` header; a consumer copies it into the events
its handlers write (and so into the headers of every department topic) and its log lines. A
CPR-shaped one is replaced by a fresh id; a safe one travels on unchanged.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from shared import observability as obs
from shared.departments import Department
from shared.events.envelope import CORRELATION_HEADER, Envelope
from shared.observability import is_safe_id
from shared.outbox import record_event
from shared.tables import outbox
from tests.shared.plumbing import ThingHappened, health_sees_seq, thing, write_thing
from tests.shared.test_inbox import Harness, envelope_for, run_until
from tests.shared.test_outbox import _no_pending, _setup
from tests.support import Broker, eventually, make_settings, read_topic

pytestmark = pytest.mark.broker


async def record_a_follow_up(session, event: ThingHappened, envelope: Envelope) -> None:
    await record_event(session, thing(uuid.uuid4(), event.seq + 100))


#: Correlation ids on consumed events, and whether they may be passed on as they are.
INCOMING = {"0101901234": False, "trace-010190-1234": False, "trace-42.a_b": True}


async def test_a_consumed_correlation_id_is_passed_on_only_when_safe(
        broker: Broker, database_url: str) -> None:
    async with Harness(broker, database_url, handler=record_a_follow_up) as h:
        for seq, incoming in enumerate(INCOMING):
            await h.send(envelope_for(thing(uuid.uuid4(), seq), correlation_id=incoming))

        async def written() -> dict[int, str | None] | None:
            async with h.sessionmaker() as session:
                rows = (await session.execute(select(outbox.c.payload, outbox.c.correlation_id))).all()
            return {row.payload["seq"] - 100: row.correlation_id for row in rows} if len(rows) == 3 else None

        passed_on = await run_until(h.consumer(), written)
    assert passed_on is not None
    for seq, (incoming, kept) in enumerate(INCOMING.items()):
        assert (passed_on[seq] == incoming) is kept, incoming
        assert is_safe_id(passed_on[seq])


async def test_an_unsafe_correlation_id_already_in_the_outbox_is_left_off_the_published_event(
        broker: Broker, sqlite_url: str) -> None:
    """Rows written before the ids were screened still hold whatever callers sent."""
    settings = make_settings(broker=broker, database_url=sqlite_url)
    engine, relay, sessionmaker = await _setup(settings, health_sees_seq())
    token = obs.correlation_id.set("010190-1234")  # as the middleware used to let through
    try:
        async with sessionmaker() as session:
            await write_thing(session, uuid.uuid4(), 1)
            await session.commit()
    finally:
        obs.correlation_id.reset(token)
    task = asyncio.create_task(relay.run())
    try:
        assert await eventually(lambda: _no_pending(sessionmaker))
        records = [*await read_topic(broker.bootstrap, settings.domain_topic(), expected=1),
                   *await read_topic(broker.bootstrap, settings.department_topic(Department.HEALTH_AND_CARE),
                                     expected=1)]
    finally:
        await relay.stop()
        await task
        await engine.dispose()
    assert len(records) == 2
    for record in records:
        assert CORRELATION_HEADER not in dict(record.headers)
        assert not obs.CPR_SHAPE.search(repr(record.headers))
