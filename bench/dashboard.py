"""Department dashboard: rebuild from the topic and first page render, with 10,000 families.

The department topic (Sundhed og Omsorg's) holds what the relay would put there for 10,000
families: a consent and an enrolment each, a makkerpar for each, and a referral for every
fourth family (a quarter of those overdue): 32,500 slice events, 3 partitions. The system is the
reference dashboard (``dashboard``: the inbox's consumer, SQLite state, the web app served by
uvicorn); it folds the topic into a fresh state file, then serves ``/familier``. The baseline is a
plain fold of the same topic without the web layer or a database: ``shared.dashboard``'s
in-memory ``DashboardState`` fed by a plain aiokafka consumer. Both count from the moment their
consumer starts (tansu holds a new group's join for a few seconds, the same for both) until the
last event is folded. Render times are over HTTP on loopback, server and client in one process.

``python -m bench --only dashboard``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.kafka_support import tansu_broker, unique_name, work_dir
from bench.report import Figure, Section
from shared.auth import mint_token
from shared.broker import free_port
from shared.dashboard import DashboardState
from shared.departments import Department
from shared.events import casework as cw
from shared.events import intake as it
from shared.events import referrals as rf
from shared.events.envelope import Envelope
from shared.kafka import client_options, ensure_topics
from shared.outbox import source_for
from shared.settings import Settings
from shared.slices import default_policy

FAMILIES, QUICK_FAMILIES = 10_000, 1_000
DEPARTMENT = Department.HEALTH_AND_CARE
SITES = ("gellerup", "bispehaven", "viby", "tilst")
RENDER_GOAL_MS = 300.0
REBUILD_GOAL_S = 30.0
LIVE_GOAL_MS = 1000.0
LIVE_SAMPLES = 10


def run(*, quick: bool) -> list[Section]:
    families = QUICK_FAMILIES if quick else FAMILIES
    with work_dir("oto-bench-dashboard-") as work, tansu_broker(work) as broker:
        settings = Settings(kafka_bootstrap=broker.bootstrap, kafka_idempotence=False,
                            topic_namespace=unique_name("bench"), log_json=False, log_level="WARNING",
                            data_dir=work)
        count = asyncio.run(_produce(settings, families))
        baseline_s = asyncio.run(_plain_fold(settings, count))
        rebuild_s, first_ms, warm_ms, family_ms, live_ms = asyncio.run(_dashboard(settings, count, work))
    return [Section(
        title="Department dashboard (10,000 families)" if not quick else "Department dashboard (quick)",
        setup=(f"{families:,} families on Sundhed og Omsorg's topic: {count:,} slice events (consent, "
               "enrolment and makkerpar per family, a referral for every fourth). System: the reference "
               "dashboard folding into a fresh SQLite file through the inbox, then serving the pages. "
               "Baseline: a plain in-memory fold of the same topic (`shared.dashboard.DashboardState`) "
               "with no web layer and no database."),
        figures=[
            Figure("rebuild from offset 0", "s", rebuild_s, baseline_s, goal=f"< {REBUILD_GOAL_S:.0f} s",
                   met=rebuild_s < REBUILD_GOAL_S),
            Figure("first page render (/familier, cold)", "ms", first_ms, None,
                   goal=f"< {RENDER_GOAL_MS:.0f} ms", met=first_ms < RENDER_GOAL_MS),
            Figure("page render (/familier, median of 20)", "ms", warm_ms, None,
                   goal=f"< {RENDER_GOAL_MS:.0f} ms", met=warm_ms < RENDER_GOAL_MS),
            Figure("family page (timeline, median of 20)", "ms", family_ms, None,
                   goal=f"< {RENDER_GOAL_MS:.0f} ms", met=family_ms < RENDER_GOAL_MS),
            Figure(f"live: event sent → SSE `changed`, worst of {LIVE_SAMPLES}", "ms", max(live_ms), None,
                   goal=f"< {LIVE_GOAL_MS:.0f} ms", met=max(live_ms) < LIVE_GOAL_MS),
            Figure(f"live: event sent → SSE `changed`, median of {LIVE_SAMPLES}", "ms",
                   statistics.median(live_ms), None),
        ],
        notes=["Both rebuild times include the broker's join of a new consumer group (a few seconds on "
               "tansu), so the ratio understates the fold's own cost ratio.",
               "Live: on tansu a fetch with nothing to return waits out `fetch_max_wait_ms` (500 ms), "
               "so the live figure is mostly that wait; the browser's own fetch of the page adds a "
               "render (tens of ms).",
               "The page shows 50 families a page; the count and the site filter are SQL over indexed "
               "columns, so render time does not grow with the number of families folded."])]


def _events(family: uuid.UUID, index: int) -> list[Any]:
    site = SITES[index % len(SITES)]
    mother, child = uuid.uuid4(), uuid.uuid4()
    departments = [d.value for d in Department]
    now = datetime.now(UTC)
    events: list[Any] = [
        it.ConsentGiven(family_id=family, site_id=site, consent_id=uuid.uuid4(), person_id=mother,
                        departments=departments, purposes=["coordinated_help"], covered_after=departments),
        it.FamilyEnrolled(family_id=family, site_id=site, shared_with=departments, members=[
            it.Member(person_id=mother, role="mother", birth_year=1980 + index % 20),
            it.Member(person_id=child, role="child", birth_year=2010 + index % 12)]),
        cw.MakkerparAssigned(family_id=family, site_id=site, shared_with=departments,
                             **_makkerpar_fields()),
    ]
    if index % 4 == 0:
        events.append(rf.ReferralSent(
            family_id=family, site_id=site, referral_id=uuid.uuid4(), offer_code="physical-rehabilitation",
            target_department=DEPARTMENT.value, priority="routine", state="sent", at=now - timedelta(days=20),
            due_at=now + timedelta(days=-2 if index % 16 == 0 else 10)))
    return events


def _makkerpar_fields() -> dict[str, Any]:
    example = dict(cw.MakkerparAssigned.model_config["json_schema_extra"]["examples"][0])  # type: ignore[index]
    return {k: v for k, v in example.items() if k not in {"family_id", "site_id", "shared_with"}}


async def _produce(settings: Settings, families: int) -> int:
    """Put the department's slice of every family's events on its topic, as the relay would."""
    topic = settings.department_topic(DEPARTMENT.value)
    await ensure_topics(settings, [topic])
    policy = default_policy()
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=20,
                                max_batch_size=256 * 1024, enable_idempotence=False)
    await producer.start()
    count = 0
    try:
        pending = []
        for index in range(families):
            for event in _events(uuid.uuid4(), index):
                envelope = Envelope(type=event.event_type, source=source_for(_service(event)),
                                    key=event.partition_key(), data=event.model_dump(mode="json"))
                for department, projected in policy.project(envelope):
                    if department is DEPARTMENT:
                        pending.append(await producer.send(
                            topic, value=projected.value(), key=projected.key_bytes(),
                            headers=projected.headers()))
                        count += 1
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count


def _service(event: Any) -> str:
    from shared.events.registry import REGISTRY

    return REGISTRY.spec(event.event_type).service


async def _plain_fold(settings: Settings, count: int) -> float:
    """The baseline: read the topic in a fresh group and fold it in memory, nothing else."""
    consumer = AIOKafkaConsumer(settings.department_topic(DEPARTMENT.value), **client_options(settings),
                                group_id=unique_name(f"{settings.topic_namespace}.dashboard.baseline"),
                                auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=500)
    started = time.monotonic()
    await consumer.start()
    state, folded = DashboardState(), 0
    try:
        while folded < count:
            for records in (await consumer.getmany(timeout_ms=500, max_records=500)).values():
                for record in records:
                    state.apply(Envelope.from_kafka(record.key, record.value, record.headers))
                    folded += 1
    finally:
        await consumer.stop()
    return time.monotonic() - started


async def _dashboard(settings: Settings, count: int,
                     work: Path) -> tuple[float, float, float, float, list[float]]:
    """Rebuild into a fresh state file (seconds), then time the pages (milliseconds)."""
    from dashboard.app import create_app

    app = create_app(settings, DEPARTMENT, work / "dashboard.db")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           timeout_graceful_shutdown=1))
    started = time.monotonic()
    task = asyncio.create_task(server.serve())
    try:
        while not server.started or app.state.consumer.handled < count:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        rebuild_s = time.monotonic() - started
        token = mint_token(settings, subject="bench", role="department_staff", department=DEPARTMENT.value)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            first_ms = await _timed(http, "/familier")
            warm_ms = statistics.median([await _timed(http, "/familier") for _ in range(20)])
            page = (await http.get("/familier")).text
            family = page.split('data-family="', 1)[1].split('"', 1)[0]
            family_ms = statistics.median([await _timed(http, f"/familier/{family}") for _ in range(20)])
            live_ms = [await _live(http, settings) for _ in range(LIVE_SAMPLES)]
    finally:
        server.should_exit = True
        await task
    return rebuild_s, first_ms, warm_ms, family_ms, live_ms


async def _live(http: httpx.AsyncClient, settings: Settings) -> float:
    """From sending one enrolment to the topic until the open SSE stream says ``changed`` (ms)."""
    topic = settings.department_topic(DEPARTMENT.value)
    producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        async with http.stream("GET", "/live") as stream:
            lines = stream.aiter_lines()
            while (await anext(lines)) != "event: ready":
                pass
            event = _events(uuid.uuid4(), 1)[1]
            envelope = Envelope(type=event.event_type, source=source_for("intake"), key=event.partition_key(),
                                data=event.model_dump(mode="json"))
            [(_, projected)] = [p for p in default_policy().project(envelope) if p[0] is DEPARTMENT]
            started = time.perf_counter()
            await producer.send_and_wait(topic, projected.value(), key=projected.key_bytes(),
                                         headers=projected.headers())
            while (await anext(lines)) != "event: changed":
                pass
            return (time.perf_counter() - started) * 1000
    finally:
        await producer.stop()


async def _timed(http: httpx.AsyncClient, path: str) -> float:
    started = time.perf_counter()
    response = await http.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.status_code
    return elapsed
