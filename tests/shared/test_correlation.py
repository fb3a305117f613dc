"""A correlation id read from a Kafka header is passed on only in a safe shape.

Any producer can write an ``oto_correlation_id`` header; a consumer copies it into the events
its handlers write (and so into the headers of every department topic) and its log lines. A
CPR-shaped one is replaced by a fresh id; a safe one travels on unchanged.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from shared.events.envelope import Envelope
from shared.observability import is_safe_id
from shared.outbox import record_event
from shared.tables import outbox
from tests.shared.plumbing import ThingHappened, thing
from tests.shared.test_inbox import Harness, envelope_for, run_until
from tests.support import Broker

pytestmark = pytest.mark.broker


async def record_a_follow_up(session, event: ThingHappened, envelope: Envelope) -> None:
    await record_event(session, thing(uuid.uuid4(), event.seq + 100))


@pytest.mark.parametrize(("incoming", "kept"), [("0101901234", False), ("trace-010190-1234", False),
                                                ("trace-42.a_b", True)])
async def test_a_consumed_correlation_id_is_passed_on_only_when_safe(
        broker: Broker, database_url: str, incoming: str, kept: bool) -> None:
    async with Harness(broker, database_url, handler=record_a_follow_up) as h:
        await h.send(envelope_for(thing(uuid.uuid4(), 1), correlation_id=incoming))

        async def written() -> list[str | None]:
            async with h.sessionmaker() as session:
                return list((await session.execute(select(outbox.c.correlation_id))).scalars())

        passed_on = await run_until(h.consumer(), written)
    assert len(passed_on) == 1
    assert (passed_on[0] == incoming) is kept
    assert is_safe_id(passed_on[0])
