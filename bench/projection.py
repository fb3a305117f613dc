"""Projection throughput: a consumer rebuilds its state by replaying a topic from the beginning.

The topic holds ``casework`` ``contact-recorded`` events (CloudEvents envelopes, keyed by family,
1,000 families, 3 partitions). The system is the project's ``EventConsumer`` with the inbox on:
each event is parsed, validated, claimed in ``inbox`` and handled by a handler that adds one row to
a small projection table, one transaction per partition batch. The baseline consumes the same
topic with plain aiokafka and inserts the same rows with one ``executemany`` per fetched batch:
no inbox, no validation. Two more inbox runs tell the inbox's cost from the handler's: a no-op
handler (the inbox alone) and a handler with an INSERT statement of its own per event.

Each run is one process of its own on a fresh database, started as a service process is: with
its consumer built, what start-up made is frozen out of the garbage collector's reach
(``shared.app.freeze_startup_objects``, which every service calls once it has started; without
it each full collection during a replay walks every module, class and schema again). The rate
counts from the moment the consumer has its partitions (tansu holds a new group's join for about
5 s, the same for every run) until its last transaction committed; the time including start-up is
reported beside it.

Children: ``python -m bench.projection inbox|baseline …`` (see ``main``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import DateTime, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.kafka_support import (
    Child,
    child,
    postgres_database,
    read_json,
    tansu_broker,
    unique_name,
    wait_for,
    work_dir,
    write_json,
)
from bench.report import Figure, Section
from bench.support import py_spy, shares_of_samples
from shared.db import insert_rows, make_engine
from shared.events.casework import ContactRecorded
from shared.events.envelope import Envelope
from shared.events.registry import REGISTRY
from shared.kafka import ensure_topics
from shared.outbox import source_for
from shared.settings import Settings
from shared.tables import inbox, plumbing_metadata

EVENTS, QUICK_EVENTS = 1_000_000, 50_000
#: The INSERT-per-event handler is slow; it replays only the first events of the topic.
INSERT_EVENTS = 50_000
FAMILIES = 1_000
SUBSCRIPTION = "bench-projection"
GOAL_RATE = 5_000.0
GOAL_RATIO = 0.5
KINDS = ("home_visit", "drop_in", "call", "joint_activity")
SITES = ("gellerup", "viby", "tilst")
#: The produced stream starts here, one contact a minute.
EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


class ProjectionBase(DeclarativeBase):
    """The benchmark's own registry, so its table stays out of every service's metadata."""


class ContactRow(ProjectionBase):
    """One row per contact: the projection a casework dashboard would rebuild."""

    __tablename__ = "bench_contacts"
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    family_id: Mapped[str] = mapped_column(String(36))
    site_id: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


contacts = cast(Table, ContactRow.__table__)
#: Built once: the handler passes only parameters, so SQLAlchemy compiles it once.
INSERT_CONTACT = contacts.insert()


# --- the parent ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    """One consumer run: which child, which handler, how many events it must get through."""

    name: str
    mode: str
    handler: str
    count: int


#: Where the batch-handler consumer's CPU goes: the innermost of these frames names the part.
PROFILE_PARTS = (
    ("envelope JSON (json.loads)", "Envelope.from_kafka", "loads"),
    ("envelope headers and fields", "Envelope.from_kafka", ""),
    ("payload validation (pydantic)", "EventRegistry.parse", ""),
    ("inbox claim (one statement)", "EventConsumer._claim", ""),
    ("batch handler (rows + one statement)", "add_contacts", ""),
    ("aiokafka fetch and record decoding", "AIOKafkaConsumer.getmany", ""),
    ("commit and session", "EventConsumer._apply_batch", ""),
)


@dataclass
class Outcome:
    """What one run measured (from the child) and found in its database afterwards."""

    variant: Variant
    handled: int
    rate: float  # events per second from partition assignment to the last commit
    total_s: float  # from process start (imports done) to the last commit
    cpu_us: float  # consumer-process CPU per event, over the same span as ``rate``
    projected: int
    claimed: int
    profile: dict[str, float] | None = None


def run(*, quick: bool) -> list[Section]:
    count = QUICK_EVENTS if quick else EVENTS
    variants = [Variant("baseline", "baseline", "", count), Variant("inbox", "inbox", "add", count),
                Variant("inbox, batch handler", "inbox", "batch", count),
                Variant("inbox, no-op handler", "inbox", "noop", count),
                Variant("inbox, INSERT per event", "inbox", "insert", min(count, INSERT_EVENTS))]
    with work_dir("oto-bench-projection-") as work, tansu_broker(work) as broker:
        settings = Settings(kafka_bootstrap=broker.bootstrap, kafka_idempotence=False,
                            topic_namespace=unique_name("bench"), log_json=False)
        produced_s = asyncio.run(_produce(settings, count))
        outcomes = [_replay(work, variant, settings) for variant in variants]
    return [_section(outcomes, count, produced_s)]


def _payload(index: int, families: list[str]) -> dict[str, Any]:
    """A valid contact-recorded payload (the shape ``model_dump(mode="json")`` gives)."""
    at = EPOCH + timedelta(minutes=index)
    return {"family_id": families[index % len(families)], "site_id": SITES[index % len(SITES)],
            "contact_id": str(uuid.uuid4()), "kind": KINDS[index % len(KINDS)],
            "at": at.isoformat().replace("+00:00", "Z"), "staff_ids": [str(uuid.uuid4())]}


async def _produce(settings: Settings, count: int) -> float:
    """Fill the casework domain topic; returns the seconds it took (batched sends, not per message)."""
    from aiokafka import AIOKafkaProducer

    from shared.kafka import client_options

    topic = settings.domain_topic("casework")
    await ensure_topics(settings, [topic, f"{topic}.dlq"])
    families = [str(uuid.uuid4()) for _ in range(FAMILIES)]
    REGISTRY.parse(ContactRecorded.event_type, _payload(0, families))  # the payloads are valid
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=20,
                                max_batch_size=256 * 1024, enable_idempotence=False)
    await producer.start()
    started = time.monotonic()
    try:
        pending: list[asyncio.Future[Any]] = []
        for index in range(count):
            envelope = Envelope(type=ContactRecorded.event_type, source=source_for("casework"),
                                key=families[index % FAMILIES], data=_payload(index, families),
                                correlation_id=str(uuid.uuid4()))
            pending.append(await producer.send(topic, value=envelope.value(), key=envelope.key_bytes(),
                                               headers=envelope.headers()))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


def _replay(work: Path, variant: Variant, settings: Settings) -> Outcome:
    """Run one consumer process on a fresh database until it has handled ``variant.count`` events."""
    name = f"{variant.mode}-{variant.handler or 'plain'}"
    out = work / f"{name}.json"
    budget = max(120.0, variant.count / 1_000)
    with postgres_database() as url:
        asyncio.run(_create_tables(url))
        args = ["-m", "bench.projection", variant.mode, "--bootstrap", settings.kafka_bootstrap,
                "--namespace", settings.topic_namespace, "--database", url, "--expected",
                str(variant.count), "--out", str(out), "--deadline", str(budget)]
        if variant.handler:
            args += ["--handler", variant.handler]
        samples = work / f"{name}.pyspy"
        with child(args, work / f"{name}.log") as consumer:
            spy = _profile(consumer, samples) if variant.handler in BATCH_HANDLERS else None
            wait_for(lambda: out.exists() or not consumer.running(), timeout=budget + 60, interval=0.2,
                     what=f"{variant.name} consumer")
            if not out.exists():
                raise RuntimeError(f"{variant.name} consumer exited early:\n{consumer.tail()}")
        if spy is not None:
            spy.wait(timeout=30)  # py-spy ends with its target
        result = read_json(out)
        projected, claimed = asyncio.run(_count_rows(url))
    if result["handled"] < variant.count:
        raise RuntimeError(f"{variant.name}: only {result['handled']} of {variant.count} events handled "
                           f"in {budget:.0f} s")
    span = result["finished"] - result["assigned"]
    return Outcome(variant, result["handled"], result["handled"] / span if span > 0 else 0.0,
                   result["finished"] - result["started"], result["cpu_s"] / max(result["handled"], 1) * 1e6,
                   projected, claimed, shares_of_samples(samples, _part) if spy is not None else None)


def _profile(consumer: Child, samples: Path) -> subprocess.Popen[bytes] | None:
    """py-spy on the consumer process until it exits (None without py-spy: the profile is optional)."""
    tool = py_spy()
    if tool is None:
        return None
    return subprocess.Popen([tool, "record", "-p", str(consumer.process.pid), "-r", "100", "-f", "raw",
                             "--nonblocking", "-o", str(samples)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _part(frames: list[str]) -> str | None:
    """The part of the consumer loop a stack is in; None outside the loop (start-up, imports)."""
    if not any("EventConsumer._loop" in frame for frame in frames):
        return None
    for index in range(len(frames) - 1, -1, -1):
        for part, frame, below in PROFILE_PARTS:
            if frame in frames[index] and (not below or any(below in f for f in frames[index + 1:])):
                return part
    return "consumer loop, other"


async def _create_tables(url: str) -> None:
    """The plumbing tables (the inbox among them) and the projection, as a migration would."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(plumbing_metadata.create_all)
            await conn.run_sync(ProjectionBase.metadata.create_all)
    finally:
        await engine.dispose()


