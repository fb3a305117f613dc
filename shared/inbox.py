"""Idempotent consumer (inbox) with retries, a dead-letter topic and graceful shutdown.

The messages of one partition's batch are handled in one transaction that also inserts their
``(consumer, source, event id)`` into the inbox with ``ON CONFLICT DO NOTHING … RETURNING``: only
the rows it really inserted are handled, so a redelivery has no effect. If any handler in the
batch fails, the batch is rolled back and its messages are retried one transaction each, so
one bad message cannot hold up or undo the others.
The Kafka offset is committed only after the database commit (auto-commit is off). A message
that cannot be parsed, has an unknown type or an invalid payload, or fails ``max_attempts``
times goes to ``<topic>.dlq`` with its origin and the error, and the consumer carries on.

A handler that meets an event about something it has not learnt of yet (a person whose
enrolment is on another topic) raises ``NotYet``: the message and the rest of its partition's
batch wait in memory, the partition is paused (its offset is not committed past the waiting
message, so a restart loses nothing), and the message is tried again with a growing delay while
the other partitions — where the missing event may be — flow. Only after
``consumer_not_yet_attempts`` tries does it go to the DLQ.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import observability as obs
from shared.db import insert_rows, is_outage
from shared.events.envelope import Envelope, EnvelopeError
from shared.events.registry import REGISTRY, DomainEvent, InvalidPayload, UnknownEventType
from shared.kafka import AdaptiveFetchWait, ensure_topics, make_consumer, make_producer
from shared.settings import Settings
from shared.tables import inbox

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Any, Envelope], Awaitable[None]]
#: Receives a run of consecutive new events of one type, in partition order, and writes them all
#: with one statement (``shared.db.insert_rows``).
BatchHandler = Callable[[AsyncSession, Sequence[tuple[Any, Envelope]]], Awaitable[None]]
#: A consumer that has not looped for this long is reported not alive.
STALL_SECONDS = 60.0
#: Records taken per poll, over all partitions; each partition's share is one transaction. A
#: replay's cost per transaction (begin, claim, write, commit) is spread over this many events.
MAX_RECORDS = 2000


def one_at_a_time(batch: BatchHandler) -> Handler:
    """The per-event form of a batch handler, for callers that hand over one event at a time
    (tests, tools); the consumer itself calls the batch form."""

    async def handle(session: AsyncSession, payload: Any, envelope: Envelope) -> None:
        await batch(session, [(payload, envelope)])

    handle.__name__ = handle.__qualname__ = f"{batch.__name__}_one"
    handle.__doc__ = batch.__doc__
    return handle


class NotYet(Exception):
    """Raised by a handler: the event refers to something this service has not learnt of yet;
    try it again later (bounded, backed off, then the DLQ)."""


@dataclass
class _Deferred:
    """A partition's waiting messages: the first is the one that said "not yet"."""

    items: list[_Prepared]
    attempts: int
    due: float
    last_offset: int


class _Prepared(NamedTuple):
    """A parsed message and what handles it: a per-event ``handler`` or a ``batch`` handler."""

    record: ConsumerRecord
    envelope: Envelope
    payload: DomainEvent
    handler: Handler | None
    batch: BatchHandler | None


