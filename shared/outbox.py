"""Transactional outbox: events are rows written in the same transaction as the state change.

``record_event`` adds the row; the commit wakes the relay at once (no polling on the normal
path). The relay publishes unpublished rows in id order to the domain topic and, projected
through the slice policy, to the department topics, then marks them published.

Ordering: rows are read as ``published_at IS NULL ORDER BY id`` (never ``id > last_seen``, which
skips rows that commit out of id order). Use cases lock the family's row before writing, so one
family's events get ids in commit order. Only one relay per service publishes: on PostgreSQL it
holds an advisory lock, the others stand by.

The outbox is the durable log; the broker can be rebuilt from it. Rows are kept after publishing
(``OTO_OUTBOX_RETENTION_DAYS``), and the relay writes an incarnation marker to
``<ns>.<service>.relay-marker``: when a (re)connect, a periodic check or a vanished topic shows
that the broker no longer has the marker, it has lost what it acknowledged, and every kept row
is queued again and re-published in id order (consumers' inboxes make the repeats harmless).

A bad row never stops the others: an event is serialised and validated before it is recorded
(``UnpublishableEvent``, the caller's transaction rolls back); a row that still cannot be sent
for a reason of its own is *parked* with the reason, later rows of the same key wait behind it
(per-family order), and every other key flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from shared import observability as obs
from shared.db import is_postgres, signal_after_commit
from shared.errors import Unprocessable
from shared.events.envelope import Envelope
from shared.events.registry import REGISTRY, DomainEvent
from shared.kafka import (
    OutgoingMessage,
    ensure_topics,
    make_producer,
    read_markers,
    send_all,
    serialise,
)
from shared.settings import Settings
from shared.slices.policy import SlicePolicy
from shared.tables import outbox, relay_state

log = logging.getLogger(__name__)
WAKEUP_KEY = "oto_outbox_wakeup"
PENDING_KEY = "oto_outbox_pending"
BATCH_SIZE = 500
#: Under steady traffic the backlog gauges are refreshed this often (seconds); when idle, always.
METRICS_INTERVAL = 1.0
#: The ``relay_state`` row holding the incarnation marker the relay last wrote to the broker.
MARKER_STATE = "broker_marker"


class UnpublishableEvent(Unprocessable):
    """An event that could never be sent (text that cannot be encoded, too large, invalid): the
    use case's transaction must not commit it, so ``record_event`` refuses it (422)."""


def _unencodable_paths(value: Any, path: str = "event") -> Iterator[str]:
    """Where in the event's data text cannot be encoded as UTF-8 (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeError:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unencodable_paths(key, f"{path}.{key!s}"[:200])
            yield from _unencodable_paths(item, f"{path}.{key!s}"[:200])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unencodable_paths(item, f"{path}.{index}")


def check_publishable(envelope: Envelope) -> None:
    """Serialise the event as the relay will and validate what a consumer will parse."""
    try:
        message = serialise("check", envelope)
        REGISTRY.parse(envelope.type, json.loads(message.value))
    except UnicodeError:
        fields = {path: "text that cannot be encoded as UTF-8"
                  for path in _unencodable_paths(envelope.data)} or {"event": "cannot be encoded"}
        raise UnpublishableEvent("The change would record an event that cannot be published.",
                                 fields=fields) from None
    except Exception as exc:
        raise UnpublishableEvent("The change would record an event that cannot be published.",
                                 fields={"event": type(exc).__name__}) from None


#: One statement for every event, values bound per call (see ``shared.audit._INSERT_ENTRY``).
_INSERT_EVENT = outbox.insert()


def source_for(service: str) -> str:
    return f"/oto/{service}"


async def record_event(
    session: AsyncSession, payload: DomainEvent, *, subject: str | None = None
) -> Envelope:
    """Add an event to the outbox in the caller's transaction (the caller commits)."""
    spec = REGISTRY.spec(payload.event_type)
    envelope = Envelope(
        type=spec.type,
        source=source_for(spec.service),
        key=payload.partition_key(),
        data=payload.model_dump(mode="json"),
        subject=subject,
        correlation_id=obs.correlation_id.get(),
    )
    check_publishable(envelope)
    await session.execute(_INSERT_EVENT, {
        "event_id": envelope.id, "event_type": envelope.type, "source": envelope.source,
        "partition_key": envelope.key, "subject": envelope.subject, "occurred_at": envelope.time,
        "correlation_id": envelope.correlation_id, "payload": envelope.data})
    session.info[PENDING_KEY] = True
    return envelope


