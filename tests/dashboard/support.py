"""Helpers for the dashboard tests: department events as the relay publishes them, a served dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from dashboard.app import create_app
from shared.broker import free_port
from shared.departments import Department
from shared.events import casework as cw
from shared.events import finance as fin
from shared.events import intake as it
from shared.events import referrals as rf
from shared.events.envelope import Envelope
from shared.events.registry import DomainEvent
from shared.kafka import ensure_topics
from shared.outbox import source_for
from shared.settings import Settings
from shared.slices import default_policy
from tests.support import Broker, bearer

HEALTH = Department.HEALTH_AND_CARE
CULTURE = Department.CULTURE_AND_CITIZEN_SERVICES


def envelope_of(event: DomainEvent, *, at: datetime | None = None) -> Envelope:
    from shared.events.registry import REGISTRY

    service = REGISTRY.spec(event.event_type).service
    return Envelope(type=event.event_type, source=source_for(service), key=event.partition_key(),
                    data=event.model_dump(mode="json"), time=at or datetime.now(UTC))


async def publish(settings: Settings, broker: Broker, events: list[DomainEvent | Envelope]) -> list[Envelope]:
    """Project each event through the slice policy onto the department topics, as the relay does."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await ensure_topics(settings, [settings.department_topic(d.value) for d in Department])
    await producer.start()
    sent = []
    try:
        for item in events:
            envelope = item if isinstance(item, Envelope) else envelope_of(item)
            sent.append(envelope)
            for department, projected in default_policy().project(envelope):
                await producer.send_and_wait(settings.department_topic(department.value), projected.value(),
                                             key=projected.key_bytes(), headers=projected.headers())
    finally:
        await producer.stop()
    return sent


def enrolled(family: uuid.UUID, *, site: str = "gellerup", shared_with: tuple[Department, ...] = (HEALTH,),
             birth_years: tuple[int, int] = (1985, 2015)) -> list[DomainEvent]:
    mother, child = uuid.uuid4(), uuid.uuid4()
    departments = [d.value for d in shared_with]
    return [
        it.ConsentGiven(family_id=family, site_id=site, consent_id=uuid.uuid4(), person_id=mother,
                        departments=departments, purposes=["coordinated_help"], person_role="mother",
                        covered_after=departments),  # type: ignore[arg-type]
        it.FamilyEnrolled(family_id=family, site_id=site, shared_with=departments, members=[  # type: ignore[arg-type]
            it.Member(person_id=mother, role="mother", birth_year=birth_years[0]),
            it.Member(person_id=child, role="child", birth_year=birth_years[1])]),
    ]


def referral(family: uuid.UUID, *, due_in: timedelta, site: str = "gellerup",
             department: Department = HEALTH, offer: str = "physical-rehabilitation") -> DomainEvent:
    now = datetime.now(UTC)
    return rf.ReferralSent(family_id=family, site_id=site, referral_id=uuid.uuid4(), offer_code=offer,
                           target_department=department.value, priority="routine", state="sent",
                           at=now - timedelta(days=20), due_at=now + due_in, received_by=department.value)


def revoked(family: uuid.UUID, *, site: str = "gellerup", department: Department = HEALTH) -> DomainEvent:
    return it.ConsentRevoked(family_id=family, site_id=site, consent_id=uuid.uuid4(), person_id=uuid.uuid4(),
                             departments=[department.value], covered_after=[])  # type: ignore[list-item]


def site_events(department: Department = HEALTH, site: str = "gellerup") -> list[DomainEvent]:
    return [
        cw.StaffStationed(stationing_id=uuid.uuid4(), staff_id=uuid.uuid4(), site_id=site,
                          department=department.value, discipline="health_visitor", role="staff",
                          fte=Decimal("0.5"), starts_on=date(2026, 1, 1)),
        fin.AllocationComputed(site_id=site, year=2026, department=department.value, amount_ore=123_456_78,
                               fte_days="182.5"),
        fin.SettlementIssued(site_id=site, year=2026, department=department.value, entry_id=uuid.uuid4(),
                             period_start=date(2026, 1, 1), period_end=date(2026, 3, 31),
                             amount_ore=30_864_20),
    ]


def dashboard_settings(base: Settings, tmp_path: Path) -> Settings:
    return base.model_copy(update={"data_dir": tmp_path, "relay_enabled": False})


def staff_headers(settings: Settings, department: Department) -> dict[str, str]:
    return bearer(settings, "department_staff", department=department.value)


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Serve an app on a loopback port in this loop (a browser needs a real socket)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           timeout_graceful_shutdown=1, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def new_dashboard(settings: Settings, department: Department, state: Path) -> FastAPI:
    return create_app(settings, department, state)


def for_department(events: list[DomainEvent], department: Department = HEALTH) -> int:
    """How many of these events the slice policy puts on the department's topic."""
    return sum(1 for e in events for d, _ in default_policy().project(envelope_of(e)) if d is department)


async def caught_up(app: FastAPI, expected: int) -> None:
    """Wait until the dashboard's consumer has been through ``expected`` events (repeats count)."""
    from tests.support import eventually

    async def done() -> bool:
        return bool(app.state.consumer.handled >= expected)
    assert await eventually(done, timeout=30), (app.state.consumer.handled, expected)
