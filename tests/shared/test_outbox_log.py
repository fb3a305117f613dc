"""The outbox as the durable log: retention prunes only old published rows, and ``oto republish``
queues a period again for the relay (disaster recovery on a real cluster)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from shared.cli import app as oto
from shared.db import make_engine
from shared.events.envelope import Envelope
from shared.tables import outbox
from tests.shared.plumbing import create_tables, thing
from tests.shared.test_outbox import _setup
from tests.support import Broker, eventually, make_settings

NOW = datetime.now(UTC)


def row(seq: int, *, occurred: datetime, published: datetime | None) -> dict[str, object]:
    event = thing(uuid.uuid4(), seq)
    envelope = Envelope(type=event.event_type, source="/oto/testkit", key=str(event.family_id),
                        data=event.model_dump(mode="json"))
    return {"event_id": envelope.id, "event_type": envelope.type, "source": envelope.source,
            "partition_key": envelope.key, "occurred_at": occurred, "payload": envelope.data,
            "published_at": published}


@pytest.mark.broker
async def test_retention_deletes_only_published_rows_older_than_the_setting(
        broker: Broker, database_url: str) -> None:
    settings = make_settings(broker=broker, database_url=database_url, outbox_retention_days=7)
    engine, relay, _ = await _setup(settings)
    old_published = row(1, occurred=NOW - timedelta(days=10), published=NOW - timedelta(days=10))
    recent = row(2, occurred=NOW - timedelta(days=1), published=NOW - timedelta(days=1))
    old_unpublished = row(3, occurred=NOW - timedelta(days=10), published=None)
    async with engine.begin() as conn:
        await conn.execute(outbox.insert(), [old_published, recent, old_unpublished])
    task = asyncio.create_task(relay.run())
    try:
        assert await eventually(lambda: _ids_are(engine, {recent["event_id"], old_unpublished["event_id"]}))
    finally:
        await relay.stop()
        await task
        await engine.dispose()


def test_oto_republish_queues_the_rows_since_a_time_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"
    before = row(1, occurred=NOW - timedelta(days=3), published=NOW - timedelta(days=3))
    after = row(2, occurred=NOW - timedelta(hours=1), published=NOW - timedelta(hours=1))

    async def prepare() -> None:
        engine = make_engine(url)
        await create_tables(engine)
        async with engine.begin() as conn:
            await conn.execute(outbox.insert(), [before, after])
        await engine.dispose()

    asyncio.run(prepare())
    monkeypatch.setenv("OTO_DATABASE_URL", url)
    since = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    result = CliRunner().invoke(oto, ["republish", "intake", "--since", since])
    assert result.exit_code == 0, result.output
    assert "1 events queued" in result.output

    async def state() -> dict[str, tuple[bool, bool]]:
        engine = make_engine(url)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(outbox.c.event_id, outbox.c.published_at,
                                              outbox.c.requeued_at))).all()
        await engine.dispose()
        return {r.event_id: (r.published_at is None, r.requeued_at is not None) for r in rows}

    assert asyncio.run(state()) == {before["event_id"]: (False, False), after["event_id"]: (True, True)}


async def _ids_are(engine, expected: set[object]) -> bool:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return set((await conn.execute(select(outbox.c.event_id))).scalars()) == expected


@pytest.mark.broker
async def test_a_restarted_relay_on_a_broker_that_kept_everything_republishes_nothing(
        broker: Broker, database_url: str) -> None:
    settings = make_settings(broker=broker, database_url=database_url)
    engine, first, _ = await _setup(settings)
    async with engine.begin() as conn:
        await conn.execute(outbox.insert(), [row(1, occurred=NOW, published=None)])
    try:
        for relay in (first, (await _setup(settings))[1]):  # the second as after a restart
            task = asyncio.create_task(relay.run())
            assert await eventually(lambda: _all_published(engine))
            assert await eventually(lambda: _true(relay._check_due > 0))  # noqa: B023
            await relay.stop()
            await task
            assert relay.requeued_total == 0
    finally:
        await engine.dispose()


async def _all_published(engine) -> bool:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return not (await conn.execute(select(outbox.c.id).where(outbox.c.published_at.is_(None)))).first()


async def _true(value: bool) -> bool:
    return value


def test_oto_outbox_lists_retries_and_discards_parked_events_with_an_audit_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from shared.tables import audit_log

    url = f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"
    retried, discarded = (row(n, occurred=NOW, published=None) for n in (1, 2))

    async def prepare() -> None:
        engine = make_engine(url)
        await create_tables(engine)
        async with engine.begin() as conn:
            await conn.execute(outbox.insert(), [{**r, "parked_at": NOW, "parked_reason": "x"}
                                                 for r in (retried, discarded)])
        await engine.dispose()

    asyncio.run(prepare())
    monkeypatch.setenv("OTO_DATABASE_URL", url)
    cli = CliRunner()
    listed = cli.invoke(oto, ["outbox", "parked", "intake"])
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["event_id"] for line in listed.output.splitlines()] == [
        retried["event_id"], discarded["event_id"]]
    assert cli.invoke(oto, ["outbox", "retry", "intake", str(retried["event_id"])]).exit_code == 0
    assert cli.invoke(oto, ["outbox", "discard", "intake", str(discarded["event_id"])]).exit_code == 0
    assert cli.invoke(oto, ["outbox", "parked", "intake"]).output == ""

    async def state() -> tuple[list[tuple[bool, bool]], list[str]]:
        engine = make_engine(url)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(outbox.c.parked_at, outbox.c.discarded_at)
                                       .order_by(outbox.c.id))).all()
            audited = list((await conn.execute(select(audit_log.c.purpose))).scalars())
        await engine.dispose()
        return [(r.parked_at is None, r.discarded_at is None) for r in rows], audited

    rows, audited = asyncio.run(state())
    assert rows == [(True, True), (False, False)]  # retried: queued again; discarded: kept, never sent
    assert [a.split(" (")[0] for a in audited] == [f"discard parked event {discarded['event_id']}"]
