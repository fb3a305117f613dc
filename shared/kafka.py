"""aiokafka client factory: one place that knows Apache Kafka from the local tansu broker."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.events.envelope import Envelope
from shared.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_PARTITIONS = 3


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
        **overrides,
    }
    return AIOKafkaConsumer(**options)


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


async def send_all(producer: AIOKafkaProducer, messages: Iterable[tuple[str, Envelope]]) -> None:
    """Send in order and wait for every acknowledgement; per key, order is kept per topic."""
    pending = [
        await producer.send(topic, value=env.value(), key=env.key_bytes(), headers=env.headers())
        for topic, env in messages
    ]
    for future in pending:
        await future
