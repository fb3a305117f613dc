"""Small helpers for tests: isolated settings, reading a topic, minting tokens."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from shared.auth import mint_token
from shared.events.envelope import Envelope
from shared.settings import Settings


@dataclass
class Broker:
    bootstrap: str
    idempotence: bool


def run_admin_sql(server: str, statement: str) -> None:
    """One admin statement (CREATE/DROP DATABASE) on a loop of its own in a worker thread, so
    sync fixtures can call it while the tests' loop is running."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def make_settings(*, broker: Broker | None = None, database_url: str | None = None,
                  service: str = "intake", **overrides: Any) -> Settings:
    """Settings isolated per test: a unique topic namespace, the given broker and database."""
    values: dict[str, Any] = {
        "service": service,
        "env": "dev",
        "topic_namespace": f"t{uuid.uuid4().hex[:10]}",
        "log_json": False,
        "consumer_max_attempts": 2,
    }
    if broker is not None:
        values.update(kafka_bootstrap=broker.bootstrap, kafka_idempotence=broker.idempotence)
    else:
        values.update(kafka_bootstrap="127.0.0.1:1", relay_enabled=False, consumers_enabled=False)
    if database_url is not None:
        values["database_url"] = database_url
    values.update(overrides)
    return Settings(**values)


def bearer(settings: Settings, role: str, **claims: Any) -> dict[str, str]:
    token = mint_token(settings, subject=claims.pop("subject", f"{role}-user"), role=role, **claims)
    return {"Authorization": f"Bearer {token}"}


async def read_topic(bootstrap: str, topic: str, *, expected: int, timeout: float = 20.0,
                     settle: float = 0.3) -> list[ConsumerRecord]:
    """Read a topic from the beginning until ``expected`` records (and a short settle) or timeout."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    settled_at: float | None = None
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
            if len(records) >= expected:
                settled_at = settled_at or time.monotonic()
                if time.monotonic() - settled_at >= settle:
                    break
    finally:
        await consumer.stop()
    return records


def envelopes(records: list[ConsumerRecord]) -> list[Envelope]:
    return [Envelope.from_kafka(r.key, r.value, r.headers) for r in records]


async def eventually(check: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Wait until ``await check()`` returns something truthy, and return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run an app's lifespan (migrations, relay, consumers) and give a client for it."""
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://test") as http:
        yield http


async def publish(settings: Settings, bootstrap: str, events: list[Any], *, times: int = 1) -> None:
    """Publish events of another service on its domain topic, as its relay would (``times`` repeats)."""
    from aiokafka import AIOKafkaProducer

    from shared.events.registry import REGISTRY
    from shared.kafka import ensure_topics
    from shared.outbox import source_for

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for event in events:
            service = REGISTRY.spec(event.event_type).service
            topic = settings.domain_topic(service)
            await ensure_topics(settings, [topic])
            envelope = Envelope(type=event.event_type, source=source_for(service), key=event.partition_key(),
                                data=event.model_dump(mode="json"))
            for _ in range(times):
                await producer.send_and_wait(topic, envelope.value(), key=envelope.key_bytes(),
                                             headers=envelope.headers())
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def service_api(create_app: Any, *, service: str, broker: Broker | None, database_url: str,
                      **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A service running on its own database (and the broker), with ``.settings`` and ``.app`` on
    the client and ``.team`` a token for team staff in Gellerup."""
    settings = make_settings(broker=broker, database_url=database_url, service=service, **overrides)
    app = create_app(settings)
    async with running(app) as http:
        http.settings = settings  # type: ignore[attr-defined]
        http.app = app  # type: ignore[attr-defined]
        http.team = bearer(settings, "team_staff", site="gellerup")  # type: ignore[attr-defined]
        yield http


def ready_services(base_port: int) -> set[str]:
    """Which services of an embedded system (intake on ``base_port``, then +1 each) are ready."""
    from shared.settings import SERVICES

    ready = set()
    for offset, service in enumerate(SERVICES):
        try:
            if httpx.get(f"http://127.0.0.1:{base_port + offset}/readyz", timeout=2).status_code == 200:
                ready.add(service)
        except httpx.HTTPError:
            pass
    return ready