async def _count_rows(url: str) -> tuple[int, int]:
    """Rows in the projection and in the inbox: what the run really committed."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            projected = (await conn.execute(select(func.count()).select_from(contacts))).scalar_one()
            claimed = (await conn.execute(select(func.count()).select_from(inbox))).scalar_one()
            return int(projected), int(claimed)
    finally:
        await engine.dispose()


def _section(outcomes: list[Outcome], count: int, produced_s: float) -> Section:
    baseline, system, batch, noop, insert = outcomes
    ratio = batch.rate / baseline.rate if baseline.rate else 0.0
    figures = [
        Figure("replay rate, inbox consumer with a batch handler", "events/s", batch.rate, baseline.rate,
               f">= {GOAL_RATE:,.0f}/s and >= {GOAL_RATIO:.2f} x baseline",
               batch.rate >= GOAL_RATE and ratio >= GOAL_RATIO),
        Figure("replay rate, inbox consumer with a per-event (ORM) handler", "events/s", system.rate,
               baseline.rate),
        Figure("replay rate, inbox with a no-op handler", "events/s", noop.rate, baseline.rate),
        Figure(f"replay rate, inbox with an INSERT per event (first {insert.variant.count:,})", "events/s",
               insert.rate, baseline.rate),
        Figure("consumer CPU per event, inbox consumer with a batch handler", "µs", batch.cpu_us,
               baseline.cpu_us),
        Figure("replay time incl. start-up and group join, batch handler", "s", batch.total_s,
               baseline.total_s),
    ]
    notes = [
        "rows committed (projection / inbox): " + "; ".join(
            f"{o.variant.name} {o.projected:,} / {o.claimed:,} of {o.handled:,} handled" for o in outcomes),
        "consumer CPU per event: " + ", ".join(f"{o.variant.name} {o.cpu_us:.0f} µs" for o in outcomes),
        _profile_note(batch),
        f"producing the {count:,} events took {produced_s:.0f} s (batched sends, not measured)",
    ]
    setup = (f"Replay of {count:,} `contact-recorded` events ({FAMILIES:,} families, 3 partitions, tansu) "
             f"from offset 0 into a projection table; each consumer is one process on a fresh PostgreSQL "
             f"database. System: `shared.inbox.EventConsumer` (envelope parsing, payload validation, "
             f"inbox claim in one statement, one transaction per partition batch) with a batch handler "
             f"that writes the batch's rows with one statement (`shared.db.insert_rows`, `unnest` on "
             f"PostgreSQL), as the services' projections do; beside it the per-event form with a "
             f"handler that `session.add`s one row per event. Baseline: plain aiokafka, one "
             f"`executemany` INSERT and commit per fetched batch, no inbox. Rates count from partition "
             f"assignment to the last commit (tansu holds a group's join ~5 s).")
    return Section("Projection rebuild throughput (inbox consumer)", setup, figures, notes)


def _profile_note(outcome: Outcome) -> str:
    if outcome.profile is None:
        return "No CPU profile: py-spy is not installed (`.venv/bin/pip install py-spy`)."
    parts = ", ".join(f"{part} {share:.0%}" for part, share in outcome.profile.items())
    return f"where the batch-handler consumer's loop spends its CPU (py-spy samples): {parts}"


# --- the children -------------------------------------------------------------------------

async def add_contact(session: AsyncSession, event: ContactRecorded, envelope: Envelope) -> None:
    """The projection's handler in the services' style: add the row; the unit of work inserts the
    batch's rows together at the commit (the inbox makes a redelivery a no-op)."""
    session.add(ContactRow(contact_id=str(event.contact_id), event_id=envelope.id,
                           family_id=str(event.family_id), site_id=event.site_id, kind=event.kind,
                           at=event.at))


