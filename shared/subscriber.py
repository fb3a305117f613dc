"""The subscriber kit: follow one department topic and print its events as they arrive."""

from __future__ import annotations

import json
import time
import uuid

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from rich.console import Console

from shared.departments import Department
from shared.events.envelope import Envelope, EnvelopeError
from shared.kafka import make_consumer
from shared.settings import Settings

console = Console()


class SubscriberError(Exception):
    """What the user can fix: an unknown department, a broker that does not answer."""


def department_of(name: str) -> Department:
    try:
        return Department(name)
    except ValueError:
        choices = ", ".join(d.value for d in Department)
        raise SubscriberError(f"unknown department {name!r}; choose one of: {choices}") from None


class _FromNow(ConsumerRebalanceListener):
    """Start each assigned partition at its end, whatever the group committed before."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: object) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned:
            await self.consumer.seek_to_end(*assigned)


async def watch(settings: Settings, department: str, *, from_beginning: bool, group: str | None,
                limit: int | None = None, idle_timeout: float | None = None) -> int:
    """Print each event; return how many were shown. From the beginning runs in a fresh group
    named after ``group`` (so offset 0, always). From now seeks to the end, and also skips any
    record written before the watch started: the embedded broker (tansu) reports the end one
    record batch short, so the seek alone showed the newest old events."""
    topic = settings.department_topic(department_of(department).value)
    group_id = group or f"{settings.topic_namespace}.dashboard.{department}"
    if from_beginning:  # a fresh group: a known one would resume where it stopped
        group_id += f".replay-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(settings, group_id=group_id,
                             auto_offset_reset="earliest" if from_beginning else "latest")
    started_ms = 0 if from_beginning else int(time.time() * 1000)
    consumer.subscribe([topic], listener=None if from_beginning else _FromNow(consumer))
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise SubscriberError(f"cannot reach the broker at {settings.kafka_bootstrap} "
                              f"({type(exc).__name__}); start it (./run.sh) or set OTO_KAFKA_BOOTSTRAP",
                              ) from None
    shown, last_seen = 0, time.monotonic()
    try:
        while limit is None or shown < limit:
            remaining = None if limit is None else limit - shown
            batch = await consumer.getmany(timeout_ms=500, max_records=remaining)
            for records in batch.values():
                for record in records:
                    last_seen = time.monotonic()
                    if record.timestamp >= started_ms:  # the producer's clock: same machine here
                        shown += _show(record)
            if batch:
                await consumer.commit()
            if idle_timeout is not None and time.monotonic() - last_seen > idle_timeout:
                break
    finally:
        await consumer.stop()
    return shown


def _show(record: object) -> int:
    try:
        env = Envelope.from_kafka(record.key, record.value, record.headers)  # type: ignore[attr-defined]
    except EnvelopeError as exc:
        console.print(f"[red]unreadable message: {exc}[/red]")
        return 0
    console.print(f"[bold]{env.time:%Y-%m-%d %H:%M:%S}[/bold] [cyan]{env.type}[/cyan] key={env.key}")
    console.print(json.dumps(env.data, ensure_ascii=False, indent=2))
    return 1
