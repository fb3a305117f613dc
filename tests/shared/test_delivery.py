"""Outbox and inbox together: a relay that dies after sending but before marking (RELIABILITY 3)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

import shared.outbox
from shared.db import make_engine, make_sessionmaker
from shared.inbox import EventConsumer, Subscription
from shared.outbox import OutboxRelay
from tests.shared.plumbing import ThingHappened, count, create_tables, effects, write_thing
from tests.shared.test_inbox import record_effect
from tests.support import Broker, eventually, make_settings, read_topic

pytestmark = pytest.mark.broker


class RelayDied(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


async def test_a_relay_dying_between_sending_and_marking_sends_twice_but_the_effect_happens_once(
        broker: Broker, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(broker=broker, database_url=postgres_url)
    engine = make_engine(settings.resolved_database_url())
    await create_tables(engine)
    sessionmaker = make_sessionmaker(engine)
    family = uuid.uuid4()
    for seq in range(5):
        async with sessionmaker() as session:
            await write_thing(session, family, seq)
            await session.commit()

    real_send_all = shared.outbox.send_all

    async def send_then_die(producer, messages) -> None:  # type: ignore[no-untyped-def]
        await real_send_all(producer, messages)  # the broker has acknowledged every message…
        raise RelayDied  # …and the process dies before the rows are marked sent

    crashing = OutboxRelay(settings=settings, engine=engine, sessionmaker=sessionmaker, policy=None)
    monkeypatch.setattr(shared.outbox, "send_all", send_then_die)
    with pytest.raises(RelayDied):
        await crashing.run()
    await crashing._reset_producer()
    await crashing._release_lock()
    monkeypatch.setattr(shared.outbox, "send_all", real_send_all)

    restarted = OutboxRelay(settings=settings, engine=engine, sessionmaker=sessionmaker, policy=None)
    relay_task = asyncio.create_task(restarted.run())
    consumer = EventConsumer(settings=settings, sessionmaker=sessionmaker,
                             subscription=Subscription("probe", ("intake",), {ThingHappened: record_effect}))
    consumer_task = asyncio.create_task(consumer.run())
    try:
        records = await read_topic(broker.bootstrap, settings.domain_topic(), expected=10)
        assert await eventually(lambda: _effects_at_least(sessionmaker, 5))
        await asyncio.sleep(0.5)  # a second effect, if there were one, would have landed by now
    finally:
        await consumer.stop()
        await restarted.stop()
        await asyncio.gather(consumer_task, relay_task)
    assert len(records) == 10  # every event is on the topic twice…
    assert len({dict(r.headers)["ce_id"] for r in records}) == 5
    async with sessionmaker() as session:
        assert await count(session, effects) == 5  # …and took effect once
    await engine.dispose()


async def _effects_at_least(sessionmaker, n: int) -> bool:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return await count(session, effects) >= n
