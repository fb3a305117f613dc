"""The inbox's batch handler form does what the per-event form does: same rows, same order, same
dedupe, and poison still reaches the DLQ while the rest of its batch commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import Integer, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import insert_rows
from shared.events import FamilyEvent, event
from shared.events.envelope import Envelope
from shared.inbox import BatchHandler, EventConsumer, Handler, Subscription
from tests.shared.plumbing import ThingHappened, effects, thing, things
from tests.shared.test_inbox import Harness, envelope_for, fail_on_seq_13, record_effect, run_until
from tests.support import Broker, read_topic

pytestmark = pytest.mark.broker


@event("batchkit", "thing-counted")
class ThingCounted(FamilyEvent):
    """Test only: records how many effects its family had when it was handled (order probe)."""

    seq: int


async def record_effects(session: AsyncSession, batch: Sequence[tuple[ThingHappened, Envelope]]) -> None:
    """The batch form of ``record_effect``: one statement for the run."""
    await insert_rows(session, effects, [{"event_id": envelope.id, "family_id": str(event.family_id),
                                          "seq": event.seq} for event, envelope in batch])


async def fail_batch_on_seq_13(session: AsyncSession,
                               batch: Sequence[tuple[ThingHappened, Envelope]]) -> None:
    if any(event.seq == 13 for event, _ in batch):
        raise RuntimeError("handler cannot handle 13")
    await record_effects(session, batch)


async def count_effects(session: AsyncSession, event: ThingCounted, envelope: Envelope) -> None:
    """Per-event, and it reads: it sees exactly the effects written before it in the stream."""
    seen = (await session.execute(select(func.count()).select_from(effects).where(
        effects.c.family_id == str(event.family_id)))).scalar_one()
    await session.execute(effects.insert().values(event_id=envelope.id, family_id=str(event.family_id),
                                                  seq=1000 + seen))


def counted(family: uuid.UUID, seq: int) -> Envelope:
    payload = ThingCounted(family_id=family, site_id="gellerup", seq=seq)
    return envelope_for(thing(family, seq), type=ThingCounted.event_type,
                        data=payload.model_dump(mode="json"))


def consumer_for(h: Harness, name: str, *, things_handler: Handler | None = None,
                 things_batch: BatchHandler | None = None) -> EventConsumer:
    handlers: dict = {ThingCounted: count_effects}
    batch: dict = {}
    if things_handler is not None:
        handlers[ThingHappened] = things_handler
    if things_batch is not None:
        batch[ThingHappened] = things_batch
    subscription = Subscription(name, ("testkit",), handlers, batch_handlers=batch)
    return EventConsumer(settings=h.settings, subscription=subscription, sessionmaker=h.sessionmaker,
                         retry_delay=0.01)


async def rows(h: Harness) -> list[tuple[str, str, int]]:
    async with h.sessionmaker() as session:
        result = await session.execute(select(effects.c.event_id, effects.c.family_id, effects.c.seq))
        return sorted((r.event_id, r.family_id, r.seq) for r in result)


async def clear(h: Harness) -> None:
    async with h.sessionmaker() as session:
        await session.execute(effects.delete())
        await session.commit()


async def written(h: Harness, n: int) -> bool:
    return len(await rows(h)) >= n


async def handled(consumer: EventConsumer, n: int) -> bool:
    return consumer.handled >= n


async def test_the_batch_form_writes_what_the_per_event_form_writes_in_the_same_order(
        broker: Broker, database_url: str) -> None:
    async with Harness(broker, database_url) as h:
        family, other = uuid.uuid4(), uuid.uuid4()
        stream = [envelope_for(thing(family, seq)) for seq in range(1, 4)]
        stream.append(counted(family, 4))  # sees 3 effects: the run before it was written first
        stream += [envelope_for(thing(family, seq)) for seq in range(5, 8)]
        stream.append(stream[0])  # a redelivery inside the stream
        stream.append(counted(family, 9))  # sees 7 (its own kind writes a row too)
        stream += [envelope_for(thing(other, seq)) for seq in range(20)]  # another key, maybe a partition
        stream.append(stream[-1])
        for envelope in stream:
            await h.send(envelope)
        unique = len({e.id for e in stream})

        per_event = consumer_for(h, "per-event", things_handler=record_effect)
        await run_until(per_event, lambda: written(h, unique))  # one row per distinct event
        expected = await rows(h)
        await clear(h)
        batched = consumer_for(h, "batched", things_batch=record_effects)
        await run_until(batched, lambda: written(h, unique))
        assert await rows(h) == expected
        seqs = sorted(seq for _, fam, seq in expected if fam == str(family))
        assert seqs == [1, 2, 3, 5, 6, 7, 1003, 1007]  # each saw exactly the rows before it

        replay = consumer_for(h, "batched", things_batch=record_effects)
        replay.group_id += ".replay"  # from offset 0 again: every event is a duplicate now
        await run_until(replay, lambda: handled(replay, len(stream)))  # duplicates count as seen
        assert await rows(h) == expected


async def test_a_poison_message_in_a_batch_goes_to_the_dlq_and_the_rest_commits(
        broker: Broker, database_url: str) -> None:
    async with Harness(broker, database_url) as h:
        family = uuid.uuid4()  # one key: one partition, one batch
        for seq in range(10, 17):
            await h.send(envelope_for(thing(family, seq)))
        per_event = consumer_for(h, "per-event", things_handler=fail_on_seq_13)
        await run_until(per_event, lambda: handled(per_event, 6))  # 13 is dead-lettered before 14
        expected = await rows(h)
        await clear(h)
        batched = consumer_for(h, "batched", things_batch=fail_batch_on_seq_13)
        await run_until(batched, lambda: handled(batched, 6))
        assert await rows(h) == expected
        assert sorted(seq for *_, seq in expected) == [10, 11, 12, 14, 15, 16]
        dead = await read_topic(broker.bootstrap, f"{h.topic}.dlq", expected=2)
    assert [dict(r.headers)["dlq_error"].decode() for r in dead] == ["RuntimeError", "RuntimeError"]
    consumers = {dict(r.headers)["dlq_consumer"].decode().rsplit(".", 1)[1] for r in dead}
    assert consumers == {"per-event", "batched"}


async def test_insert_rows_merges_a_key_as_one_statement_per_row_would(database_url: str) -> None:
    from shared.db import make_engine, make_sessionmaker
    from tests.shared.plumbing import create_tables

    engine = make_engine(database_url)
    try:
        await create_tables(engine)
        async with make_sessionmaker(engine)() as session:
            written = await insert_rows(session, things, [
                {"id": "a", "family_id": "first", "seq": 1}, {"id": "a", "family_id": "second", "seq": 2},
                {"id": "b", "family_id": "only", "seq": 3}], update=("seq",), returning=("id",))
            assert sorted(written) == [("a",), ("b",)]
            await insert_rows(session, things, [{"id": "a", "family_id": "third", "seq": 4}], update=("seq",))
            ignored = await insert_rows(session, things, [
                {"id": "b", "family_id": "ignored", "seq": 9}, {"id": "c", "family_id": "new", "seq": 5},
                {"id": "c", "family_id": "twice", "seq": 6}], returning=("id", "family_id"))
            assert ignored == [("c", "new")]
            await session.commit()
            result = await session.execute(select(things.c.id, things.c.family_id, things.c.seq))
            assert sorted(tuple(r) for r in result) == [("a", "first", 4), ("b", "only", 3), ("c", "new", 5)]
    finally:
        await engine.dispose()


class OrmBase(DeclarativeBase):
    """An ORM-mapped table of the test's own: per-event handlers in the services' style."""


class Counter(OrmBase):
    __tablename__ = "batch_counters"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)


async def add_counter(session: AsyncSession, event: ThingHappened, envelope: Envelope) -> None:
    """Pending, not flushed: the unit of work would insert it only at the commit."""
    session.add(Counter(id=str(event.family_id), seq=event.seq))


async def upsert_counters(session: AsyncSession, batch: Sequence[tuple[ThingCounted, Envelope]]) -> None:
    await insert_rows(session, Counter.__table__, [{"id": str(e.family_id), "seq": e.seq} for e, _ in batch],
                      update=("seq",))


async def copy_counter(session: AsyncSession, event: ThingHappened, envelope: Envelope) -> None:
    """Reads through the identity map: it must see the batch handler's write."""
    counter = await session.get(Counter, str(event.family_id))
    assert counter is not None
    await session.execute(effects.insert().values(event_id=envelope.id, family_id=counter.id,
                                                  seq=counter.seq))


