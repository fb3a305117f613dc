"""Idempotent consumer (inbox) with retries, a dead-letter topic and graceful shutdown.

The messages of one partition's batch are handled in one transaction that also inserts their
``(consumer, source, event id)`` into the inbox with ``ON CONFLICT DO NOTHING … RETURNING``: only
the rows it really inserted are handled, so a redelivery has no effect. If any handler in the
batch fails, the batch is rolled back and its messages are retried one transaction each, so
one bad message cannot hold up or undo the others.
The Kafka offset is committed only after the database commit (auto-commit is off). A message
that cannot be parsed, has an unknown type or an invalid payload, or fails ``max_attempts``
times goes to ``<topic>.dlq`` with its origin and the error, and the consumer carries on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import observability as obs
from shared.db import insert_ignoring_conflicts, is_outage
from shared.events.envelope import Envelope, EnvelopeError
from shared.events.registry import REGISTRY, DomainEvent, InvalidPayload, UnknownEventType
from shared.kafka import ensure_topics, make_consumer, make_producer
from shared.settings import Settings
from shared.tables import inbox

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Any, Envelope], Awaitable[None]]
#: A consumer that has not looped for this long is reported not alive.
STALL_SECONDS = 60.0


class _Prepared(NamedTuple):
    record: ConsumerRecord
    envelope: Envelope
    payload: DomainEvent
    handler: Handler


@dataclass(frozen=True)
class Subscription:
    """What one service's consumer listens to: producing services and a handler per event type.

    Handlers write through the session and never commit; the consumer commits.

    A department dashboard reads a department topic instead (``topics``): its events are slices,
    so ``parse`` checks them in place of the full model, and it may not write (``dead_letter``
    off: the department's broker user can only read), so poison is logged, counted and skipped —
    it stays on the topic, where the producing service's operators can read it.
    """

    name: str
    services: tuple[str, ...]
    handlers: Mapping[type[DomainEvent], Handler]
    topics: tuple[str, ...] = ()
    parse: Callable[[Envelope], Any] | None = None
    dead_letter: bool = True


class _CommitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, owner: EventConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.owner.commit_done(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None


class EventConsumer:
    def __init__(
        self, *, settings: Settings, subscription: Subscription,
        sessionmaker: async_sessionmaker[AsyncSession], retry_delay: float = 0.2,
    ) -> None:
        self.settings = settings
        self.subscription = subscription
        self.sessionmaker = sessionmaker
        self.retry_delay = retry_delay
        self.group_id = f"{settings.topic_namespace}.{subscription.name}"
        #: The dedupe key is the logical consumer, not the Kafka group: replaying a topic in a new
        #: group (or after resetting offsets) repeats no effect.
        self.inbox_key = self.group_id
        self.topics = [*(settings.domain_topic(s) for s in subscription.services), *subscription.topics]
        self.by_type = {model.event_type: handler for model, handler in subscription.handlers.items()}
        self.last_progress = time.monotonic()
        self.handled = 0
        self._done: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    def is_alive(self) -> bool:
        return time.monotonic() - self.last_progress < STALL_SECONDS

    async def stop(self) -> None:
        """Finish the batch in hand, commit its offsets, flush the producer (SIGTERM path)."""
        self._stopping.set()

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                await self._start()
                await self._loop()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer restarting", extra={"consumer": self.group_id,
                                                          "error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                await self._close()

    async def _start(self) -> None:
        if not self.subscription.dead_letter:
            await ensure_topics(self.settings, self.topics)
        else:
            await ensure_topics(self.settings, [*self.topics, *(f"{t}.dlq" for t in self.topics)])
            self._producer = make_producer(self.settings)
            await self._producer.start()
        self._consumer = make_consumer(self.settings, group_id=self.group_id)
        self._consumer.subscribe(self.topics, listener=_CommitOnRevoke(self))
        await self._consumer.start()

    async def _loop(self) -> None:
        assert self._consumer is not None
        while not self._stopping.is_set():
            batch = await self._consumer.getmany(timeout_ms=500, max_records=500)
            self.last_progress = time.monotonic()
            for tp, records in batch.items():
                if tp not in self._consumer.assignment():
                    continue  # revoked meanwhile: the new owner starts from the last commit
                await self.handle_batch(records)
                self._done[tp] = records[-1].offset + 1
                self.last_progress = time.monotonic()
            if batch:
                self._record_lag({tp: records[-1].offset + 1 for tp, records in batch.items()})
                await self.commit_done(list(batch))

    async def commit_done(self, partitions: list[TopicPartition]) -> None:
        """Commit what is handled, for partitions still ours (a revoked one is the new owner's)."""
        offsets = {tp: self._done.pop(tp) for tp in partitions if tp in self._done}
        if self._consumer is not None:
            assigned = self._consumer.assignment()
            offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
            if offsets:
                await self._consumer.commit(offsets)

    def _record_lag(self, positions: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        for tp, position in positions.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                obs.CONSUMER_LAG.labels(self.group_id, tp.topic).set(max(highwater - position, 0))

    async def handle_batch(self, records: list[ConsumerRecord]) -> None:
        """Handle one partition's records in order: one transaction, or one each on failure."""
        ready = [item for record in records if (item := await self._prepare(record)) is not None]
        if not ready:
            return
        try:
            outcomes = await self._apply_batch(ready)
        except Exception as exc:
            log.info("batch failed, retrying one by one", extra={"consumer": self.group_id,
                                                                 "error": type(exc).__name__})
            for item in ready:
                await self._handle_prepared(item)
            return
        for outcome in outcomes:
            obs.CONSUMED.labels(self.group_id, outcome).inc()
        self.handled += len(outcomes)

    async def handle(self, record: ConsumerRecord) -> None:
        """Handle one record in a transaction of its own."""
        item = await self._prepare(record)
        if item is not None:
            await self._handle_prepared(item)

    async def _prepare(self, record: ConsumerRecord) -> _Prepared | None:
        """Parse and find the handler; poison goes to the DLQ, unhandled types are skipped."""
        try:
            envelope = Envelope.from_kafka(record.key, record.value, record.headers)
            parse = self.subscription.parse
            payload = parse(envelope) if parse else REGISTRY.parse(envelope.type, envelope.data)
        except (EnvelopeError, UnknownEventType, InvalidPayload) as exc:
            await self._dead_letter(record, exc)
            return None
        handler = self.by_type.get(envelope.type)
        if handler is None:
            obs.CONSUMED.labels(self.group_id, "ignored").inc()
            return None
        return _Prepared(record, envelope, payload, handler)

    async def _apply_batch(self, items: list[_Prepared]) -> list[str]:
        async with self.sessionmaker() as session:
            claimed = await self._claim(session, [item.envelope for item in items])
            outcomes = []
            for item in items:
                key = (item.envelope.source, item.envelope.id)
                if key not in claimed:
                    outcomes.append("duplicate")
                    continue
                claimed.discard(key)  # the same id twice in one batch runs once
                token = obs.correlation_id.set(item.envelope.correlation_id or item.envelope.id)
                try:
                    await item.handler(session, item.payload, item.envelope)
                finally:
                    obs.correlation_id.reset(token)
                outcomes.append("handled")
            await session.commit()
        return outcomes

    async def _claim(self, session: AsyncSession, envelopes: list[Envelope]) -> set[tuple[str, str]]:
        now = datetime.now(UTC)
        rows = {(e.source, e.id): {"consumer": self.inbox_key, "source": e.source, "event_id": e.id,
                                   "event_type": e.type, "processed_at": now} for e in envelopes}
        statement = insert_ignoring_conflicts(session, inbox).returning(inbox.c.source, inbox.c.event_id)
        result = await session.execute(statement, list(rows.values()))
        return {(row.source, row.event_id) for row in result}

    async def _handle_prepared(self, item: _Prepared) -> None:
        record, envelope, payload, handler = item
        error: Exception | None = None
        for attempt in range(1, self.settings.consumer_max_attempts + 1):
            try:
                outcome = await self._apply(handler, payload, envelope)
                obs.CONSUMED.labels(self.group_id, outcome).inc()
                self.handled += 1
                return
            except Exception as exc:
                if is_outage(exc):
                    raise  # not this message's fault: back off and retry from the last commit
                error = exc
                log.warning("handler failed", exc_info=attempt == self.settings.consumer_max_attempts,
                            extra={"consumer": self.group_id, "attempt": attempt,
                                                     "event_type": envelope.type,
                                                     "error": type(exc).__name__})
                await asyncio.sleep(self.retry_delay * attempt)
        assert error is not None
        await self._dead_letter(record, error)

    async def _apply(self, handler: Handler, payload: DomainEvent, envelope: Envelope) -> str:
        token = obs.correlation_id.set(envelope.correlation_id or envelope.id)
        try:
            async with self.sessionmaker() as session:
                if not await self._claim(session, [envelope]):
                    return "duplicate"
                await handler(session, payload, envelope)
                await session.commit()
                return "handled"
        finally:
            obs.correlation_id.reset(token)

    async def _dead_letter(self, record: ConsumerRecord, error: Exception) -> None:
        if not self.subscription.dead_letter:
            obs.CONSUMED.labels(self.group_id, "skipped").inc()
            log.warning("message skipped", extra={"consumer": self.group_id, "topic": record.topic,
                                                  "partition": record.partition, "offset": record.offset,
                                                  "error": type(error).__name__})
            return
        assert self._producer is not None
        headers = [h for h in (record.headers or ()) if not h[0].startswith("dlq_")]
        headers += [
            ("dlq_error", _describe(error).encode()),
            ("dlq_origin_topic", record.topic.encode()),
            ("dlq_origin_partition", str(record.partition).encode()),
            ("dlq_origin_offset", str(record.offset).encode()),
            ("dlq_consumer", self.group_id.encode()),
        ]
        await self._producer.send_and_wait(f"{record.topic}.dlq", value=record.value,
                                           key=record.key, headers=headers)
        obs.DLQ_MESSAGES.labels(self.group_id, record.topic).inc()
        log.warning("message dead-lettered", extra={"consumer": self.group_id,
                                                     "topic": record.topic,
                                                     "offset": record.offset,
                                                     "error": type(error).__name__})

    async def _close(self) -> None:
        if self._consumer is not None:
            try:
                await self.commit_done(list(self._done))
            except Exception:
                log.debug("final commit failed")
            consumer, self._consumer = self._consumer, None
            await consumer.stop()
        self._done.clear()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()


def _describe(error: Exception) -> str:
    """The error class and, for our own parse errors, the message (which names no values)."""
    if isinstance(error, EnvelopeError | UnknownEventType | InvalidPayload):
        return obs.redact(f"{type(error).__name__}: {error}")[:500]
    return type(error).__name__
