"""The subscriber kit shows a department topic live, and a replay rebuilds a dashboard exactly."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from shared.dashboard import DashboardState, replay
from shared.departments import Department
from shared.events.envelope import Envelope
from shared.kafka import ensure_topics
from shared.subscriber import watch
from tests.support import Broker, make_settings

pytestmark = pytest.mark.broker


async def _publish(broker: Broker, topic: str, envelopes: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(topic, env.value(), key=env.key_bytes(), headers=env.headers())
    finally:
        await producer.stop()


def _events(families: list[uuid.UUID]) -> list[Envelope]:
    return [Envelope(type=f"dk.aarhus.oto.casework.example-{i % 2}.v1", source="/oto/casework",
                     key=str(f), data={"family_id": str(f), "site_id": "tilst", "n": i})
            for i, f in enumerate(families * 3)]


async def test_watch_from_the_beginning_shows_every_event(broker: Broker, capsys) -> None:
    settings = make_settings(broker=broker)
    topic = settings.department_topic(Department.HEALTH_AND_CARE.value)
    await ensure_topics(settings, [topic])
    await _publish(broker, topic, _events([uuid.uuid4(), uuid.uuid4()]))
    shown = await watch(settings, Department.HEALTH_AND_CARE.value, from_beginning=True, group=None,
                        limit=6, idle_timeout=10)
    assert shown == 6
    assert "dk.aarhus.oto.casework.example-1.v1" in capsys.readouterr().out


async def test_watch_from_now_shows_only_new_events_even_in_a_known_group(broker: Broker, capsys) -> None:
    settings = make_settings(broker=broker)
    department = Department.SOCIAL_AND_EMPLOYMENT.value
    topic = settings.department_topic(department)
    await ensure_topics(settings, [topic])
    await _publish(broker, topic, _events([uuid.uuid4()]))  # n = 0, 1, 2: before the watch
    live = asyncio.create_task(watch(settings, department, from_beginning=False, group=None, limit=2,
                                     idle_timeout=20))
    n = 100
    while not live.done() and n < 200:  # keep publishing until the watcher has shown two new ones
        await _publish(broker, topic, [Envelope(type="dk.aarhus.oto.casework.example-0.v1",
                                                source="/oto/casework", key="k",
                                                data={"family_id": "f", "site_id": "tilst", "n": n})])
        n += 1
        await asyncio.sleep(0.3)
    assert await live == 2
    out = capsys.readouterr().out
    assert not re.search(r'"n": [0-2]\b', out)  # the backlog was not shown
    replayed = await watch(settings, department, from_beginning=True,
                           group=f"{settings.topic_namespace}.dashboard.{department}", limit=None,
                           idle_timeout=3)
    assert replayed == 3 + (n - 100)  # from the beginning, even naming a known group: everything
    assert re.search(r'"n": 1\b', capsys.readouterr().out)


async def test_replaying_a_department_topic_rebuilds_the_same_dashboard_state(broker: Broker) -> None:
    settings = make_settings(broker=broker)
    topic = settings.department_topic(Department.CHILDREN_AND_YOUNG_PEOPLE.value)
    await ensure_topics(settings, [topic])
    families = [uuid.uuid4() for _ in range(3)]
    events = _events(families)
    await _publish(broker, topic, events + events[:2])  # two redeliveries
    live = DashboardState()
    for envelope in events + events[:2]:  # what a dashboard following the topic live folded
        live.apply(envelope)
    first, second = await asyncio.gather(
        replay(settings, Department.CHILDREN_AND_YOUNG_PEOPLE),
        replay(settings, Department.CHILDREN_AND_YOUNG_PEOPLE))
    assert first.families == second.families == live.families
    assert {k: v.events for k, v in first.families.items()} == {str(f): 3 for f in families}
    assert first.families[str(families[0])].latest["dk.aarhus.oto.casework.example-1.v1"]["n"] == 3


async def _publish_one_batch(broker: Broker, topic: str, envelopes: list[Envelope]) -> None:
    """All in one record batch: the embedded broker reports the end offset of such a topic one
    batch short, which made "from now" show the batch."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=200)
    await producer.start()
    try:
        sent = [await producer.send(topic, env.value(), key=env.key_bytes(), headers=env.headers())
                for env in envelopes]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def test_watch_from_now_skips_a_backlog_written_in_one_batch(broker: Broker, capsys) -> None:
    settings = make_settings(broker=broker)
    department = Department.CULTURE_AND_CITIZEN_SERVICES.value
    topic = settings.department_topic(department)
    await ensure_topics(settings, [topic])
    await _publish_one_batch(broker, topic, _events([uuid.uuid4(), uuid.uuid4()]))  # n = 0 … 5
    live = asyncio.create_task(watch(settings, department, from_beginning=False, group=None, limit=1,
                                     idle_timeout=30))
    n = 100
    while not live.done() and n < 200:
        await _publish_one_batch(broker, topic, [Envelope(
            type="dk.aarhus.oto.casework.example-0.v1", source="/oto/casework", key="k",
            data={"family_id": "f", "site_id": "tilst", "n": n})])
        n += 1
        await asyncio.sleep(0.3)
    assert await live == 1
    out = capsys.readouterr().out
    assert re.search(r'"n": 1\d\d\b', out)
    assert not re.search(r'"n": [0-5]\b', out)
