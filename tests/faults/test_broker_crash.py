"""The broker dies hard in the middle of a burst of writes through intake's REST API, and comes back.

How a crash is modelled. The local broker, tansu, keeps its log **in memory only**: killing its
process also erases every topic, which Apache Kafka — whose log is on disk — would keep. So the
main test puts a TCP proxy (``tests/faults/proxy.py``) in front of a tansu of its own, which
advertises the proxy's address in its metadata so that every client connection (producers,
consumers, group coordination) goes through the proxy. The "crash" resets every open connection
at once (SO_LINGER 0) and refuses new ones; the "restart" accepts connections again. To the
clients that is a dead broker host coming back; behind it the log survived, as a durable broker's
would. The crash is timed at the worst moment: the broker has appended a produce request of
intake's relay, the consumers have read and handled those events, but the acknowledgement never
reached the relay (the proxy withholds it). After the crash the relay cannot know the batch was
written and sends it again: the topic holds duplicates, delivered in later batches than their
originals, and only the consumers' inboxes keep them from having a second effect.

The second test does kill the tansu process (SIGKILL) and restarts it, and asserts what it adds:
the API never failed, the outbox drained, and every event written after the kill reached the
restarted broker, in per-family order. (That the restarted, empty broker also gets everything
written *before* the kill back, re-published by the relays from their kept outboxes, is
``tests/faults/test_broker_loss.py``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.casework.app import create_app as create_casework
from services.casework.handlers import SUBSCRIPTION as CASEWORK
from services.casework.models import Family, FamilyMember
from services.intake.app import create_app as create_intake
from shared.broker import TansuBroker, free_port
from shared.db import make_engine, make_sessionmaker
from shared.departments import Department
from shared.events.envelope import Envelope
from shared.events.registry import REGISTRY
from shared.inbox import EventConsumer, Subscription
from shared.tables import inbox, outbox, plumbing_metadata
from tests.faults.kafka_tools import read_until_seen
from tests.faults.proxy import CrashableProxy
from tests.intake.factories import cpr, define_area
from tests.support import Broker, bearer, eventually, make_settings, service_api

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.slow]

#: Requests (and events) per family: create (screened), outreach, consent, enrol, add member, exit.
STEPS = 6

probe_metadata = MetaData()
#: What the probe consumer did, one row per handler run, in the order it ran. No unique key on
#: purpose: if an event's handler ran twice, its event id is here twice.
ledger = Table("ledger", probe_metadata, Column("seq", Integer, primary_key=True, autoincrement=True),
               Column("event_id", String(36), nullable=False), Column("family_id", String(36)),
               Column("event_type", String(200)))


async def record_in_ledger(session: Any, _event: Any, envelope: Envelope) -> None:
    await session.execute(ledger.insert().values(event_id=envelope.id, family_id=envelope.key,
                                                 event_type=envelope.type))


def probe_subscription() -> Subscription:
    """Every intake event type, each recorded in the ledger: an effect per handler run."""
    return Subscription("probe", ("intake",),
                        {spec.model: record_in_ledger for spec in REGISTRY if spec.service == "intake"})


class Burst:
    """Families going through intake, concurrently; each family's requests in order."""

    def __init__(self, api: httpx.AsyncClient, families: int, *, held: int = 0) -> None:
        """``held`` of the families start only when ``release`` is called (a second wave)."""
        self.api, self.families, self.held = api, families, held
        self._released = asyncio.Event()
        self.answered = 0
        self.failures: list[tuple[str, int, str]] = []
        self.family_ids: list[str] = []

    @property
    def total(self) -> int:
        return self.families * STEPS

    def release(self) -> None:
        self._released.set()

    async def run(self) -> None:
        """A failed step ends its family's run (recorded in ``failures``), not the others'."""
        await define_area(self.api, bearer(self.api.settings, "admin"))  # type: ignore[attr-defined]
        await asyncio.gather(*(self._family(n < self.held) for n in range(self.families)),
                             return_exceptions=True)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[asyncio.Task[None]]:
        """The burst as a task, cancelled on the way out if a failed check left it running."""
        task = asyncio.create_task(self.run())
        try:
            yield task
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _call(self, step: str, path: str, expected: int, body: dict[str, Any] | None = None) -> Any:
        response = await self.api.post(path, json=body, headers=self.api.team)  # type: ignore[attr-defined]
        self.answered += 1
        if response.status_code != expected:
            self.failures.append((step, response.status_code, response.text[:300]))
            raise RuntimeError(step)
        return response.json()

    async def _family(self, held: bool) -> None:
        if held:
            await self._released.wait()
        household = await self._call("create", "/v1/households", 201, {
            "site_id": "gellerup", "address": f"Gudrunsvej {uuid.uuid4().int % 10**8}, 8220 Brabrand",
            "members": [{"cpr": cpr(85), "role": "mother", "unemployed_since": "2016-03-01"},
                        {"cpr": cpr(15, century_digit=4), "role": "child"}]})
        hid, mother = household["id"], household["members"][0]["id"]
        self.family_ids.append(hid)
        base = f"/v1/households/{hid}"
        await self._call("outreach", f"{base}/outreach", 201,
                         {"at": "2026-03-02T16:30:00Z", "outcome": "agreed"})
        await self._call("consent", f"{base}/consents", 201, {
            "person_id": mother, "given_by_person_id": mother, "purposes": ["coordinated_help"],
            "departments": [Department.HEALTH_AND_CARE.value]})
        await self._call("enrol", f"{base}/enrol", 200)
        await self._call("member", f"{base}/members", 201,
                         {"cpr": cpr(80), "role": "father", "unemployed_since": "2015-01-01"})
        await self._call("exit", f"{base}/exit", 200, {"reason": "moved_away"})


