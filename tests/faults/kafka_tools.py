"""Kafka helpers the fault tests need beyond ``tests.support``: read a topic until given events have
all been seen (a count is not enough once a crash has left duplicates), publish thousands of events
quickly, and read a consumer group's committed offsets."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.events.envelope import Envelope


async def read_until_seen(bootstrap: str, topic: str, ids: set[str], *, at_least: int = 0,
                          timeout: float = 30.0, quiet_polls: int = 3) -> list[ConsumerRecord]:
    """The topic from the beginning, until every event id in ``ids`` and at least ``at_least``
    records have been read, and then a few polls in a row brought nothing more (so duplicates
    after them are read too).

    Not "up to the end offsets": tansu 0.6 sometimes answers ListOffsets(latest) short of a
    partition's last record, which would cut records off.
    """
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    records: list[ConsumerRecord] = []
    missing = set(ids)

    async def drain() -> None:
        quiet = 0
        while missing or len(records) < at_least or quiet < quiet_polls:
            batch = await consumer.getmany(timeout_ms=200)
            quiet = 0 if batch else quiet + 1
            for part in batch.values():
                records.extend(part)
                missing.difference_update((dict(r.headers).get("ce_id") or b"").decode() for r in part)

    try:
        await asyncio.wait_for(drain(), timeout)
    except TimeoutError:
        raise AssertionError(f"{len(missing)} of {len(ids)} events never reached {topic} "
                             f"({len(records)} records read)") from None
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


async def publish_all(bootstrap: str, topic: str, events: list[Envelope]) -> dict[str, tuple[int, int]]:
    """Send in order without waiting for each acknowledgement, then wait for all of them; return
    where each event landed: event id → (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=e.value(), key=e.key_bytes(), headers=e.headers())
                   for e in events]
        landed = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return {e.id: (m.partition, m.offset) for e, m in zip(events, landed, strict=True)}


async def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offset per partition of the topic (0 where it committed none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) or 0 for p in range(partitions)}
    finally:
        await consumer.stop()
