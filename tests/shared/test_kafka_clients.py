"""Which Kafka clients work with the embedded broker (tansu): aiokafka and confluent-kafka.

Dashboard teams pick their own client. aiokafka is what the services use; confluent-kafka wraps
librdkafka, the C client most other tools build on, so it stands for them. Each is tested both
ways against the real broker process: it reads what the services publish (CloudEvents headers
intact) and what it publishes the services' client reads. (Debian 12's ``kcat`` links librdkafka
2.0.2, which cannot talk to tansu; see docs/dashboards.md.)
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from shared.kafka import ensure_topics, make_producer
from tests.support import Broker, make_settings, read_topic

pytestmark = pytest.mark.broker


def _confluent_read(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[Any]:
    """Read ``expected`` messages with confluent-kafka in a consumer group (blocking: in a thread).

    tansu holds a new member's first JoinGroup for the rebalance timeout (librdkafka's
    ``max.poll.interval.ms``, 300 s by default), so the dashboard settings in docs/dashboards.md
    shorten it.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"oto.dashboard.{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000, "max.poll.interval.ms": 6000})
    consumer.subscribe([topic])
    messages = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            messages.append(message)
            consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()
    return messages


async def test_confluent_kafka_reads_what_the_services_publish_with_the_cloudevents_headers(
        broker: Broker) -> None:
    settings = make_settings(broker=broker)
    topic = settings.department_topic("sundhed-og-omsorg")
    await ensure_topics(settings, [topic])
    producer = make_producer(settings)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, value=b'{"n": %d}' % n, key=b"family-1",
                                         headers=[("ce_id", f"id-{n}".encode()), ("ce_type", b"t.v1")])
    finally:
        await producer.stop()

    messages = await asyncio.to_thread(_confluent_read, broker.bootstrap, topic, 3)

    assert [m.value() for m in messages] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert {m.key() for m in messages} == {b"family-1"}
    assert [dict(m.headers())["ce_id"] for m in messages] == [b"id-0", b"id-1", b"id-2"]


async def test_confluent_kafka_creates_topics_and_produces_what_aiokafka_reads(broker: Broker) -> None:
    settings = make_settings(broker=broker)
    topic = settings.domain_topic("intake")

    def produce() -> None:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
            future.result(timeout=20)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all",
                             "enable.idempotence": broker.idempotence})
        for n in range(2):
            producer.produce(topic, key=b"k", value=b"v%d" % n, headers=[("ce_id", b"x%d" % n)])
        assert producer.flush(20) == 0

    await asyncio.to_thread(produce)

    records = await read_topic(broker.bootstrap, topic, expected=2)
    assert [r.value for r in records] == [b"v0", b"v1"]
    assert [dict(r.headers)["ce_id"] for r in records] == [b"x0", b"x1"]


async def test_aiokafka_consumer_groups_commit_and_resume(broker: Broker) -> None:
    """The services' own client: a group that committed resumes after what it read."""
    settings = make_settings(broker=broker)
    topic = settings.domain_topic("casework")
    await ensure_topics(settings, [topic], partitions=1)
    producer = make_producer(settings)
    await producer.start()
    group = f"{settings.topic_namespace}.g"
    try:
        await producer.send_and_wait(topic, b"first", key=b"k")
        first = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                                 auto_offset_reset="earliest", enable_auto_commit=False)
        await first.start()
        try:
            record = await asyncio.wait_for(first.getone(), 20)
            await first.commit()
        finally:
            await first.stop()
        await producer.send_and_wait(topic, b"second", key=b"k")
    finally:
        await producer.stop()
    second = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                              auto_offset_reset="earliest", enable_auto_commit=False)
    await second.start()
    try:
        resumed = await asyncio.wait_for(second.getone(), 20)
    finally:
        await second.stop()
    assert (record.value, resumed.value) == (b"first", b"second")


def test_the_dashboard_guide_names_the_tested_clients_and_their_settings() -> None:
    """docs/dashboards.md's client table is what this module proves; it must not drift from it."""
    guide = (Path(__file__).resolve().parents[2] / "docs/dashboards.md").read_text()
    for needle in ("aiokafka", "confluent-kafka", "kcat", "librdkafka 2.0.2", "max.poll.interval.ms",
                   "tests/shared/test_kafka_clients.py", "localhost:9094"):
        assert needle in guide, needle
    source = Path(__file__).read_text()
    assert '"max.poll.interval.ms": 6000' in source and '"max.poll.interval.ms": 6000' in guide


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (apt-get install kcat)")
def test_debian_12s_kcat_cannot_talk_to_the_embedded_broker_as_the_guide_says(broker: Broker) -> None:
    """Where kcat is installed, hold docs/dashboards.md to it: if this starts to pass, fix the guide."""
    if broker.idempotence:
        pytest.skip("the broker is Apache Kafka, not the embedded tansu")
    version = subprocess.run(["kcat", "-V"], capture_output=True, text=True, timeout=20).stdout
    if "librdkafka 2.0.2" not in version:
        pytest.skip(f"not Debian 12's kcat: {version.splitlines()[0] if version else '?'}")
    listed = subprocess.run(["kcat", "-b", broker.bootstrap, "-L", "-m", "5"], capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode != 0
    assert "ApiVersionRequest failed" in listed.stderr