async def insert_contact(session: AsyncSession, event: ContactRecorded, envelope: Envelope) -> None:
    """The same row with an INSERT statement of its own: one database round trip per event."""
    await session.execute(INSERT_CONTACT, {
        "contact_id": str(event.contact_id), "event_id": envelope.id, "family_id": str(event.family_id),
        "site_id": event.site_id, "kind": event.kind, "at": event.at})


async def ignore_contact(session: AsyncSession, event: ContactRecorded, envelope: Envelope) -> None:
    """No effect: what is left is the inbox's own cost (parse, validate, claim, commit)."""


async def add_contacts(session: AsyncSession, batch: Sequence[tuple[ContactRecorded, Envelope]]) -> None:
    """The batch form: the run's rows in one statement (the inbox has claimed only new events)."""
    await insert_rows(session, contacts, [
        {"contact_id": str(event.contact_id), "event_id": envelope.id, "family_id": str(event.family_id),
         "site_id": event.site_id, "kind": event.kind, "at": event.at} for event, envelope in batch])


HANDLERS = {"add": add_contact, "insert": insert_contact, "noop": ignore_contact}
BATCH_HANDLERS = {"batch": add_contacts}


def _child_settings(args: argparse.Namespace) -> Settings:
    return Settings(kafka_bootstrap=args.bootstrap, kafka_idempotence=False, topic_namespace=args.namespace,
                    database_url=args.database, log_json=False, log_level="WARNING")


