"""aiokafka client factory: one place that knows Apache Kafka from the local tansu broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
    UnsupportedForMessageFormatError,
)

from shared.events.envelope import Envelope
from shared.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_PARTITIONS = 3
#: The producer's ``max_request_size`` (aiokafka's default, and about Kafka's ``message.max.bytes``):
#: a larger message can never be sent, so it is refused before it is committed.
MAX_MESSAGE_BYTES = 1_048_576
#: Errors that concern one message, never the broker's health: the relay parks the row that
#: caused one. Everything else (connection, timeout, leadership, authorisation) is an outage
#: and is retried, because parking every row for a misconfigured ACL would be worse.
MESSAGE_ERRORS: tuple[type[Exception], ...] = (
    UnicodeError, ValueError, TypeError, MessageSizeTooLargeError, RecordTooLargeError,
    RecordListTooLargeError, CorruptRecordException, InvalidTopicError, UnsupportedForMessageFormatError,
)


class OutgoingMessage(NamedTuple):
    """A message serialised for the producer: what is sent is exactly what was checked."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class MessageTooLarge(ValueError):
    """The serialised message is larger than any broker will take."""


def serialise(topic: str, envelope: Envelope) -> OutgoingMessage:
    """Encode an envelope for ``topic``; raises (UnicodeError, ValueError) if it cannot be sent."""
    message = OutgoingMessage(topic, envelope.key_bytes(), envelope.value(), envelope.headers())
    size = len(message.key) + len(message.value) + sum(len(k) + len(v) for k, v in message.headers)
    if size > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"{size} bytes, more than {MAX_MESSAGE_BYTES}")
    return message


def is_message_error(error: BaseException) -> bool:
    """True for an error of the message itself (park it), False for an outage (retry)."""
    return isinstance(error, MESSAGE_ERRORS)


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection options shared by producers, consumers and the admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol != "PLAINTEXT":
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_username
        options["sasl_plain_password"] = (
            settings.kafka_password.get_secret_value() if settings.kafka_password else None
        )
    return options


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """acks=all; idempotence as configured (tansu rejects it, dedupe is by event id anyway)."""
    options = {
        **client_options(settings),
        "acks": "all",
        "enable_idempotence": settings.kafka_idempotence,
        "linger_ms": 1,
        "request_timeout_ms": 10_000,
        "retry_backoff_ms": 200,
        **overrides,
    }
    return AIOKafkaProducer(**options)


def make_consumer(settings: Settings, *, group_id: str | None, **overrides: Any) -> AIOKafkaConsumer:
    """Auto-commit off: offsets are committed only after the database commit."""
    options = {
        **client_options(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 500,
        "fetch_max_wait_ms": settings.consumer_fetch_max_wait_ms,
        **overrides,
    }
    return AIOKafkaConsumer(**options)


def set_fetch_max_wait(consumer: AIOKafkaConsumer, wait_ms: int) -> None:
    """Change how long a running consumer's next fetch requests wait for data.

    aiokafka takes ``fetch_max_wait_ms`` only at construction and has no public setter, so this
    sets the private ``_fetch_max_wait_ms`` of the consumer's fetcher, the one place in the
    project that touches it. ``tests/shared/test_fetch_wait.py`` fails if aiokafka renames it
    or stops reading it when it builds a fetch request.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None:
        return  # not started yet: it is built with the wait given at construction
    if not hasattr(fetcher, "_fetch_max_wait_ms"):
        raise RuntimeError("aiokafka's fetcher no longer has _fetch_max_wait_ms")
    fetcher._fetch_max_wait_ms = wait_ms


class AdaptiveFetchWait:
    """Fetches wait briefly while messages flow and long once the topic has been quiet a while.

    On tansu (the embedded broker) an empty fetch returns only when its wait runs out, so a
    message arriving meanwhile waits for it: with the long wait every hop between services
    would cost a few hundred milliseconds, with a short one always an idle service would poll
    its broker a hundred times a second. A message switches to the short wait (the request
    already in flight keeps its own); ``busy_seconds`` without one switch back.
    """

    def __init__(self, *, idle_ms: int, busy_ms: int, busy_seconds: float) -> None:
        self.idle_ms, self.busy_ms, self.busy_seconds = idle_ms, busy_ms, busy_seconds
        self.current_ms = idle_ms
        self._last_message = float("-inf")

    @classmethod
    def from_settings(cls, settings: Settings) -> AdaptiveFetchWait:
        return cls(idle_ms=settings.consumer_fetch_max_wait_ms,
                   busy_ms=settings.consumer_busy_fetch_max_wait_ms,
                   busy_seconds=settings.consumer_busy_seconds)

    def observe(self, consumer: AIOKafkaConsumer, *, got_messages: bool, now: float) -> None:
        """After each poll: note whether it brought messages and set the wait it calls for."""
        if got_messages:
            self._last_message = now
        wanted = self.busy_ms if now - self._last_message < self.busy_seconds else self.idle_ms
        if wanted != self.current_ms:
            set_fetch_max_wait(consumer, wanted)
            self.current_ms = wanted

    def forget(self) -> None:
        """A new client starts with the idle wait it was built with."""
        self.current_ms, self._last_message = self.idle_ms, float("-inf")


async def ensure_topics(
    settings: Settings, topics: Iterable[str], partitions: int = DEFAULT_PARTITIONS
) -> None:
    """Create the topics that do not exist yet; existing ones are left alone."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("created topics", extra={"topics": [t.name for t in missing]})
    finally:
        await admin.close()


async def send_all(producer: AIOKafkaProducer,
                   groups: Sequence[Sequence[OutgoingMessage]]) -> list[BaseException | None]:
    """Send groups of messages in order and wait for every acknowledgement; per key, order is
    kept per topic. Return, per group, the first error of the message itself (``None`` when every
    message of the group was acknowledged). An outage raises: nothing can be said of any group.
    """
    pending: list[list[asyncio.Future[Any]]] = []
    failed: list[BaseException | None] = []
    for group in groups:
        futures: list[asyncio.Future[Any]] = []
        error: BaseException | None = None
        for message in group:
            try:
                futures.append(await producer.send(message.topic, value=message.value, key=message.key,
                                                   headers=message.headers))
            except Exception as exc:
                if not is_message_error(exc):
                    raise
                error = exc
                break
        pending.append(futures)
        failed.append(error)
    for index, futures in enumerate(pending):
        for future in futures:
            try:
                await future
            except Exception as exc:
                if not is_message_error(exc):
                    raise
                failed[index] = failed[index] or exc
    return failed


async def read_markers(settings: Settings, topic: str, *, looking_for: str | None,
                       quiet_polls: int = 5) -> set[str]:
    """The values on a one-partition marker topic (empty if it does not exist). Stops early once
    ``looking_for`` is seen; otherwise reads until a few polls in a row bring nothing (tansu
    sometimes reports end offsets short of the last record, so they are not trusted). Only the
    "not found" answer waits the full two seconds, and a wrong one costs a harmless re-publish."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    seen: set[str] = set()
    try:
        if topic not in await consumer.topics():
            return seen
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        quiet = 0
        while quiet < quiet_polls and looking_for not in seen:
            batch = await consumer.getmany(partition, timeout_ms=400)
            quiet = 0 if batch else quiet + 1
            seen.update(r.value.decode("utf-8", "replace") for r in batch.get(partition, ()) if r.value)
    finally:
        await consumer.stop()
    return seen
