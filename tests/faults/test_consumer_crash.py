"""A consumer process SIGKILLed in the middle of a batch, and restarted, builds the same projection
as a clean rebuild — every event's effect exactly once.

The consumer is casework's real subscription (``services/casework/handlers.py``) running as an OS
process of its own (``tests/faults/consumer_runner.py``) on a PostgreSQL database migrated for
casework. A few thousand intake events are published (some of types casework skips). The process
is killed with SIGKILL — no shutdown hook, no final offset commit — at a moment when some of its
committed database work is not yet covered by a committed Kafka offset: those events are certain
to be delivered again after the restart, and only the inbox stands between them and a second
effect. (Whether a kill fell there is checked after it against the group's committed offsets;
if not, it is killed again.) Meanwhile a second process rebuilds the projection from offset 0 in
a new consumer group into a fresh database; the two must be equal.

The projection compared is every casework table (without the times the handlers ran at), the
events the handlers recorded in casework's outbox, and the inbox. A second run of a handler would
show: ``on_family_enrolled`` records a ``makkerpar-pending`` event each time it finds a family
without staff to pair it with, so handling the same enrolment twice leaves two such rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.casework.handlers import SUBSCRIPTION
from services.casework.models import metadata as casework_metadata
from shared import migrations
from shared.db import make_engine
from shared.events.envelope import Envelope
from shared.events.intake import (
    ConsentGiven,
    CriterionOutcome,
    FamilyEnrolled,
    FamilyExited,
    HouseholdScreened,
    Member,
    MemberAdded,
)
from shared.kafka import DEFAULT_PARTITIONS, ensure_topics
from shared.outbox import source_for
from shared.tables import inbox, outbox
from tests.faults.kafka_tools import committed_offsets, publish_all
from tests.support import Broker, eventually, make_settings

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = 600
#: A kill can fall where it proves nothing (everything done already committed as offsets).
MAX_KILLS = 6


def intake_events() -> list[Envelope]:
    """Per family: screened, consent given, enrolled, every second one a member added, every third
    one exited — 2,300 events in per-family order, of types casework handles and skips."""
    events: list[Any] = []
    for n in range(FAMILIES):
        family, site = uuid.uuid4(), ("gellerup", "viby", "tilst")[n % 3]
        events.append(HouseholdScreened(family_id=family, site_id=site, eligible=True,
                                        criteria=[CriterionOutcome(code="target_area", met=True)]))
        events.append(ConsentGiven(family_id=family, site_id=site, consent_id=uuid.uuid4(),
                                   person_id=uuid.uuid4(), departments=["sundhed-og-omsorg"],
                                   purposes=["coordinated_help"]))
        events.append(FamilyEnrolled(family_id=family, site_id=site, members=[
            Member(person_id=uuid.uuid4(), role="mother", birth_year=1985),
            Member(person_id=uuid.uuid4(), role="child", birth_year=2015)]))
        if n % 2 == 0:
            events.append(MemberAdded(family_id=family, site_id=site, member=Member(
                person_id=uuid.uuid4(), role="father", birth_year=1983)))
        if n % 3 == 0:
            events.append(FamilyExited(family_id=family, site_id=site, reason="moved_away"))
    return [Envelope(type=e.event_type, source=source_for("intake"), key=e.partition_key(),
                     data=e.model_dump(mode="json")) for e in events]


class Runner:
    """The consumer as an OS process: start, SIGKILL, SIGTERM."""

    def __init__(self, broker: Broker, namespace: str, database_url: str, group_suffix: str = "") -> None:
        self.args = [sys.executable, "-m", "tests.faults.consumer_runner", "--bootstrap", broker.bootstrap,
                     "--idempotence", str(broker.idempotence).lower(), "--namespace", namespace,
                     "--database-url", database_url, "--group-suffix", group_suffix]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> int:
        """SIGTERM, the graceful path; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


async def handled_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(inbox.c.event_id))).scalars())


async def handled_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(inbox))).scalar_one())


