"""Consumers wait short for data while messages flow and long while idle (embedded-broker hops)."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher

from shared.kafka import AdaptiveFetchWait, make_consumer, set_fetch_max_wait
from tests.shared.plumbing import thing
from tests.shared.test_inbox import Harness, envelope_for
from tests.support import Broker, eventually, make_settings


def _fake_consumer(wait_ms: int = 500) -> Any:
    return SimpleNamespace(_fetcher=SimpleNamespace(_fetch_max_wait_ms=wait_ms))


def test_aiokafka_still_builds_its_fetch_requests_from_the_attribute_the_project_sets() -> None:
    """``set_fetch_max_wait`` writes a private attribute: this fails if aiokafka renames it or
    stops reading it where it builds a fetch request."""
    assert "self._fetch_max_wait_ms" in inspect.getsource(Fetcher._get_actions_per_node)
    assert "fetch_max_wait_ms" in inspect.signature(Fetcher.__init__).parameters
    consumer = _fake_consumer()
    set_fetch_max_wait(consumer, 7)
    assert consumer._fetcher._fetch_max_wait_ms == 7


def test_the_wait_is_short_after_a_message_and_long_once_quiet_for_the_busy_time() -> None:
    wait, consumer = AdaptiveFetchWait(idle_ms=500, busy_ms=10, busy_seconds=5.0), _fake_consumer()
    wait.observe(consumer, got_messages=False, now=100.0)
    assert wait.current_ms == 500 and consumer._fetcher._fetch_max_wait_ms == 500
    wait.observe(consumer, got_messages=True, now=101.0)
    assert wait.current_ms == 10 and consumer._fetcher._fetch_max_wait_ms == 10
    wait.observe(consumer, got_messages=False, now=105.9)  # still within the busy time
    assert consumer._fetcher._fetch_max_wait_ms == 10
    wait.observe(consumer, got_messages=False, now=106.1)
    assert wait.current_ms == 500 and consumer._fetcher._fetch_max_wait_ms == 500
    wait.observe(consumer, got_messages=True, now=200.0)
    assert consumer._fetcher._fetch_max_wait_ms == 10
    wait.forget()  # a new client is built with the idle wait
    assert wait.current_ms == 500


async def test_consumers_are_built_with_the_idle_wait_from_the_settings() -> None:
    settings = make_settings(consumer_fetch_max_wait_ms=321)
    consumer = make_consumer(settings, group_id=None)
    assert consumer._fetch_max_wait_ms == 321


@pytest.mark.broker
async def test_a_running_consumer_switches_to_the_short_wait_on_a_message_and_back_when_idle(
        broker: Broker, sqlite_url: str) -> None:
    async with Harness(broker, sqlite_url) as h:
        h.settings = make_settings(broker=broker, database_url=sqlite_url, consumer_fetch_max_wait_ms=400,
                                   consumer_busy_fetch_max_wait_ms=9, consumer_busy_seconds=3600,
                                   topic_namespace=h.settings.topic_namespace)
        consumer = h.consumer()
        task = asyncio.create_task(consumer.run())
        try:
            assert await eventually(lambda: _started(consumer))
            assert _client_wait(consumer) == 400  # nothing has come yet: the long wait
            await h.send(envelope_for(thing(uuid.uuid4(), 1)))
            assert await eventually(lambda: _handled(consumer, 1))
            assert consumer.fetch_wait.current_ms == 9 and _client_wait(consumer) == 9
            consumer.fetch_wait.busy_seconds = 0  # as if the busy time had run out
            assert await eventually(lambda: _waits(consumer, 400))
        finally:
            await consumer.stop()
            await task


def _client_wait(consumer: Any) -> int:
    client = cast(AIOKafkaConsumer, consumer._consumer)
    return int(client._fetcher._fetch_max_wait_ms)


async def _started(consumer: Any) -> bool:
    return consumer._consumer is not None and getattr(consumer._consumer, "_fetcher", None) is not None


async def _handled(consumer: Any, count: int) -> bool:
    return bool(consumer.handled >= count)


async def _waits(consumer: Any, wait_ms: int) -> bool:
    return consumer.fetch_wait.current_ms == wait_ms and _client_wait(consumer) == wait_ms