async def test_per_event_orm_handlers_around_a_batch_run_see_what_one_by_one_handling_would(
        database_url: str) -> None:
    """The pending ORM row is flushed before the batch statement (else the commit would insert it
    twice) and the batch's write is what a later ``session.get`` returns (else it would be stale)."""
    from shared.db import make_engine, make_sessionmaker
    from shared.inbox import _Prepared
    from tests.shared.plumbing import create_tables
    from tests.support import make_settings

    engine = make_engine(database_url)
    try:
        await create_tables(engine)
        async with engine.begin() as conn:
            await conn.run_sync(OrmBase.metadata.create_all)
        family = uuid.uuid4()
        subscription = Subscription("orm", ("testkit",), {ThingHappened: add_counter},
                                    batch_handlers={ThingCounted: upsert_counters})
        consumer = EventConsumer(settings=make_settings(database_url=database_url), subscription=subscription,
                                 sessionmaker=make_sessionmaker(engine))
        first, then = envelope_for(thing(family, 1)), counted(family, 2)
        last = envelope_for(thing(family, 3))
        items = [_Prepared(None, first, thing(family, 1), add_counter, None),
                 _Prepared(None, then, ThingCounted(family_id=family, site_id="gellerup", seq=2), None,
                           upsert_counters),
                 _Prepared(None, last, thing(family, 3), copy_counter, None)]
        assert await consumer._apply_batch(items) == ["handled"] * 3
        async with make_sessionmaker(engine)() as session:
            assert (await session.get(Counter, str(family))).seq == 2  # type: ignore[union-attr]
            copied = (await session.execute(select(effects.c.seq))).scalars().all()
        assert copied == [2]
    finally:
        await engine.dispose()