async def _run_inbox(args: argparse.Namespace) -> None:
    """The project's consumer with the inbox; done when it has handled every event."""
    from shared.app import freeze_startup_objects
    from shared.db import make_sessionmaker
    from shared.inbox import EventConsumer, Subscription

    started = time.time()
    settings = _child_settings(args)
    engine = make_engine(args.database)
    # a group of its own per handler: each run replays the topic from offset 0
    if args.handler in BATCH_HANDLERS:
        subscription = Subscription(f"{SUBSCRIPTION}-{args.handler}", ("casework",), {},
                                    batch_handlers={ContactRecorded: BATCH_HANDLERS[args.handler]})
    else:
        subscription = Subscription(f"{SUBSCRIPTION}-{args.handler}", ("casework",),
                                    {ContactRecorded: HANDLERS[args.handler]})
    consumer = EventConsumer(settings=settings, subscription=subscription,
                             sessionmaker=make_sessionmaker(engine))
    task = asyncio.create_task(consumer.run())
    freeze_startup_objects()  # where a service calls it: its consumer tasks created, not yet run
    try:
        deadline = time.monotonic() + args.deadline
        # the consumer's own aiokafka client: its assignment is when replaying can begin
        assigned = await _wait(lambda: bool(consumer._consumer and consumer._consumer.assignment()),
                               deadline, task)
        cpu = time.process_time()
        # ``handled`` counts events whose transaction has committed
        finished = await _wait(lambda: consumer.handled >= args.expected, deadline, task)
        cpu = time.process_time() - cpu
        await consumer.stop()
        await asyncio.wait_for(task, timeout=30)
    finally:
        task.cancel()
        await engine.dispose()
    _write_result(args, started=started, assigned=assigned, finished=finished, handled=consumer.handled,
                  cpu_s=cpu)


async def _wait(done: Callable[[], bool], deadline: float, task: asyncio.Task[None]) -> float:
    """Poll every 5 ms until ``done()``; the wall-clock time it became true (or the deadline)."""
    while not done() and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.005)
    return time.time()


async def _run_baseline(args: argparse.Namespace) -> None:
    """Plain aiokafka: parse the JSON, insert each fetched batch in one executemany, commit."""
    from shared.app import freeze_startup_objects
    from shared.kafka import make_consumer

    started = time.time()
    settings = _child_settings(args)
    engine = make_engine(args.database)
    consumer = make_consumer(settings, group_id=f"{args.namespace}.bench-baseline")
    consumer.subscribe([settings.domain_topic("casework")])
    freeze_startup_objects()  # the same start as the inbox child's
    await consumer.start()  # returns once the group has been joined and partitions assigned
    assigned, cpu = time.time(), time.process_time()
    inserted = 0
    try:
        deadline = time.monotonic() + args.deadline
        while inserted < args.expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            records = [record for part in batch.values() for record in part]
            if records:
                inserted += await _insert_batch(engine, records)
                await consumer.commit()
        finished, cpu = time.time(), time.process_time() - cpu
    finally:
        await consumer.stop()
        await engine.dispose()
    _write_result(args, started=started, assigned=assigned, finished=finished, handled=inserted, cpu_s=cpu)


async def _insert_batch(engine: AsyncEngine, records: list[Any]) -> int:
    rows = []
    for record in records:
        data = json.loads(record.value)
        event_id = dict(record.headers)["ce_id"].decode()
        rows.append({"contact_id": data["contact_id"], "event_id": event_id, "family_id": data["family_id"],
                     "site_id": data["site_id"], "kind": data["kind"],
                     "at": datetime.fromisoformat(data["at"])})
    async with engine.begin() as conn:
        await conn.execute(contacts.insert(), rows)
    return len(rows)


def _write_result(args: argparse.Namespace, **values: float) -> None:
    write_json(Path(args.out), values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.projection")
    parser.add_argument("mode", choices=("inbox", "baseline"))
    for name in ("--bootstrap", "--namespace", "--database", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--deadline", type=float, default=600)
    parser.add_argument("--handler", choices=sorted([*HANDLERS, *BATCH_HANDLERS]), default="add")
    args = parser.parse_args(argv)
    asyncio.run(_run_inbox(args) if args.mode == "inbox" else _run_baseline(args))


if __name__ == "__main__":
    main()