signal_after_commit(PENDING_KEY, WAKEUP_KEY)


def row_to_envelope(row: Any) -> Envelope:
    """The event a row holds. A correlation id of an unsafe shape (a row written before ids were
    screened could hold a CPR number) is left off, so it reaches no topic and no slice view."""
    occurred = row.occurred_at if row.occurred_at.tzinfo else row.occurred_at.replace(tzinfo=UTC)
    return Envelope(
        id=row.event_id,
        type=row.event_type,
        source=row.source,
        key=row.partition_key,
        subject=row.subject,
        time=occurred,
        correlation_id=row.correlation_id if obs.is_safe_id(row.correlation_id) else None,
        data=row.payload,
    )


def _held_keys() -> Any:
    """Keys with a parked row: their later rows wait behind it."""
    return select(outbox.c.partition_key).where(
        outbox.c.parked_at.isnot(None), outbox.c.discarded_at.is_(None),
        outbox.c.published_at.is_(None))


def _waiting() -> ColumnElement[bool]:
    return and_(outbox.c.published_at.is_(None), outbox.c.parked_at.is_(None),
                outbox.c.discarded_at.is_(None))


def _publishable() -> ColumnElement[bool]:
    """Rows the relay may publish now: waiting, and not behind a parked row of their key."""
    return and_(_waiting(), outbox.c.partition_key.not_in(_held_keys()))


@dataclass(frozen=True)
class Backlog:
    """What waits in the outbox: publishable rows (and the oldest one's age), held and parked."""

    pending: int
    oldest_age: float
    held: int
    parked: int


async def outbox_backlog(session: AsyncSession) -> Backlog:
    """The outbox's backlog, for the metrics and ``/readyz``."""
    queued = func.coalesce(outbox.c.requeued_at, outbox.c.occurred_at)
    pending, oldest = (await session.execute(
        select(func.count(), func.min(queued)).where(_publishable()))).one()
    held = (await session.execute(select(func.count()).where(
        _waiting(), outbox.c.partition_key.in_(_held_keys())))).scalar_one()
    parked = (await session.execute(select(func.count()).where(
        outbox.c.parked_at.isnot(None), outbox.c.discarded_at.is_(None),
        outbox.c.published_at.is_(None)))).scalar_one()
    age = 0.0
    if oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        age = max((datetime.now(UTC) - oldest).total_seconds(), 0.0)
    return Backlog(pending=int(pending), oldest_age=age, held=int(held), parked=int(parked))


async def requeue_published(session: AsyncSession, *, since: datetime | None = None) -> int:
    """Queue published rows again (those that occurred since ``since``, else all kept ones); the
    relay re-publishes them in id order. The caller commits. Returns how many."""
    condition = and_(outbox.c.published_at.isnot(None), outbox.c.discarded_at.is_(None))
    if since is not None:
        condition = and_(condition, outbox.c.occurred_at >= since)
    result = await session.execute(
        update(outbox).where(condition).values(published_at=None, requeued_at=datetime.now(UTC)))
    session.info[PENDING_KEY] = True
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _describe(error: BaseException) -> str:
    """Why a row was parked: the error class and its message, redacted and short."""
    return obs.redact(f"{type(error).__name__}: {error}")[:500]


def _lock_key(service: str) -> int:
    """A stable 63-bit advisory-lock key per service."""
    return int.from_bytes(hashlib.sha256(f"oto-outbox-{service}".encode()).digest()[:8], "big") >> 1