@dataclass(frozen=True)
class Subscription:
    """What one service's consumer listens to: producing services and a handler per event type.

    Handlers write through the session and never commit; the consumer commits.

    ``batch_handlers`` is the form for projections that only insert or upsert rows: a batch
    handler receives every new event of a run of consecutive same-type events of one partition
    batch and writes them with one statement (``shared.db.insert_rows``), where a per-event
    handler would cost a statement (or ORM flush) each. The consumer keeps the same guarantees:
    only events it claims are passed, a failing batch is retried one transaction per message
    (the batch handler then gets one event), the order within a partition is kept. A batch
    handler reads nothing it needs to decide on (use a per-event handler and ``NotYet`` for
    that) and records no events of its own (it runs without a per-event correlation id).

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
    batch_handlers: Mapping[type[DomainEvent], BatchHandler] = field(default_factory=dict)

    def handled(self) -> list[type[DomainEvent]]:
        """Every event type with a handler, of either form."""
        return [*self.handlers, *self.batch_handlers]


class _CommitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, owner: EventConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.owner.commit_done(revoked)
        self.owner.forget_deferred(revoked)

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
        self.batch_by_type = {model.event_type: batch for model, batch in subscription.batch_handlers.items()}
        if both := set(self.by_type) & set(self.batch_by_type):
            raise ValueError(f"event types with two handlers: {sorted(both)}")
        #: ``Counter.labels`` looks its child up under a lock: once per outcome, not per message.
        self._consumed = {outcome: obs.CONSUMED.labels(self.group_id, outcome) for outcome in
                          ("handled", "duplicate", "ignored", "deferred", "skipped")}
        self.last_progress = time.monotonic()
        self.handled = 0
        self._done: dict[TopicPartition, int] = {}
        self._deferred: dict[TopicPartition, _Deferred] = {}
        self._stopping = asyncio.Event()
        self.fetch_wait = AdaptiveFetchWait.from_settings(settings)
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
            retried = await self._retry_deferred()
            batch = await self._consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
            self.last_progress = time.monotonic()
            self.fetch_wait.observe(self._consumer, got_messages=bool(batch), now=self.last_progress)
            for tp, records in batch.items():
                if tp not in self._consumer.assignment():
                    continue  # revoked meanwhile: the new owner starts from the last commit
                if (waiting := self._deferred.get(tp)) is not None:  # fetched before the pause
                    waiting.items += [i for r in records if (i := await self._prepare(r)) is not None]
                    waiting.last_offset = records[-1].offset
                    continue
                await self.handle_batch(records)
                if tp not in self._deferred:
                    self._done[tp] = records[-1].offset + 1
                self.last_progress = time.monotonic()
            if batch:
                self._record_lag({tp: records[-1].offset + 1 for tp, records in batch.items()})
            if batch or retried:
                await self.commit_done([*batch, *retried])

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
            tp = TopicPartition(records[0].topic, records[0].partition)
            await self._settle(tp, ready, attempts=0, last_offset=records[-1].offset)
            return
        for outcome, times in Counter(outcomes).items():
            self._consumed[outcome].inc(times)
        self.handled += len(outcomes)

    async def _settle(self, tp: TopicPartition, items: list[_Prepared], *, attempts: int,
                      last_offset: int) -> None:
        """Handle items one by one in order; from one that says "not yet", the rest wait (the
        partition paused) until it is due again, or, past the limit, it is dead-lettered."""
        while True:
            leftover = await self._handle_in_order(items)
            if not leftover:
                break
            attempts = attempts + 1 if leftover[0] is items[0] else 1
            if attempts < self.settings.consumer_not_yet_attempts:
                delay = min(self.settings.consumer_not_yet_delay * 2 ** (attempts - 1), 30.0)
                self._deferred[tp] = _Deferred(leftover, attempts, time.monotonic() + delay, last_offset)
                self._done[tp] = leftover[0].record.offset  # never commit past the waiting one
                if self._consumer is not None:
                    self._consumer.pause(tp)
                self._consumed["deferred"].inc()
                return
            await self._dead_letter(leftover[0].record, NotYet(f"not yet, {attempts} times"))
            items, attempts = leftover[1:], 0
        self._deferred.pop(tp, None)
        self._done[tp] = last_offset + 1
        if self._consumer is not None and tp in self._consumer.paused():
            self._consumer.resume(tp)

    async def _handle_in_order(self, items: list[_Prepared]) -> list[_Prepared]:
        """Handle items one transaction each; return them from the first that says "not yet"."""
        for index, item in enumerate(items):
            if not await self._handle_prepared(item):
                return items[index:]
        return []

    async def _retry_deferred(self) -> list[TopicPartition]:
        """Try the waiting messages that are due; return their partitions (to commit)."""
        due = [(tp, d) for tp, d in self._deferred.items() if d.due <= time.monotonic()]
        for tp, deferred in due:
            if self._consumer is not None and tp not in self._consumer.assignment():
                self._deferred.pop(tp, None)
                continue
            await self._settle(tp, deferred.items, attempts=deferred.attempts,
                               last_offset=deferred.last_offset)
        return [tp for tp, _ in due]

    def forget_deferred(self, partitions: list[TopicPartition]) -> None:
        """Revoked partitions: their waiting messages are the new owner's (nothing was committed
        past them)."""
        for tp in partitions:
            self._deferred.pop(tp, None)

    async def handle(self, record: ConsumerRecord) -> None:
        """Handle one record in a transaction of its own."""
        item = await self._prepare(record)
        if item is not None:
            await self._handle_prepared(item)

    async def _prepare(self, record: ConsumerRecord) -> _Prepared | None:
        """Parse and find the handler; poison goes to the DLQ, unhandled types are skipped."""
        try:
            envelope, payload = self._parse_fast(record) or self._parse(record)
        except (EnvelopeError, UnknownEventType, InvalidPayload) as exc:
            await self._dead_letter(record, exc)
            return None
        handler = self.by_type.get(envelope.type)
        batch = self.batch_by_type.get(envelope.type) if handler is None else None
        if handler is None and batch is None:
            self._consumed["ignored"].inc()
            return None
        return _Prepared(record, envelope, payload, handler, batch)

    def _parse(self, record: ConsumerRecord) -> tuple[Envelope, Any]:
        """The envelope and its payload, or the error that sends the record to the DLQ."""
        envelope = Envelope.from_kafka(record.key, record.value, record.headers)
        parse = self.subscription.parse
        return envelope, parse(envelope) if parse else REGISTRY.parse(envelope.type, envelope.data)

    def _parse_fast(self, record: ConsumerRecord) -> tuple[Envelope, DomainEvent] | None:
        """What ``_parse`` gives, from the record's bytes in one validation pass and with the
        envelope's ``data`` decoded only if a handler reads it; None whenever that is not sure to
        be the same (a subscription's own ``parse``, any header, JSON or payload problem), so
        every error and every unusual case is ``_parse``'s, exactly as before."""
        if self.subscription.parse is not None or not isinstance(record.value, bytes):
            return None
        try:
            envelope = Envelope.from_kafka_undecoded(record.key, record.value, record.headers)
        except EnvelopeError:
            return None
        payload = REGISTRY.parse_json(envelope.type, record.value)
        return None if payload is None else (envelope, payload)

    async def _apply_batch(self, items: list[_Prepared]) -> list[str]:
        async with self.sessionmaker() as session:
            claimed = await self._claim(session, [item.envelope for item in items])
            outcomes = []
            fresh = []
            for item in items:
                key = (item.envelope.source, item.envelope.id)
                if key not in claimed:
                    outcomes.append("duplicate")
                    continue
                claimed.discard(key)  # the same id twice in one batch runs once
                fresh.append(item)
                outcomes.append("handled")
            for run in _runs(fresh):
                await _handle_run(session, run)
            await session.commit()
        return outcomes

    async def _claim(self, session: AsyncSession, envelopes: list[Envelope]) -> set[tuple[str, str]]:
        """Insert the batch's inbox rows in one statement; return the keys that were new."""
        rows = [{"source": e.source, "event_id": e.id, "event_type": e.type} for e in envelopes]
        result = await insert_rows(session, inbox, rows, returning=("source", "event_id"),
                                   same={"consumer": self.inbox_key, "processed_at": datetime.now(UTC)})
        return set(result)

    async def _handle_prepared(self, item: _Prepared) -> bool:
        """Handle (or dead-letter) one message; False when its handler said "not yet"."""
        record, envelope = item.record, item.envelope
        error: Exception | None = None
        for attempt in range(1, self.settings.consumer_max_attempts + 1):
            try:
                outcome = await self._apply(item)
                self._consumed[outcome].inc()
                self.handled += 1
                return True
            except NotYet:
                return False
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
        return True

    async def _apply(self, item: _Prepared) -> str:
        async with self.sessionmaker() as session:
            if not await self._claim(session, [item.envelope]):
                return "duplicate"
            await _handle_run(session, [item])
            await session.commit()
            return "handled"

    async def _dead_letter(self, record: ConsumerRecord, error: Exception) -> None:
        if not self.subscription.dead_letter:
            self._consumed["skipped"].inc()
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
            self.fetch_wait.forget()
        self._done.clear()
        self._deferred.clear()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()


def _runs(items: list[_Prepared]) -> list[list[_Prepared]]:
    """Split into runs of consecutive items with the same handler (order kept across runs)."""
    runs: list[list[_Prepared]] = []
    for item in items:
        if runs and item.batch is not None and runs[-1][-1].batch is item.batch:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


async def _handle_run(session: AsyncSession, run: list[_Prepared]) -> None:
    """One per-event handler call (with the event's correlation id), or one batch handler call.

    A batch handler writes with Core statements, which neither flush the ORM's pending changes
    nor refresh the objects it holds: the session is flushed before, and its objects expired
    after, so per-event handlers on either side see exactly what one-by-one handling would show.
    """
    first = run[0]
    if first.batch is None:
        assert first.handler is not None
        token = obs.correlation_id.set(_correlation(first.envelope))
        try:
            await first.handler(session, first.payload, first.envelope)
        finally:
            obs.correlation_id.reset(token)
        return
    touched = bool(session.identity_map) or bool(session.new) or bool(session.dirty)
    if touched:
        await session.flush()
    await first.batch(session, [(item.payload, item.envelope) for item in run])
    if touched:
        session.expire_all()


def _describe(error: Exception) -> str:
    """The error class and, for our own parse errors, the message (which names no values)."""
    if isinstance(error, EnvelopeError | UnknownEventType | InvalidPayload):
        return obs.redact(f"{type(error).__name__}: {error}")[:500]
    return type(error).__name__


def _correlation(envelope: Envelope) -> str:
    """The correlation id a handler's own events and audit entries carry: the message's, when it
    is safe to copy on (any producer can write a Kafka header), else a fresh one."""
    return obs.accept_id(envelope.correlation_id or envelope.id)
