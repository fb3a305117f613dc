"""The transactional outbox and its relay, against a real broker and real databases."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from shared.broker import TansuBroker
from shared.db import make_engine, make_sessionmaker
from shared.departments import Department
from shared.outbox import OutboxRelay, relay_wakeup_info
from shared.slices.policy import SlicePolicy, SliceRule
from shared.tables import outbox
from tests.shared.plumbing import ThingHappened, create_tables, write_thing
from tests.support import Broker, envelopes, eventually, make_settings, read_topic

pytestmark = pytest.mark.broker


async def _setup(settings, policy=None):
    engine = make_engine(settings.resolved_database_url())
    await create_tables(engine)
    relay = OutboxRelay(settings=settings, engine=engine, sessionmaker=make_sessionmaker(engine),
                        policy=policy, poll_interval=0.5)
    return engine, relay, make_sessionmaker(engine, relay_wakeup_info(relay))


async def _unpublished(sessionmaker) -> int:
    async with sessionmaker() as session:
        rows = await session.execute(select(outbox.c.id).where(outbox.c.published_at.is_(None)))
        return len(rows.all())


async def test_committed_event_is_published_once_and_rolled_back_one_never(
        broker: Broker, database_url: str) -> None:
    settings = make_settings(broker=broker, database_url=database_url)
    engine, relay, sessionmaker = await _setup(settings)
    family = uuid.uuid4()
    async with sessionmaker() as session:
        await write_thing(session, family, 1)
        await session.commit()
    async with sessionmaker() as session:
        await write_thing(session, family, 2)
        await session.rollback()
    task = asyncio.create_task(relay.run())
    try:
        assert await eventually(lambda: _no_pending(sessionmaker))
        records = await read_topic(broker.bootstrap, settings.domain_topic(), expected=1)
    finally:
        await relay.stop()
        await task
        await engine.dispose()
    published = envelopes(records)
    assert [e.data["seq"] for e in published] == [1]
    assert published[0].key == str(family)
    assert published[0].type == ThingHappened.event_type


async def _no_pending(sessionmaker) -> bool:
    return await _unpublished(sessionmaker) == 0


async def test_relay_wakes_on_commit_without_waiting_for_the_poll(
        broker: Broker, sqlite_url: str) -> None:
    settings = make_settings(broker=broker, database_url=sqlite_url)
    engine, relay, sessionmaker = await _setup(settings)
    relay.poll_interval = 30.0  # a poll would be far too late: only the wake-up can pass
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _true(relay.is_leader and relay._producer is not None))
        await asyncio.sleep(0.3)  # let it reach its wait
        async with sessionmaker() as session:
            await write_thing(session, uuid.uuid4(), 1)
            await session.commit()
        assert await eventually(lambda: _no_pending(sessionmaker), timeout=5)
    finally:
        await relay.stop()
        await task
        await engine.dispose()


async def _true(value: bool) -> bool:
    return value


def _gauge(name: str, service: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": service}) or 0.0


async def test_writes_succeed_while_broker_is_down_and_publish_in_order_after(
        postgres_url: str, tmp_path) -> None:
    own = TansuBroker(log_path=tmp_path / "tansu.log").start()
    settings = make_settings(broker=Broker(own.bootstrap, False), database_url=postgres_url)
    engine, relay, sessionmaker = await _setup(settings)
    own.stop()
    task = asyncio.create_task(relay.run())
    families = [uuid.uuid4() for _ in range(3)]
    try:
        for seq in range(30):
            async with sessionmaker() as session:
                await write_thing(session, families[seq % 3], seq)
                await session.commit()
        await asyncio.sleep(1.0)
        assert await _unpublished(sessionmaker) == 30
        assert await eventually(lambda: _true(_gauge("oto_outbox_pending", settings.service) == 30))
        assert _gauge("oto_outbox_oldest_age_seconds", settings.service) > 0.0
        own.start()
        assert await eventually(lambda: _no_pending(sessionmaker), timeout=40)
        assert await eventually(lambda: _true(_gauge("oto_outbox_pending", settings.service) == 0))
        records = await read_topic(own.bootstrap, settings.domain_topic(), expected=30)
    finally:
        await relay.stop()
        await task
        await engine.dispose()
        own.stop()
    by_family: dict[str, list[int]] = defaultdict(list)
    for env in envelopes(records):
        by_family[env.key].append(env.data["seq"])
    assert len(records) == 30
    for family in families:
        assert by_family[str(family)] == sorted(by_family[str(family)])
        assert len(by_family[str(family)]) == 10


async def test_two_relays_at_once_publish_each_key_in_order_once(
        broker: Broker, postgres_url: str) -> None:
    settings = make_settings(broker=broker, database_url=postgres_url)
    engine, first, sessionmaker = await _setup(settings)
    second = OutboxRelay(settings=settings, engine=engine, sessionmaker=make_sessionmaker(engine),
                         policy=None, poll_interval=0.2)
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    families = [uuid.uuid4() for _ in range(4)]
    try:
        for seq in range(80):
            async with sessionmaker() as session:
                await write_thing(session, families[seq % 4], seq)
                await session.commit()
            second.wake()
        assert await eventually(lambda: _no_pending(sessionmaker), timeout=30)
        records = await read_topic(broker.bootstrap, settings.domain_topic(), expected=80)
        assert sorted([first.is_leader, second.is_leader]) == [False, True]
    finally:
        for relay in (first, second):
            await relay.stop()
        await asyncio.gather(*tasks)
        await engine.dispose()
    published = envelopes(records)
    assert len({e.id for e in published}) == len(published) == 80
    by_family: dict[str, list[int]] = defaultdict(list)
    for env in published:
        by_family[env.key].append(env.data["seq"])
    for seqs in by_family.values():
        assert seqs == sorted(seqs)


async def test_relay_routes_projections_to_department_topics_only_where_allowed(
        broker: Broker, sqlite_url: str) -> None:
    policy = SlicePolicy([SliceRule(Department.HEALTH_AND_CARE, ThingHappened, ("seq",),
                                    reason="test: health sees the sequence number")])
    settings = make_settings(broker=broker, database_url=sqlite_url)
    engine, relay, sessionmaker = await _setup(settings, policy)
    family = uuid.uuid4()
    async with sessionmaker() as session:
        for seq in range(3):
            await write_thing(session, family, seq)
        await session.commit()
    task = asyncio.create_task(relay.run())
    try:
        assert await eventually(lambda: _no_pending(sessionmaker))
        health = await read_topic(broker.bootstrap,
                                  settings.department_topic(Department.HEALTH_AND_CARE), expected=3)
        children = await read_topic(broker.bootstrap, settings.department_topic(
            Department.CHILDREN_AND_YOUNG_PEOPLE), expected=1, timeout=2)
        domain = await read_topic(broker.bootstrap, settings.domain_topic(), expected=3)
    finally:
        await relay.stop()
        await task
        await engine.dispose()
    projected = envelopes(health)
    assert [e.data for e in projected] == [
        {"family_id": str(family), "site_id": "gellerup", "seq": s} for s in range(3)]
    assert [e.id for e in projected] == [e.id for e in envelopes(domain)]
    assert children == []


async def test_a_row_committed_after_a_later_id_is_still_published(broker: Broker, postgres_url: str) -> None:
    """Ids are taken at insert, visibility comes at commit: polling ``id > last_seen`` would skip."""
    settings = make_settings(broker=broker, database_url=postgres_url)
    engine, relay, sessionmaker = await _setup(settings)
    task = asyncio.create_task(relay.run())
    early, late = uuid.uuid4(), uuid.uuid4()
    try:
        async with sessionmaker() as slow:
            await write_thing(slow, early, 1)
            await slow.flush()  # takes the smaller id, not yet committed
            async with sessionmaker() as fast:
                await write_thing(fast, late, 2)
                await fast.commit()
            assert await eventually(lambda: _published_seqs(sessionmaker, {2}))
            await slow.commit()
        assert await eventually(lambda: _no_pending(sessionmaker))
        records = await read_topic(broker.bootstrap, settings.domain_topic(), expected=2)
    finally:
        await relay.stop()
        await task
        await engine.dispose()
    assert sorted(e.data["seq"] for e in envelopes(records)) == [1, 2]


async def _published_seqs(sessionmaker, expected: set[int]) -> bool:
    async with sessionmaker() as session:
        rows = await session.execute(select(outbox.c.payload).where(outbox.c.published_at.is_not(None)))
        return {row.payload["seq"] for row in rows} == expected