async def outbox_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(select(outbox.c.id, outbox.c.event_id, outbox.c.event_type,
                                              outbox.c.partition_key, outbox.c.published_at)
                                       .order_by(outbox.c.id)))


async def unpublished(engine: AsyncEngine) -> int:
    return sum(1 for row in await outbox_rows(engine) if row.published_at is None)


def first_occurrences(records: list[Any]) -> dict[str, list[str]]:
    """Per key, the event ids in topic order, each the first time it appears."""
    seen: set[str] = set()
    by_key: dict[str, list[str]] = defaultdict(list)
    for envelope in (Envelope.from_kafka(r.key, r.value, r.headers) for r in records):
        if envelope.id not in seen:
            seen.add(envelope.id)
            by_key[envelope.key].append(envelope.id)
    return by_key


@asynccontextmanager
async def probe_consumer(broker: Broker, namespace: str, database_url: str) -> AsyncIterator[AsyncEngine]:
    """The probe's real EventConsumer on a database of its own; yields that database's engine."""
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(plumbing_metadata.create_all)
        await conn.run_sync(probe_metadata.create_all)
    consumer = EventConsumer(settings=make_settings(broker=broker, topic_namespace=namespace),
                             subscription=probe_subscription(), sessionmaker=make_sessionmaker(engine),
                             retry_delay=0.05)
    task = asyncio.create_task(consumer.run())
    try:
        yield engine
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, 30)
        await engine.dispose()


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def crash_and_revive_mid_burst(proxy: CrashableProxy, burst: Burst, writes: asyncio.Task[None],
                                     probe: AsyncEngine, intake_db: AsyncEngine, topic: str) -> None:
    """Withhold an acknowledgement, crash once the consumers have handled everything written,
    let the second wave write while the broker is down, revive, and wait for the burst's end."""
    assert await eventually(lambda: _true(burst.answered >= burst.total // 4), timeout=60)
    proxy.withhold_next_ack(topic)
    assert await eventually(lambda: _true(proxy.withheld > 0), timeout=30), "nothing was produced"
    # The relay now waits for that acknowledgement (one request in flight per broker), so the
    # topic holds still: let the consumers handle all of it, the withheld batch too.
    on_topic = {dict(r.headers)["ce_id"].decode()
                for r in await read_until_seen(proxy.bootstrap, topic, set(), at_least=1)}
    assert await eventually(lambda: _handled_all(probe, on_topic), timeout=30)
    proxy.crash()
    at_crash = burst.answered
    burst.release()
    assert await eventually(lambda: _true(burst.answered >= at_crash + burst.total // 4), timeout=60)
    assert await unpublished(intake_db) > 0  # the relay really could not publish meanwhile
    proxy.revive()
    await writes


async def test_a_broker_crash_mid_burst_delivers_every_event_once_in_effect_and_in_family_order(
        new_database, tmp_path: Path) -> None:
    families = 30
    proxy_port = free_port()
    tansu = TansuBroker(log_path=tmp_path / "tansu.log", advertised=f"127.0.0.1:{proxy_port}")
    proxy: CrashableProxy | None = None
    namespace = make_settings().topic_namespace
    try:
        tansu.start()
        proxy = CrashableProxy(tansu.bootstrap, proxy_port).start()
        broker = Broker(proxy.bootstrap, False)
        async with service_api(create_intake, service="intake", broker=broker, database_url=new_database(),
                               topic_namespace=namespace) as intake, \
                service_api(create_casework, service="casework", broker=broker, database_url=new_database(),
                            topic_namespace=namespace, relay_enabled=False) as casework, \
                probe_consumer(broker, namespace, new_database()) as probe:
            intake_db, casework_db = intake.app.state.engine, casework.app.state.engine  # type: ignore[attr-defined]
            topic = intake.settings.domain_topic()  # type: ignore[attr-defined]
            burst = Burst(intake, families, held=families // 2)  # the second half writes while it is down
            async with burst.running() as writes:
                await crash_and_revive_mid_burst(proxy, burst, writes, probe, intake_db, topic)
            assert not burst.failures, burst.failures  # the API never noticed the broker
            assert await eventually(lambda: _zero(unpublished(intake_db)), timeout=90)
            events = await outbox_rows(intake_db)
            assert len(events) == families * STEPS
            assert await eventually(lambda: _at_least(count(probe, inbox), len(events)), timeout=90)
            casework_handles = {model.event_type for model in CASEWORK.handlers}
            for_casework = {row.event_id for row in events if row.event_type in casework_handles}
            assert await eventually(lambda: _at_least(count(casework_db, inbox), len(for_casework)),
                                    timeout=90)
            records = await read_until_seen(proxy.bootstrap, topic, {row.event_id for row in events})
            async with probe.connect() as conn:
                ran = list(await conn.execute(select(ledger).order_by(ledger.c.seq)))
            async with casework_db.connect() as conn:
                statuses = Counter((await conn.execute(select(Family.__table__.c.status))).scalars())  # type: ignore[attr-defined]
                members = await conn.scalar(select(func.count()).select_from(FamilyMember.__table__))  # type: ignore[attr-defined]
                casework_handled = set((await conn.execute(select(inbox.c.event_id))).scalars())
                pending = Counter((await conn.execute(select(outbox.c.partition_key).where(
                    outbox.c.event_type.endswith(".makkerpar-pending.v1")))).scalars())
    finally:
        if proxy is not None:
            proxy.close()
        tansu.stop()

    order = defaultdict(list)  # per family, the events in commit order
    for row in events:
        order[row.partition_key].append(row.event_id)
    # On the topic: everything, the withheld batch more than once, each family in order.
    assert {dict(r.headers)["ce_id"].decode() for r in records} == {row.event_id for row in events}
    assert len(records) > len(events), "the crash left no duplicate on the topic"
    assert first_occurrences(records) == order
    # The probe's effects: each event's handler ran exactly once, each family's in order.
    assert Counter(r.event_id for r in ran) == Counter({row.event_id: 1 for row in events})
    ran_per_family = defaultdict(list)
    for r in ran:
        ran_per_family[r.family_id].append(r.event_id)
    assert ran_per_family == order
    # Casework's projection: each event it handles handled, every family enrolled once (one
    # announcement that it waits for a pair), grown once, and exited after it was enrolled.
    assert casework_handled == for_casework
    assert statuses == {"exited": families}
    assert members == 3 * families
    assert set(pending) == set(burst.family_ids) and set(pending.values()) == {1}


async def test_a_killed_memory_only_broker_gets_every_event_written_after_the_kill_in_family_order(
        new_database, tmp_path: Path) -> None:
    families = 20
    tansu = TansuBroker(log_path=tmp_path / "tansu.log")
    try:
        tansu.start()
        broker = Broker(tansu.bootstrap, False)
        async with service_api(create_intake, service="intake", broker=broker,
                               database_url=new_database()) as intake:
            engine = intake.app.state.engine  # type: ignore[attr-defined]
            burst = Burst(intake, families, held=families // 2)  # the second half writes after the kill

            async def some_published() -> bool:
                rows = await outbox_rows(engine)
                return burst.answered >= burst.total // 4 and any(r.published_at for r in rows)

            relay = intake.app.state.relay  # type: ignore[attr-defined]
            async with burst.running() as writes:
                assert await eventually(some_published, timeout=60)
                assert relay.last_error is None
                tansu.kill()
                at_kill = burst.answered
                last_before_kill = max(row.id for row in await outbox_rows(engine))
                burst.release()
                assert await eventually(lambda: _true(burst.answered >= at_kill + burst.total // 4),
                                        timeout=60)
                # The relay gives up on its producer after the producer's request timeout (10 s).
                assert await eventually(lambda: _true(relay.last_error is not None), timeout=60)
                tansu.start()
                await writes
            assert not burst.failures, burst.failures
            assert await eventually(lambda: _zero(unpublished(engine)), timeout=90)
            events = await outbox_rows(engine)
            after_kill = {row.event_id for row in events if row.id > last_before_kill}
            assert after_kill
            records = await read_until_seen(tansu.bootstrap, intake.settings.domain_topic(),  # type: ignore[attr-defined]
                                             after_kill)
    finally:
        tansu.stop()

    position = {row.event_id: row.id for row in events}
    on_topic = first_occurrences(records)
    assert set().union(*on_topic.values()) <= set(position)
    for ids in on_topic.values():
        assert [position[i] for i in ids] == sorted(position[i] for i in ids)


async def _handled_all(probe: AsyncEngine, ids: set[str]) -> bool:
    async with probe.connect() as conn:
        return ids <= set((await conn.execute(select(ledger.c.event_id))).scalars())


async def _true(value: bool) -> bool:
    return value


async def _zero(awaitable: Any) -> bool:
    return await awaitable == 0


async def _at_least(awaitable: Any, n: int) -> bool:
    return await awaitable >= n
