"""A handler that meets an event about something it has not learnt of yet says ``NotYet``: the
event waits (its partition paused) while other topics flow, and is handled once the missing
event has arrived; if that never happens, it goes to the DLQ after a bounded number of tries and
the partition moves on. Real broker, both databases."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from shared.db import make_engine, make_sessionmaker
from shared.events.envelope import Envelope
from shared.inbox import EventConsumer, NotYet, Subscription
from shared.kafka import ensure_topics
from shared.observability import CONSUMED
from shared.outbox import source_for
from tests.shared.plumbing import ThingHappened, create_tables, effects, thing
from tests.support import Broker, eventually, make_settings, read_topic

pytestmark = pytest.mark.broker


async def needs_the_first(session: Any, event: ThingHappened, envelope: Envelope) -> None:
    """A family's later things need its thing 0, which arrives on another topic."""
    if event.seq > 0:
        known = (await session.execute(select(effects.c.seq).where(
            effects.c.family_id == str(event.family_id), effects.c.seq == 0))).first()
        if known is None:
            raise NotYet("the family's first thing has not arrived")
    await session.execute(effects.insert().values(event_id=envelope.id, family_id=str(event.family_id),
                                                  seq=event.seq))


class TwoTopics:
    """A consumer of two services' topics: later things on ``late``, first things on ``early``."""

    def __init__(self, broker: Broker, database_url: str) -> None:
        self.settings = make_settings(broker=broker, database_url=database_url,
                                      consumer_not_yet_attempts=4, consumer_not_yet_delay=0.05)
        self.late, self.early = self.settings.domain_topic("testkit"), self.settings.domain_topic("other")
        self.broker = broker

    async def __aenter__(self) -> TwoTopics:
        self.engine = make_engine(self.settings.resolved_database_url())
        await create_tables(self.engine)
        await ensure_topics(self.settings, [self.late, self.early, f"{self.late}.dlq", f"{self.early}.dlq"])
        self.producer = AIOKafkaProducer(bootstrap_servers=self.broker.bootstrap)
        await self.producer.start()
        self.consumer = EventConsumer(
            settings=self.settings, sessionmaker=make_sessionmaker(self.engine), retry_delay=0.01,
            subscription=Subscription("probe", ("testkit", "other"), {ThingHappened: needs_the_first}))
        self.task = asyncio.create_task(self.consumer.run())
        return self

    async def send(self, topic: str, event: ThingHappened) -> str:
        envelope = Envelope(type=event.event_type, source=source_for("testkit"), key=str(event.family_id),
                            data=event.model_dump(mode="json"))
        await self.producer.send_and_wait(topic, envelope.value(), key=envelope.key_bytes(),
                                          headers=envelope.headers())
        return envelope.id

    async def effects(self) -> list[tuple[str, int]]:
        async with self.engine.connect() as conn:
            return [(r.family_id, r.seq) for r in await conn.execute(select(effects).order_by(effects.c.seq))]

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await asyncio.wait_for(self.task, 30)
        await self.producer.stop()
        await self.engine.dispose()


def deferred_count(h: TwoTopics) -> float:
    return CONSUMED.labels(h.consumer.group_id, "deferred")._value.get()


async def test_an_event_ahead_of_what_it_refers_to_waits_and_is_handled_once_that_arrives(
        broker: Broker, database_url: str) -> None:
    family, other = uuid.uuid4(), uuid.uuid4()
    async with TwoTopics(broker, database_url) as h:
        await h.send(h.late, thing(family, 1))
        assert await eventually(lambda: _true(deferred_count(h) >= 1))  # it was tried, and waits
        await h.send(h.late, thing(other, 0))  # others flow meanwhile (on the other partitions)
        await h.send(h.early, thing(family, 0))  # the event it refers to arrives on another topic
        assert await eventually(lambda: _has(h, {(str(family), 0), (str(family), 1), (str(other), 0)}))
        dead = await read_topic(broker.bootstrap, f"{h.late}.dlq", expected=1, timeout=1)
    assert dead == []


async def test_an_event_whose_reference_never_arrives_goes_to_the_dlq_after_bounded_tries(
        broker: Broker, database_url: str) -> None:
    family = uuid.uuid4()
    async with TwoTopics(broker, database_url) as h:
        before = deferred_count(h)
        orphan = await h.send(h.late, thing(family, 1))
        after = await h.send(h.late, thing(family, 0))  # the same partition: it waits behind the orphan
        dead = await read_topic(broker.bootstrap, f"{h.late}.dlq", expected=1)
        assert await eventually(lambda: _has(h, {(str(family), 0)}))
        waited = deferred_count(h) - before
    assert waited == h.settings.consumer_not_yet_attempts - 1  # tried four times, then given up
    assert [dict(r.headers)["ce_id"].decode() for r in dead] == [orphan]
    assert dict(dead[0].headers)["dlq_error"] == b"NotYet"
    assert after != orphan


async def _has(h: TwoTopics, expected: set[tuple[str, int]]) -> bool:
    return set(await h.effects()) == expected


async def _true(value: bool) -> bool:
    return value