def _stable(column: Column[Any]) -> bool:
    """Not a time the handler ran at (those differ between any two runs)."""
    try:
        return column.type.python_type is not datetime
    except NotImplementedError:
        return True


async def projection(engine: AsyncEngine) -> dict[str, Any]:
    """Every casework table as a sorted list of rows (without handling times), the events the
    handlers recorded (without their generated ids) and the inbox: what a handler run leaves."""
    found: dict[str, Any] = {}
    async with engine.connect() as conn:
        for table in casework_metadata.sorted_tables:
            columns = [c for c in table.columns if _stable(c)]
            found[table.name] = sorted(repr(tuple(row)) for row in await conn.execute(select(*columns)))
        found["effects"] = sorted((r.event_type, r.partition_key, repr(sorted(r.payload.items())))
                                  for r in await conn.execute(select(outbox)))
        found["inbox"] = sorted((r.consumer, r.source, r.event_id, r.event_type)
                                for r in await conn.execute(select(inbox)))
    return found


async def test_a_consumer_killed_mid_batch_and_restarted_builds_what_a_clean_rebuild_builds(
        broker: Broker, new_database) -> None:
    settings = make_settings(broker=broker)
    namespace, topic = settings.topic_namespace, settings.domain_topic("intake")
    group = f"{namespace}.casework"
    crashed_url, rebuilt_url = new_database(), new_database()
    for url in (crashed_url, rebuilt_url):
        await migrations.upgrade("casework", url)
    events = intake_events()
    handled_types = {model.event_type for model in SUBSCRIPTION.handled()}
    expected = sorted((group, e.source, e.id, e.type) for e in events if e.type in handled_types)
    handled = len(expected)
    assert len(events) > handled > FAMILIES  # some skipped, and more than one kind handled
    await ensure_topics(settings, [topic, f"{topic}.dlq"])
    landed = await publish_all(broker.bootstrap, topic, events)

    async def redelivery_due() -> list[str]:
        """Events whose effect is committed but whose offset is not: they will come again."""
        done = await handled_ids(crashed)
        committed = await committed_offsets(broker.bootstrap, group, topic, DEFAULT_PARTITIONS)
        return [i for i in done if landed[i][1] >= committed[landed[i][0]]]

    crashed, rebuilt = make_engine(crashed_url), make_engine(rebuilt_url)
    runner = Runner(broker, namespace, crashed_url)
    rebuild = Runner(broker, namespace, rebuilt_url, group_suffix=".rebuild")
    due: list[str] = []
    try:
        runner.start()
        rebuild.start()
        for _ in range(MAX_KILLS):
            before = await handled_count(crashed)

            async def mid_batch(before: int = before) -> bool:
                return before < await handled_count(crashed) < handled and bool(await redelivery_due())

            assert await eventually(mid_batch, timeout=90, interval=0.02), \
                "the consumer finished before it could be killed mid-batch: publish more events"
            runner.kill()
            due = await redelivery_due()
            runner.start()
            if due:
                break
        assert due, "no kill left handled events without a committed offset"

        async def all_handled(engine: AsyncEngine) -> bool:
            return await handled_count(engine) >= handled

        assert await eventually(lambda: all_handled(crashed), timeout=120, interval=0.2)
        assert await eventually(lambda: all_handled(rebuilt), timeout=120, interval=0.2)
        assert runner.terminate() == 0
        assert rebuild.terminate() == 0
        after_crash, clean = await projection(crashed), await projection(rebuilt)
    finally:
        runner.cleanup()
        rebuild.cleanup()
        await crashed.dispose()
        await rebuilt.dispose()

    assert after_crash == clean
    # …and the clean rebuild handled every event casework handles exactly once, with effects that
    # a second run would repeat (an enrolment of a family without a pair announces it is pending).
    assert clean["inbox"] == expected
    assert len(clean["families"]) == FAMILIES
    assert len(clean["family_members"]) == 2 * FAMILIES + len(range(0, FAMILIES, 2))
    assert {key for _, key, _ in clean["effects"]} == {e.key for e in events}
