"""The idempotent consumer: dedupe, dead-lettering, and offsets only after the database commit."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from shared.db import make_engine, make_sessionmaker
from shared.events.envelope import Envelope
from shared.inbox import EventConsumer, Subscription
from shared.kafka import ensure_topics
from shared.observability import DLQ_MESSAGES
from shared.outbox import source_for
from tests.shared.plumbing import ThingHappened, count, create_tables, effects, thing
from tests.support import Broker, eventually, make_settings, read_topic

pytestmark = pytest.mark.broker


async def record_effect(session, event: ThingHappened, envelope: Envelope) -> None:
    await session.execute(effects.insert().values(event_id=envelope.id, family_id=str(event.family_id),
                                                  seq=event.seq))


async def fail_on_seq_13(session, event: ThingHappened, envelope: Envelope) -> None:
    if event.seq == 13:
        raise RuntimeError("handler cannot handle 13")
    await record_effect(session, event, envelope)


def envelope_for(event: ThingHappened, **overrides) -> Envelope:
    values = dict(type=ThingHappened.event_type, source=source_for("testkit"),
                  key=str(event.family_id), data=event.model_dump(mode="json"))
    values.update(overrides)
    return Envelope(**values)


class Harness:
    def __init__(self, broker: Broker, database_url: str, handler=record_effect) -> None:
        self.settings = make_settings(broker=broker, database_url=database_url)
        self.topic = self.settings.domain_topic("testkit")
        self.broker = broker
        self.handler = handler

    async def __aenter__(self) -> Harness:
        self.engine = make_engine(self.settings.resolved_database_url())
        await create_tables(self.engine)
        self.sessionmaker = make_sessionmaker(self.engine)
        await ensure_topics(self.settings, [self.topic, f"{self.topic}.dlq"])
        self.producer = AIOKafkaProducer(bootstrap_servers=self.broker.bootstrap)
        await self.producer.start()
        return self

    def consumer(self) -> EventConsumer:
        subscription = Subscription("probe", ("testkit",), {ThingHappened: self.handler})
        return EventConsumer(settings=self.settings, subscription=subscription,
                             sessionmaker=self.sessionmaker, retry_delay=0.01)

    async def send(self, envelope: Envelope) -> None:
        await self.producer.send_and_wait(self.topic, value=envelope.value(),
                                          key=envelope.key_bytes(), headers=envelope.headers())

    async def send_raw(self, value: bytes, headers: list[tuple[str, bytes]], key: bytes) -> None:
        await self.producer.send_and_wait(self.topic, value=value, key=key, headers=headers)

    async def effects(self) -> int:
        async with self.sessionmaker() as session:
            return await count(session, effects)

    async def __aexit__(self, *exc) -> None:
        await self.producer.stop()
        await self.engine.dispose()


async def run_until(consumer: EventConsumer, check, timeout: float = 20.0):
    task = asyncio.create_task(consumer.run())
    try:
        return await eventually(check, timeout=timeout)
    finally:
        await consumer.stop()
        await task


async def test_duplicate_delivery_has_no_second_effect(broker: Broker, database_url: str) -> None:
    async with Harness(broker, database_url) as h:
        envelope = envelope_for(thing(uuid.uuid4(), 1))
        await h.send(envelope)
        await h.send(envelope)  # the same event id delivered twice
        await h.send(envelope_for(thing(uuid.uuid4(), 2)))
        consumer = h.consumer()
        await run_until(consumer, lambda: _at_least(consumer, 2))
        assert await h.effects() == 2


async def _at_least(consumer: EventConsumer, handled: int) -> bool:
    return consumer.handled >= handled


async def test_replay_from_offset_zero_in_a_new_group_repeats_no_effect(
        broker: Broker, sqlite_url: str) -> None:
    async with Harness(broker, sqlite_url) as h:
        for seq in range(5):
            await h.send(envelope_for(thing(uuid.uuid4(), seq)))
        first = h.consumer()
        await run_until(first, lambda: _at_least(first, 5))
        replay = h.consumer()
        replay.group_id += ".replay"  # a new Kafka group starts again from offset 0
        await run_until(replay, lambda: _at_least(replay, 5))
        assert replay.handled == 5  # every message seen again…
        assert await h.effects() == 5  # …and no effect repeated


async def test_poison_messages_go_to_the_dlq_and_the_next_message_is_handled(
        broker: Broker, sqlite_url: str) -> None:
    async with Harness(broker, sqlite_url, handler=fail_on_seq_13) as h:
        family = uuid.uuid4()  # one key: one partition, so the dead letters keep their order
        good = envelope_for(thing(family, 1))
        headers = good.headers()
        await h.send_raw(b"{not json", headers, good.key_bytes())
        await h.send_raw(good.value(), [x for x in headers if x[0] != "ce_type"], good.key_bytes())
        await h.send(envelope_for(thing(family, 2), type="dk.aarhus.oto.nobody.unknown.v1"))
        invalid = envelope_for(thing(family, 3))
        await h.send(invalid.with_data({**invalid.data, "seq": "not a number", "cpr": "0101901234"}))
        await h.send(envelope_for(thing(family, 13)))  # the handler always fails
        await h.send(good)
        before = DLQ_MESSAGES.labels(f"{h.settings.topic_namespace}.probe", h.topic)._value.get()
        consumer = h.consumer()
        await run_until(consumer, lambda: _at_least(consumer, 1))
        dead = await read_topic(broker.bootstrap, f"{h.topic}.dlq", expected=5)
        assert await h.effects() == 1
    assert len(dead) == 5
    errors = [dict(r.headers)["dlq_error"].decode() for r in dead]
    assert errors[0].startswith("EnvelopeError")
    assert errors[1].startswith("EnvelopeError") and "ce_type" in errors[1]
    assert errors[2].startswith("UnknownEventType")
    assert errors[3].startswith("InvalidPayload") and "seq" in errors[3]
    assert errors[4] == "RuntimeError"
    for record in dead:
        headers = dict(record.headers)
        assert headers["dlq_origin_topic"].decode() == h.topic
        assert int(headers["dlq_origin_offset"]) >= 0
        assert "0101901234" not in json.dumps({k: v.decode() for k, v in headers.items()})
    after = DLQ_MESSAGES.labels(f"{h.settings.topic_namespace}.probe", h.topic)._value.get()
    assert after - before == 5


async def test_offsets_are_committed_so_a_restarted_consumer_starts_after_the_last_handled(
        broker: Broker, sqlite_url: str) -> None:
    async with Harness(broker, sqlite_url) as h:
        for seq in range(3):
            await h.send(envelope_for(thing(uuid.uuid4(), seq)))
        first = h.consumer()
        await run_until(first, lambda: _at_least(first, 3))
        await h.send(envelope_for(thing(uuid.uuid4(), 99)))
        second = h.consumer()
        await run_until(second, lambda: _at_least(second, 1))
        await asyncio.sleep(0.5)
        assert second.handled == 1  # only the new message: the first three were committed
        assert await h.effects() == 4


async def test_a_stalled_consumer_is_not_alive(broker: Broker, sqlite_url: str) -> None:
    async with Harness(broker, sqlite_url) as h:
        consumer = h.consumer()
        assert consumer.is_alive()
        consumer.last_progress -= 3600
        assert not consumer.is_alive()


async def slow_effect(session, event: ThingHappened, envelope: Envelope) -> None:
    await asyncio.sleep(0.05)
    await record_effect(session, event, envelope)


async def test_stop_finishes_the_batch_in_hand_and_commits_it(broker: Broker, sqlite_url: str) -> None:
    reached_fifth = asyncio.Event()

    async def slow_and_signal(session, event: ThingHappened, envelope: Envelope) -> None:
        await slow_effect(session, event, envelope)
        if event.seq == 5:
            reached_fifth.set()

    async with Harness(broker, sqlite_url, handler=slow_and_signal) as h:
        family = uuid.uuid4()
        for seq in range(20):
            await h.send(envelope_for(thing(family, seq)))
        consumer = h.consumer()
        task = asyncio.create_task(consumer.run())
        await asyncio.wait_for(reached_fifth.wait(), timeout=20)
        await consumer.stop()  # what SIGTERM does through the app's lifespan: in the middle of a batch
        await task
        handled_before_stop = consumer.handled
        assert handled_before_stop > 5  # the batch in hand was finished and committed, not dropped
        assert await h.effects() == handled_before_stop
        again = h.consumer()
        if handled_before_stop < 20:
            await run_until(again, lambda: _at_least(again, 20 - handled_before_stop), timeout=30)
        else:
            await run_until(again, lambda: _true_after(0.5), timeout=5)
        await asyncio.sleep(0.5)
        assert again.handled == 20 - handled_before_stop  # nothing handled twice, nothing lost
        assert await h.effects() == 20


async def _true_after(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return True


async def test_a_rebalance_during_processing_loses_nothing_and_repeats_no_effect(
        broker: Broker, postgres_url: str) -> None:
    async with Harness(broker, postgres_url, handler=slow_effect) as h:
        for seq in range(60):
            await h.send(envelope_for(thing(uuid.uuid4(), seq)))
        first, second = h.consumer(), h.consumer()
        first_task = asyncio.create_task(first.run())
        await eventually(lambda: _at_least(first, 5))
        second_task = asyncio.create_task(second.run())  # joins the group: partitions move
        await eventually(lambda: _effects_at_least(h, 60), timeout=60)
        for consumer in (first, second):
            await consumer.stop()
        await asyncio.gather(first_task, second_task)
        assert await h.effects() == 60



async def _effects_at_least(h: Harness, n: int) -> bool:
    return await h.effects() >= n


async def test_a_redelivery_after_the_first_commit_has_no_second_effect(
        broker: Broker, database_url: str) -> None:
    async with Harness(broker, database_url) as h:
        envelope = envelope_for(thing(uuid.uuid4(), 1))
        await h.send(envelope)
        first = h.consumer()
        await run_until(first, lambda: _at_least(first, 1))
        await h.send(envelope)  # the same event again, in a later batch and transaction
        await h.send(envelope_for(thing(uuid.uuid4(), 2)))
        second = h.consumer()
        await run_until(second, lambda: _at_least(second, 2))
        assert await h.effects() == 2