class OutboxRelay:
    """Publishes the outbox; one leader per service, others stand by."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        policy: SlicePolicy | None,
        poll_interval: float = 2.0,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.policy = policy
        self.poll_interval = poll_interval
        self.is_leader = False
        self.last_error: str | None = None
        self.published_total = 0
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock_conn: AsyncConnection | None = None
        self._producer: Any = None
        self._metrics_due = 0.0
        self._check_due = 0.0
        self.requeued_total = 0

    def wake(self) -> None:
        """Called after every commit that wrote outbox rows."""
        self._wakeup.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                if not await self._hold_leadership():
                    await self._sleep(self.poll_interval)
                    continue
                await self._ensure_producer()
                await self._check_broker_now_and_then()
                published = await self.publish_pending()
                backoff = 0.1
                if published < BATCH_SIZE:
                    # Drained. A commit during the batch has set the wake-up already, so waiting
                    # loses nothing; querying again at once would cost an empty cycle per event.
                    await self._update_lag_metrics_now_and_then(idle=not published)
                    await self._wait_for_work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database away: keep the rows, back off
                self.last_error = type(exc).__name__
                log.warning("outbox relay retrying", extra={"error": type(exc).__name__})
                await self._reset_producer()
                with contextlib.suppress(Exception):  # the backlog must show while the broker is away
                    await self._update_lag_metrics()
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        await self._shutdown()

    async def publish_pending(self) -> int:
        """Publish one batch of publishable rows in id order and mark them; park a row that cannot
        be sent for a reason of its own, holding its key's later rows. Return the rows read."""
        async with self.sessionmaker() as session, session.begin():
            query = select(outbox).where(_publishable()).order_by(outbox.c.id).limit(BATCH_SIZE)
            if is_postgres(session):
                query = query.with_for_update(skip_locked=True)
            rows = (await session.execute(query)).all()
            if not rows:
                return 0
            held: set[str] = set()
            parked: list[tuple[Any, BaseException]] = []
            sendable: list[tuple[Any, list[OutgoingMessage]]] = []
            for row in rows:
                if row.partition_key in held:
                    continue
                try:
                    sendable.append((row, self._messages(row_to_envelope(row))))
                except Exception as exc:  # no broker involved yet: whatever fails is the row's own
                    parked.append((row, exc))
                    held.add(row.partition_key)
            errors = await send_all(self._producer, [group for _, group in sendable]) if sendable else []
            done, failed_keys = [], set()
            for (row, _), error in zip(sendable, errors, strict=True):
                if row.partition_key in failed_keys:
                    continue  # sent, but behind a row of its key that failed: sent again later
                if error is not None:
                    parked.append((row, error))
                    failed_keys.add(row.partition_key)
                else:
                    done.append(row.id)
            if done:
                await session.execute(update(outbox).where(outbox.c.id.in_(done))
                                      .values(published_at=datetime.now(UTC)))
            for row, error in parked:
                await self._park(session, row, error)
        self.published_total += len(done)
        obs.OUTBOX_PUBLISHED.labels(self.settings.service).inc(len(done))
        return len(rows)

    async def _park(self, session: AsyncSession, row: Any, error: BaseException) -> None:
        reason = _describe(error)
        await session.execute(update(outbox).where(outbox.c.id == row.id).values(
            parked_at=datetime.now(UTC), parked_reason=reason))
        obs.OUTBOX_PARKED_TOTAL.labels(self.settings.service).inc()
        log.error("outbox row parked: later events of its key wait until it is retried or discarded",
                  extra={"event_id": row.event_id, "event_type": row.event_type,
                         "partition_key": row.partition_key, "reason": reason})
        self._metrics_due = 0.0

    def _messages(self, envelope: Envelope) -> list[OutgoingMessage]:
        messages = [serialise(self.settings.domain_topic(), envelope)]
        if self.policy is not None:
            for department, projected in self.policy.project(envelope):
                messages.append(serialise(self.settings.department_topic(department.value), projected))
        return messages

    async def _check_broker_now_and_then(self) -> None:
        """Every ``outbox_broker_check_seconds``, and at once when the marker topic has vanished
        (a broker that lost its topics; tansu acknowledges writes to them without keeping them)."""
        if time.monotonic() >= self._check_due or not await self._marker_topic_listed():
            await self.verify_broker()

    async def _marker_topic_listed(self) -> bool:
        metadata = await self._producer.client.fetch_all_metadata()
        return self.settings.marker_topic() in metadata.topics()

    async def verify_broker(self) -> int:
        """Check the broker still holds this relay's incarnation marker; if it does not, it has
        lost what it acknowledged: re-create the topics, queue every kept row again, and write a
        new marker. Return how many rows were queued again."""
        marker_topic = self.settings.marker_topic()
        async with self.sessionmaker() as session:
            stored = (await session.execute(select(relay_state.c.value).where(
                relay_state.c.name == MARKER_STATE))).scalar_one_or_none()
            published_any = stored is not None or (await session.execute(
                select(outbox.c.id).where(outbox.c.published_at.isnot(None)).limit(1))).first() is not None
        seen = await read_markers(self.settings, marker_topic, looking_for=stored)
        await self._prune()
        if stored is not None and stored in seen:
            self._check_due = time.monotonic() + self.settings.outbox_broker_check_seconds
            return 0
        await ensure_topics(self.settings, self._topics())
        await ensure_topics(self.settings, [marker_topic], partitions=1)
        requeued = 0
        if published_any:
            async with self.sessionmaker() as session, session.begin():
                requeued = await requeue_published(session)
            self.requeued_total += requeued
            obs.OUTBOX_REQUEUED.labels(self.settings.service).inc(requeued)
            log.warning("the broker lost the events it had acknowledged: re-publishing the outbox",
                        extra={"requeued": requeued, "marker_topic": marker_topic})
        marker = f"{self.settings.service}:{uuid.uuid4()}"
        await self._producer.send_and_wait(marker_topic, marker.encode(), key=b"marker", partition=0)
        async with self.sessionmaker() as session, session.begin():
            await session.execute(delete(relay_state).where(relay_state.c.name == MARKER_STATE))
            await session.execute(relay_state.insert().values(
                name=MARKER_STATE, value=marker, updated_at=datetime.now(UTC)))
        self._check_due = time.monotonic() + self.settings.outbox_broker_check_seconds
        return requeued

    async def _prune(self) -> None:
        """Delete published rows past the retention period (none when it is unset)."""
        days = self.settings.outbox_retention_days
        if days is None:
            return
        async with self.sessionmaker() as session, session.begin():
            await session.execute(delete(outbox).where(
                outbox.c.published_at < datetime.now(UTC) - timedelta(days=days)))

    async def _hold_leadership(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            self.is_leader = True
            return True
        if self._lock_conn is not None:
            try:
                await self._lock_conn.execute(text("SELECT 1"))
                return True
            except Exception:
                await self._release_lock()
        conn = await self.engine.connect()
        got = (await conn.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": _lock_key(self.settings.service)}
        )).scalar()
        await conn.commit()
        if got:
            self._lock_conn = conn
        else:
            await conn.close()
        self.is_leader = bool(got)
        return self.is_leader

    async def _release_lock(self) -> None:
        conn, self._lock_conn, self.is_leader = self._lock_conn, None, False
        if conn is not None:
            try:
                await conn.invalidate()
            except Exception:
                log.debug("lock connection already gone")

    async def _ensure_producer(self) -> None:
        if self._producer is not None:
            return
        await ensure_topics(self.settings, self._topics())
        producer = make_producer(self.settings)
        await producer.start()
        self._producer = producer
        self._check_due = 0.0  # a (re)connect is when a restarted broker shows: check at once

    def _topics(self) -> list[str]:
        from shared.departments import Department

        topics = [self.settings.domain_topic()]
        return topics + [self.settings.department_topic(d.value) for d in Department]

    async def _reset_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), timeout=5)
            except Exception:
                log.debug("producer stop failed")

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=self.poll_interval)
        self._wakeup.clear()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _update_lag_metrics_now_and_then(self, *, idle: bool) -> None:
        """When idle, and under steady traffic at most every ``METRICS_INTERVAL`` seconds."""
        if idle or time.monotonic() >= self._metrics_due:
            await self._update_lag_metrics()
            self._metrics_due = time.monotonic() + METRICS_INTERVAL

    async def _update_lag_metrics(self) -> None:
        async with self.sessionmaker() as session:
            backlog = await outbox_backlog(session)
        service = self.settings.service
        obs.OUTBOX_PENDING.labels(service).set(backlog.pending)
        obs.OUTBOX_OLDEST_AGE.labels(service).set(backlog.oldest_age)
        obs.OUTBOX_HELD.labels(service).set(backlog.held)
        obs.OUTBOX_PARKED.labels(service).set(backlog.parked)

    async def _shutdown(self) -> None:
        """Flush what is in flight, then let go of the producer and the lock."""
        if self._producer is not None:
            try:
                await asyncio.wait_for(self._producer.flush(), timeout=5)
            except Exception:
                log.debug("producer flush failed")
        await self._reset_producer()
        await self._release_lock()


def relay_wakeup_info(relay: OutboxRelay | None) -> dict[str, Callable[[], None]]:
    """Session ``info`` that lets a commit wake the relay."""
    return {WAKEUP_KEY: relay.wake} if relay is not None else {}
