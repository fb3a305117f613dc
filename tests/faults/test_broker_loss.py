"""A memory-only broker is SIGKILLed in the middle of a burst of writes and restarted on the same
port at once: it comes back empty. The relays notice that their incarnation markers are gone and
re-publish their kept outboxes in order, so every event ever committed reaches every consumer
(their projections) and every department topic again — once in effect, in order per family.

This is the recovery ``tests/faults/test_broker_crash.py`` could not promise: there, a restarted
tansu lost what it had acknowledged and nothing replayed it. The broker is restarted without
waiting for the relay to notice the outage, so the relay cannot rely on its producer failing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.casework.app import create_app as create_casework
from services.casework.handlers import SUBSCRIPTION as CASEWORK
from services.casework.models import Family
from services.intake.app import create_app as create_intake
from shared.broker import TansuBroker
from shared.departments import Department
from shared.outbox import row_to_envelope
from shared.slices import default_policy
from shared.tables import inbox, outbox
from tests.faults.kafka_tools import read_until_seen
from tests.faults.test_broker_crash import (
    Burst,
    _at_least,
    _true,
    _zero,
    count,
    first_occurrences,
    ledger,
    outbox_rows,
    probe_consumer,
    unpublished,
)
from tests.support import Broker, eventually, make_settings, service_api

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.slow]


async def full_outbox(engine: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(select(outbox).order_by(outbox.c.id)))


def department_copies(rows: list[Any], department: Department) -> list[str]:
    """The ids, in outbox order, of the events the slice policy sends to ``department``."""
    policy = default_policy()
    return [row.event_id for row in rows
            if any(d is department for d, _ in policy.project(row_to_envelope(row)))]


async def test_a_killed_broker_restarted_empty_gets_every_committed_event_again_in_family_order(
        new_database, tmp_path: Path) -> None:
    families = 12
    tansu = TansuBroker(log_path=tmp_path / "tansu.log")
    namespace = make_settings().topic_namespace
    try:
        tansu.start()
        broker = Broker(tansu.bootstrap, False)
        async with service_api(create_intake, service="intake", broker=broker, database_url=new_database(),
                               topic_namespace=namespace) as intake, \
                service_api(create_casework, service="casework", broker=broker,
                            database_url=new_database(), topic_namespace=namespace) as casework, \
                probe_consumer(broker, namespace, new_database()) as probe:
            intake_db, casework_db = intake.app.state.engine, casework.app.state.engine  # type: ignore[attr-defined]
            burst = Burst(intake, families, held=families // 2)  # the second half writes after the kill

            async def some_handled() -> bool:
                return burst.answered >= burst.total // 4 and await count(probe, inbox) > 0

            async with burst.running() as writes:
                assert await eventually(some_handled, timeout=60)
                tansu.kill()
                at_kill = burst.answered
                burst.release()
                assert await eventually(lambda: _true(burst.answered >= at_kill + burst.total // 4),
                                        timeout=60)
                tansu.start()  # same port, empty, at once
                await writes
            assert not burst.failures, burst.failures
            assert await eventually(lambda: _zero(unpublished(intake_db)), timeout=90)
            events = await outbox_rows(intake_db)
            assert len(events) == burst.total
            assert await eventually(lambda: _at_least(count(probe, inbox), len(events)), timeout=90)
            casework_handles = {model.event_type for model in CASEWORK.handlers}
            for_casework = {row.event_id for row in events if row.event_type in casework_handles}
            assert await eventually(lambda: _at_least(count(casework_db, inbox), len(for_casework)),
                                    timeout=90)
            assert await eventually(lambda: _zero(unpublished(casework_db)), timeout=90)
            settings = intake.settings  # type: ignore[attr-defined]
            on_domain = await read_until_seen(tansu.bootstrap, settings.domain_topic(),
                                              {row.event_id for row in events}, timeout=60)
            copies, on_department = {}, {}
            for department in Department:
                copies[department] = set(department_copies(await full_outbox(intake_db), department)
                                         + department_copies(await full_outbox(casework_db), department))
                on_department[department] = await read_until_seen(
                    tansu.bootstrap, settings.department_topic(department.value), copies[department],
                    timeout=60)
            async with probe.connect() as conn:
                ran = list(await conn.execute(select(ledger).order_by(ledger.c.seq)))
            async with casework_db.connect() as conn:
                statuses = Counter((await conn.execute(select(Family.__table__.c.status))).scalars())  # type: ignore[attr-defined]
                casework_handled = set((await conn.execute(select(inbox.c.event_id))).scalars())
            requeued = intake.app.state.relay.requeued_total  # type: ignore[attr-defined]
    finally:
        tansu.stop()

    order = defaultdict(list)  # per family, the events in commit order
    for row in events:
        order[row.partition_key].append(row.event_id)
    assert requeued > 0, "the relay never noticed that the broker had lost its events"
    # The restarted broker has the whole history again, each family in commit order.
    assert first_occurrences(on_domain) == order
    assert copies[Department.HEALTH_AND_CARE], "the burst sent nothing to a department"
    for department in Department:  # every department topic has its whole slice again
        assert {dict(r.headers)["ce_id"].decode() for r in on_department[department]} == copies[department]
    # Every consumer's effects: each event once, each family's in order.
    assert Counter(r.event_id for r in ran) == Counter({row.event_id: 1 for row in events})
    ran_per_family = defaultdict(list)
    for r in ran:
        ran_per_family[r.family_id].append(r.event_id)
    assert ran_per_family == order
    assert casework_handled >= for_casework
    assert statuses == {"exited": families}
