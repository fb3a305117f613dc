"""Transactional outbox: events are rows written in the same transaction as the state change.

``record_event`` adds the row; the commit wakes the relay at once (no polling on the normal
path). The relay publishes unpublished rows in id order to the domain topic and, projected
through the slice policy, to the department topics, then marks them published.

Ordering: rows are read as ``published_at IS NULL ORDER BY id`` (never ``id > last_seen``, which
skips rows that commit out of id order). Use cases lock the family's row before writing, so one
family's events get ids in commit order. Only one relay per service publishes: on PostgreSQL it
holds an advisory lock, the others stand by.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from shared import observability as obs
from shared.db import is_postgres
from shared.events.envelope import Envelope
from shared.events.registry import REGISTRY, DomainEvent
from shared.kafka import ensure_topics, make_producer, send_all
from shared.settings import Settings
from shared.slices.policy import SlicePolicy
from shared.tables import outbox

log = logging.getLogger(__name__)
WAKEUP_KEY = "oto_outbox_wakeup"
PENDING_KEY = "oto_outbox_pending"
BATCH_SIZE = 500
#: Under steady traffic the backlog gauges are refreshed this often (seconds); when idle, always.
METRICS_INTERVAL = 1.0


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
    await session.execute(
        outbox.insert().values(
            event_id=envelope.id,
            event_type=envelope.type,
            source=envelope.source,
            partition_key=envelope.key,
            subject=envelope.subject,
            occurred_at=envelope.time,
            correlation_id=envelope.correlation_id,
            payload=envelope.data,
        )
    )
    session.info[PENDING_KEY] = True
    return envelope


@sa_event.listens_for(Session, "after_commit")
def _wake_relay_after_commit(session: Session) -> None:
    if session.info.pop(PENDING_KEY, False):
        wakeup = session.info.get(WAKEUP_KEY)
        if wakeup is not None:
            wakeup()


@sa_event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(PENDING_KEY, None)


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
        """Publish one batch of unpublished rows in id order and mark them; return the count."""
        async with self.sessionmaker() as session, session.begin():
            query = select(outbox).where(outbox.c.published_at.is_(None)).order_by(outbox.c.id)
            query = query.limit(BATCH_SIZE)
            if is_postgres(session):
                query = query.with_for_update(skip_locked=True)
            rows = (await session.execute(query)).all()
            if not rows:
                return 0
            envelopes = [row_to_envelope(row) for row in rows]
            await send_all(self._producer, self._messages(envelopes))
            await session.execute(
                update(outbox)
                .where(outbox.c.id.in_([row.id for row in rows]))
                .values(published_at=datetime.now(UTC))
            )
        self.published_total += len(rows)
        obs.OUTBOX_PUBLISHED.labels(self.settings.service).inc(len(rows))
        return len(rows)

    def _messages(self, envelopes: list[Envelope]) -> list[tuple[str, Envelope]]:
        messages: list[tuple[str, Envelope]] = []
        domain_topic = self.settings.domain_topic()
        for envelope in envelopes:
            messages.append((domain_topic, envelope))
            if self.policy is not None:
                for department, projected in self.policy.project(envelope):
                    messages.append((self.settings.department_topic(department.value), projected))
        return messages

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
            count, oldest = (await session.execute(
                select(func.count(), func.min(outbox.c.occurred_at)).where(
                    outbox.c.published_at.is_(None)
                )
            )).one()
        obs.OUTBOX_PENDING.labels(self.settings.service).set(count)
        age = 0.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            age = (datetime.now(UTC) - oldest).total_seconds()
        obs.OUTBOX_OLDEST_AGE.labels(self.settings.service).set(age)

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
