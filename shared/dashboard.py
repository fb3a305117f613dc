"""A minimal department dashboard: folds a department topic into one view per family.

It is the documented example for dashboard teams (docs/dashboards.md). Because the state is a
pure fold over the topic, replaying the topic from the beginning rebuilds it exactly.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from shared.departments import Department
from shared.events.envelope import Envelope
from shared.kafka import make_consumer
from shared.settings import Settings


@dataclass
class FamilyView:
    site_id: str | None = None
    events: int = 0
    last_event_type: str | None = None
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class DashboardState:
    """Per family: the site, how many events, and the latest payload of each event type."""

    families: dict[str, FamilyView] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def apply(self, envelope: Envelope) -> None:
        if envelope.id in self.seen:  # a redelivery changes nothing
            return
        self.seen.add(envelope.id)
        view = self.families.setdefault(str(envelope.data.get("family_id", envelope.key)), FamilyView())
        view.site_id = envelope.data.get("site_id", view.site_id)
        view.events += 1
        view.last_event_type = envelope.type
        view.latest[envelope.type] = envelope.data


async def replay(settings: Settings, department: Department, *, idle_seconds: float = 2.0) -> DashboardState:
    """Read the department topic from offset 0 in a fresh group until it is quiet."""
    consumer = make_consumer(settings, group_id=f"{settings.topic_namespace}.dashboard."
                             f"{department.value}.replay-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([settings.department_topic(department.value)])
    await consumer.start()
    state = DashboardState()
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < idle_seconds:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    state.apply(Envelope.from_kafka(record.key, record.value, record.headers))
                    quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return state
