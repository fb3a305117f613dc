"""End-to-end event latency: an intake enrolment POST returns → its event is read from a department topic.

The system: a tansu broker, the intake service as a uvicorn process of its own on a throwaway
PostgreSQL database with its relay on, households prepared through the API up to "consented".
A load generator process fires ``POST /v1/households/{id}/enrol`` open-loop at a steady rate and
notes when each call returned; a consumer process on ``<ns>.department.<slug>`` notes when each
``family-enrolled`` arrived. Same machine, same clock (``time.time()``): latency = received −
returned, paired by family id.

The baseline: a raw aiokafka producer (configured as the relay's) sends a message of the same size
and headers at the same rate with ``send_and_wait``; latency = received − acknowledged, read by the
same consumer code. Both consumers use a low ``fetch_max_wait_ms``: tansu answers an empty fetch only
when that wait runs out (it does not wake fetches on produce), so the default 500 ms would measure
the consumer's poll, not the system.

Children: ``python -m bench.event_latency consume|http-load|kafka-load …`` (see ``main``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.kafka_support import (
    Child,
    CpuWatch,
    Latencies,
    asyncpg_dsn,
    child,
    paced,
    percentile,
    postgres_database,
    read_json,
    tansu_broker,
    unique_name,
    wait_for,
    work_dir,
    write_json,
)
from bench.report import Figure, Section
from shared.auth import mint_token
from shared.broker import free_port
from shared.departments import Department
from shared.events.intake import FamilyEnrolled
from shared.kafka import ensure_topics
from shared.settings import Settings

RATE = 100.0
DURATION_S, QUICK_DURATION_S = 60, 10
DEPARTMENT = Department.HEALTH_AND_CARE
#: The same for the system's and the baseline's measuring consumer (see the module docstring).
FETCH_MAX_WAIT_MS = 5
#: aiokafka's default, which ``shared.kafka.make_consumer`` keeps: a second consumer in the system run
#: shows what the services' own consumers see on tansu.
DEFAULT_FETCH_MAX_WAIT_MS = 500
#: Enrolment serialises on the site row; spread the load over a few sites as real teams would be.
SITES = tuple(f"bench-{n}" for n in range(1, 5))
PREPARE_CONCURRENCY = 8
#: The benchmark sites' target area: the street every prepared household lives on.
TARGET_AREA = {"name": "Gellerup/Toveshøj", "streets": [{"street": "Gudrunsvej"}]}
GOAL_P50_MS, GOAL_P99_MS = 20.0, 100.0
ENROLLED = FamilyEnrolled.event_type


@dataclass
class Measurement:
    """What one run (system or baseline) produced: the latencies and the side observations.

    ``returned_to_send`` and ``send_to_consumed`` split each event's latency at the producer's
    record timestamp (taken at ``send()``, millisecond resolution), sorted, in ms.
    """

    latencies: Latencies
    failed: int
    worst_lag_s: float
    returned_to_send: list[float]
    send_to_consumed: list[float]
    message_bytes: int = 0
    cpu: CpuWatch = field(default_factory=CpuWatch)
    #: How long each POST (or send_and_wait) took, sorted, in ms.
    call_ms: list[float] = field(default_factory=list)
    #: The same events read by a consumer with the default ``fetch_max_wait_ms`` (system run only).
    default_wait: Latencies | None = None
    notes: list[str] = field(default_factory=list)


# --- the parent ---------------------------------------------------------------------------

def run(*, quick: bool) -> list[Section]:
    duration = QUICK_DURATION_S if quick else DURATION_S
    count = int(RATE * duration)
    with work_dir("oto-bench-latency-") as work, tansu_broker(work) as broker:
        system = _measure_system(broker.bootstrap, work, count)
        baseline = _measure_baseline(broker.bootstrap, work, count)
    return [_section(system, baseline, count, duration)]


def _settings(bootstrap: str) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, kafka_idempotence=False,
                    topic_namespace=unique_name("bench"), log_json=False)


def _measure_system(bootstrap: str, work: Path, count: int) -> Measurement:
    settings = _settings(bootstrap)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with postgres_database() as url:
        env = {"OTO_ENV": "dev", "OTO_SERVICE": "intake", "OTO_HOST": "127.0.0.1", "OTO_PORT": str(port),
               "OTO_DATABASE_URL": url, "OTO_KAFKA_BOOTSTRAP": bootstrap, "OTO_KAFKA_IDEMPOTENCE": "false",
               "OTO_TOPIC_NAMESPACE": settings.topic_namespace, "OTO_MIGRATE_ON_START": "true"}
        with child(["-m", "shared.serve"], work / "intake.log", env) as intake:
            _wait_ready(intake, base)
            started = time.monotonic()
            calls = asyncio.run(_prepare(base, settings, count))
            asyncio.run(_settle(url))
            prepared_s = time.monotonic() - started
            plan = work / "plan.json"
            write_json(plan, {"base": base, "calls": calls})
            load = ["-m", "bench.event_latency", "http-load", "--plan", str(plan), "--rate", str(RATE)]
            result = _drive(work, "system", load, bootstrap, settings.department_topic(DEPARTMENT.value),
                            len(calls), watch_pid=intake.process.pid, probe_default_wait=True)
    result.notes.append(f"{len(calls)} households prepared to 'consented' through the API in "
                        f"{prepared_s:.0f} s (not measured)")
    return result


def _wait_ready(intake: Child, base: str) -> None:
    def ready() -> bool:
        if not intake.running():
            raise RuntimeError(f"the intake service exited:\n{intake.tail()}")
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout=90, interval=0.2, what="intake /readyz")


def _cpr(index: int, child_number: bool) -> str:
    """A valid CPR number unique per index: mothers born 1985 (7th digit 0), children 2015 (4)."""
    day, month, serial = index % 28 + 1, index // 28 % 12 + 1, index // 336
    if child_number:
        return f"{day:02d}{month:02d}15-{4000 + serial:04d}"
    return f"{day:02d}{month:02d}85-{serial:04d}"


async def _prepare(base: str, settings: Settings, count: int) -> list[list[str]]:
    """Sites with room, then ``count`` households taken to 'consented'; returns [id, auth] pairs."""
    admin = {"Authorization": "Bearer " + mint_token(settings, subject="bench-admin", role="admin")}
    teams = {site: "Bearer " + mint_token(settings, subject=f"bench-{site}", role="team_staff", site=site)
             for site in SITES}
    gate = asyncio.Semaphore(PREPARE_CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for site in SITES:
            response = await http.post("/v1/sites", headers=admin,
                                       json={"id": site, "name": f"Benchmark {site}", "capacity": 10_000})
            response.raise_for_status()
            # without a target area nobody at the site is found eligible
            response = await http.put(f"/v1/sites/{site}/area", headers=admin, json=TARGET_AREA)
            response.raise_for_status()

        async def one(index: int) -> list[str]:
            site = SITES[index % len(SITES)]
            async with gate:
                return [await _consented_household(http, teams[site], site, index), teams[site]]

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _consented_household(http: httpx.AsyncClient, auth: str, site: str, index: int) -> str:
    headers = {"Authorization": auth}
    body = {"site_id": site, "address": f"Gudrunsvej {index % 90 + 1}, 8220 Brabrand", "members": [
        {"cpr": _cpr(index, False), "role": "mother", "unemployed_since": "2016-03-01"},
        {"cpr": _cpr(index, True), "role": "child"}]}
    created = await http.post("/v1/households", headers=headers, json=body)
    created.raise_for_status()
    household = created.json()
    hid, mother = household["id"], household["members"][0]["id"]
    (await http.post(f"/v1/households/{hid}/outreach", headers=headers, json={
        "at": "2026-03-02T16:30:00Z", "outcome": "agreed"})).raise_for_status()
    (await http.post(f"/v1/households/{hid}/consents", headers=headers, json={
        "person_id": mother, "given_by_person_id": mother, "purposes": ["coordinated_help"],
        "departments": [d.value for d in Department]})).raise_for_status()
    return str(hid)


async def _settle(url: str, timeout: float = 300.0) -> None:
    """Wait until the relay has published the preparation's events, then VACUUM ANALYZE, so the
    measurement starts from a steady state (not amid autovacuum of the freshly filled tables)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        deadline = time.monotonic() + timeout
        while await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
            if time.monotonic() > deadline:
                raise TimeoutError("the relay did not publish the preparation's events")
            await asyncio.sleep(0.2)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def _measure_baseline(bootstrap: str, work: Path, count: int) -> Measurement:
    """Raw produce → consume of the message the system run captured from the department topic."""
    settings = _settings(bootstrap)
    topic = f"{settings.topic_namespace}.baseline.department"
    asyncio.run(ensure_topics(settings, [topic]))
    sample = work / "system.sample.json"
    load = ["-m", "bench.event_latency", "kafka-load", "--bootstrap", bootstrap, "--topic", topic,
            "--sample", str(sample), "--rate", str(RATE), "--count", str(count)]
    return _drive(work, "baseline", load, bootstrap, topic, count)


def _drive(work: Path, name: str, load: list[str], bootstrap: str, topic: str, expected: int,
           watch_pid: int | None = None, probe_default_wait: bool = False, event_type: str = ENROLLED,
           rate: float = RATE) -> Measurement:
    """Start the measuring consumer(s), run the load generator, pair their times by key; only
    events of ``event_type`` are measured."""
    waits = {name: FETCH_MAX_WAIT_MS}
    if probe_default_wait:
        waits[f"{name}-default-wait"] = DEFAULT_FETCH_MAX_WAIT_MS
    loaded = work / f"{name}.sent.json"
    common = ["--bootstrap", bootstrap, "--topic", topic, "--expected", str(expected), "--type", event_type]
    with contextlib.ExitStack() as stack:
        consumers = {label: stack.enter_context(child(_consume_args(work, label, wait, common),
                                                      work / f"{label}.consumer.log"))
                     for label, wait in waits.items()}
        for label, consumer in consumers.items():
            _wait_consumer_ready(work, label, consumer)
        cpu = CpuWatch(watch_pid).start()
        with child([*load, "--out", str(loaded)], work / f"{name}.load.log") as generator:
            if generator.wait(expected / rate + 120) != 0:
                raise RuntimeError(f"{name} load generator failed:\n{generator.tail()}")
        cpu.stop()
        for label, consumer in consumers.items():
            _finish(work, label, consumer)
    sent = read_json(loaded)
    measurement = _measurement(sent, read_json(work / f"{name}.consumed.json"), cpu)
    if probe_default_wait:
        probe = read_json(work / f"{name}-default-wait.consumed.json")
        measurement.default_wait = Latencies.between(sent["sent"], probe["received"])
    return measurement


def _consume_args(work: Path, label: str, wait_ms: int, common: list[str]) -> list[str]:
    return ["-m", "bench.event_latency", "consume", *common, "--fetch-max-wait-ms", str(wait_ms),
            "--ready", str(work / f"{label}.ready"), "--stop", str(work / f"{label}.stop"),
            "--out", str(work / f"{label}.consumed.json"), "--sample", str(work / f"{label}.sample.json")]


def _wait_consumer_ready(work: Path, label: str, consumer: Child) -> None:
    ready = work / f"{label}.ready"
    wait_for(lambda: ready.exists() or not consumer.running(), timeout=60, what=f"{label} consumer")
    if not consumer.running():
        raise RuntimeError(f"{label} consumer exited:\n{consumer.tail()}")


def _finish(work: Path, label: str, consumer: Child) -> None:
    """A consumer that got everything has exited; one still waiting is told to stop and write."""
    if consumer.wait(15) is None:
        (work / f"{label}.stop").touch()
    if consumer.wait(30) != 0:
        raise RuntimeError(f"{label} consumer failed:\n{consumer.tail()}")


def _measurement(sent: dict[str, Any], got: dict[str, Any], cpu: CpuWatch) -> Measurement:
    latencies = Latencies.between(sent["sent"], got["received"])
    stamps = {key: ms / 1000 for key, ms in got["timestamps"].items() if key in sent["sent"]}
    return Measurement(
        latencies=latencies, failed=sent["failed"], worst_lag_s=sent["worst_lag_s"],
        returned_to_send=sorted((at - sent["sent"][key]) * 1000 for key, at in stamps.items()),
        send_to_consumed=sorted((got["received"][key] - at) * 1000 for key, at in stamps.items()),
        message_bytes=got["message_bytes"], cpu=cpu, call_ms=sorted(sent["call_ms"]))


def _p50_p99(sorted_ms: list[float]) -> str:
    return f"p50 {percentile(sorted_ms, 50):.1f} / p99 {percentile(sorted_ms, 99):.1f} ms"


def _section(system: Measurement, baseline: Measurement, count: int, duration: int) -> Section:
    s, b = system.latencies, baseline.latencies
    complete = s.missing == 0 and system.failed == 0
    figures = [
        Figure("p50 latency", "ms", s.p(50), b.p(50), f"< {GOAL_P50_MS:.0f} ms", s.p(50) < GOAL_P50_MS),
        Figure("p99 latency", "ms", s.p(99), b.p(99), f"< {GOAL_P99_MS:.0f} ms", s.p(99) < GOAL_P99_MS),
        Figure("max latency", "ms", s.max, b.max),
        Figure("events consumed", "events", s.count, b.count, f"all {count}", complete),
    ]
    setup = (f"{count} enrolments at {RATE:.0f}/s for {duration} s (open loop) against the intake "
             f"service (uvicorn process, PostgreSQL, relay on) on a tansu broker; latency from the POST "
             f"returning to `family-enrolled` read from `<ns>.department.{DEPARTMENT.value}` by an "
             f"aiokafka consumer process (`fetch_max_wait_ms={FETCH_MAX_WAIT_MS}`). Baseline: raw aiokafka "
             f"`send_and_wait` of a message of the same size and headers at the same rate, from the "
             f"acknowledgement to the same consumer.")
    return Section("End-to-end event latency (enrolment → department topic)", setup, figures,
                   _notes(system, baseline))


def _notes(system: Measurement, baseline: Measurement) -> list[str]:
    s, b = system.latencies, baseline.latencies
    notes = [
        f"system: {s.summary()}; {system.failed} enrol POSTs failed or were not 'enrolled'",
        f"baseline: {b.summary()}; {baseline.failed} sends failed",
        f"where the system's time goes, split at the relay producer's record timestamp (taken at "
        f"send(), ms resolution): POST returned → relay send() {_p50_p99(system.returned_to_send)} "
        f"(negative when the relay, woken by the commit, sends before the HTTP response is out); "
        f"send() → consumed {_p50_p99(system.send_to_consumed)}; baseline send() → consumed "
        f"{_p50_p99(baseline.send_to_consumed)}",
        f"message value sizes: system {system.message_bytes} B, baseline {baseline.message_bytes} B (the "
        f"baseline sends the first department message the system run received, headers included, "
        f"with a fresh key and ce_id)",
        f"enrol POST took {_p50_p99(system.call_ms)}; baseline send_and_wait took "
        f"{_p50_p99(baseline.call_ms)}",
        f"CPU during the load: intake process {system.cpu.process_share:.2f} cores; whole machine "
        f"{system.cpu.machine_busy:.0%} busy (system run), {baseline.cpu.machine_busy:.0%} (baseline run) "
        f"of {os.cpu_count()} cores — the machine is shared, so a busy machine inflates the tail",
        f"load generators' worst start lag behind the open-loop schedule: system "
        f"{system.worst_lag_s * 1000:.1f} ms, baseline {baseline.worst_lag_s * 1000:.1f} ms",
    ]
    if system.default_wait is not None:
        notes.append(
            f"the same events read by a consumer with aiokafka's default fetch_max_wait_ms="
            f"{DEFAULT_FETCH_MAX_WAIT_MS} (the services' idle wait): {system.default_wait.summary()} — "
            f"tansu answers an empty fetch only when the wait runs out, which is why the services' "
            f"consumers wait 10 ms per fetch while messages flow (`shared.kafka.AdaptiveFetchWait`, "
            f"see the hops section); Apache Kafka answers as soon as data arrives")
    return notes + system.notes


# --- the children -------------------------------------------------------------------------

@dataclass
class Arrivals:
    """What the measuring consumer saw: receive time and producer timestamp per family id."""

    event_type: str = ENROLLED
    received: dict[str, float] = field(default_factory=dict)
    timestamps: dict[str, int] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    sample: dict[str, Any] = field(default_factory=dict)

    def note(self, record: Any, now: float) -> None:
        """Keep the measured type's record times (the first copy only); ignore everything else."""
        if dict(record.headers).get("ce_type") != self.event_type.encode() or not record.key:
            return
        key = record.key.decode()
        if key in self.received:
            return
        self.received[key], self.timestamps[key] = now, record.timestamp
        self.sizes.append(len(record.value or b""))
        self.sample = self.sample or {"value": (record.value or b"").decode(),
                                      "headers": [[name, value.decode()] for name, value in record.headers]}

    def save(self, out: Path, sample: Path) -> None:
        write_json(out, {"received": self.received, "timestamps": self.timestamps,
                         "message_bytes": int(statistics.median(self.sizes)) if self.sizes else 0})
        if self.sample:
            write_json(sample, self.sample)


async def _consume(args: argparse.Namespace) -> None:
    """Read the topic from its end; note when each family-enrolled arrived, until all or stopped."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=args.fetch_max_wait_ms)
    await consumer.start()
    arrivals = Arrivals(args.type)
    try:
        await _assign_at_end(consumer, args.topic)
        Path(args.ready).touch()
        deadline = time.monotonic() + args.deadline
        stop = Path(args.stop)
        while len(arrivals.received) < args.expected and time.monotonic() < deadline and not stop.exists():
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batch.values():
                for record in records:
                    arrivals.note(record, now)
    finally:
        await consumer.stop()
    arrivals.save(Path(args.out), Path(args.sample))


async def _assign_at_end(consumer: Any, topic: str) -> None:
    """All partitions, positioned at their end: only what is produced from now on is measured."""
    from aiokafka import TopicPartition

    await consumer.topics()  # metadata, so the partitions are known
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if not partitions:
        raise RuntimeError(f"topic {topic} has no partitions")
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)


async def _http_load(args: argparse.Namespace) -> None:
    """Fire the planned enrolments open-loop; note when each returned 200 and 'enrolled'."""
    plan = read_json(Path(args.plan))
    calls: list[list[str]] = plan["calls"]
    sent: dict[str, float] = {}
    call_ms: list[float] = []
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with httpx.AsyncClient(base_url=plan["base"], timeout=30, limits=limits) as http:

        async def fire(i: int) -> None:
            household, auth = calls[i]
            began = time.time()
            try:
                response = await http.post(f"/v1/households/{household}/enrol",
                                           headers={"Authorization": auth})
            except httpx.HTTPError:
                return
            returned = time.time()
            if response.status_code == 200 and response.json().get("status") == "enrolled":
                sent[household] = returned
                call_ms.append((returned - began) * 1000)

        lag = await paced(args.rate, len(calls), fire, timeout=60)
    write_json(Path(args.out), {"sent": sent, "failed": len(calls) - len(sent), "worst_lag_s": lag,
                                "call_ms": call_ms})


async def _kafka_load(args: argparse.Namespace) -> None:
    """Send the sample message open-loop with send_and_wait; note when each was acknowledged."""
    from shared.kafka import make_producer

    sample = read_json(Path(args.sample))
    value = sample["value"].encode()
    headers = [(name, text.encode()) for name, text in sample["headers"]]
    settings = Settings(kafka_bootstrap=args.bootstrap, kafka_idempotence=False)
    producer = make_producer(settings)  # the relay's producer options
    await producer.start()
    sent: dict[str, float] = {}
    call_ms: list[float] = []
    failed = 0
    try:
        await producer.partitions_for(args.topic)

        async def fire(_i: int) -> None:
            nonlocal failed
            key = str(uuid.uuid4())
            fresh = [(n, str(uuid.uuid4()).encode() if n == "ce_id" else v) for n, v in headers]
            began = time.time()
            try:
                await producer.send_and_wait(args.topic, value=value, key=key.encode(), headers=fresh)
            except Exception:
                failed += 1
                return
            sent[key] = time.time()
            call_ms.append((sent[key] - began) * 1000)

        lag = await paced(args.rate, args.count, fire, timeout=60)
    finally:
        await producer.stop()
    write_json(Path(args.out), {"sent": sent, "failed": failed, "worst_lag_s": lag, "call_ms": call_ms})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.event_latency")
    roles = parser.add_subparsers(dest="role", required=True)
    consume = roles.add_parser("consume")
    consume.add_argument("--bootstrap", required=True)
    consume.add_argument("--topic", required=True)
    consume.add_argument("--expected", type=int, required=True)
    consume.add_argument("--ready", required=True)
    consume.add_argument("--stop", required=True)
    consume.add_argument("--out", required=True)
    consume.add_argument("--sample", required=True, help="where to write the first matching message")
    consume.add_argument("--deadline", type=float, default=900)
    consume.add_argument("--fetch-max-wait-ms", type=int, default=FETCH_MAX_WAIT_MS)
    consume.add_argument("--type", default=ENROLLED, help="the event type measured (ce_type)")
    http_load = roles.add_parser("http-load")
    http_load.add_argument("--plan", required=True)
    http_load.add_argument("--rate", type=float, required=True)
    http_load.add_argument("--out", required=True)
    kafka_load = roles.add_parser("kafka-load")
    for name in ("--bootstrap", "--topic", "--sample", "--out"):
        kafka_load.add_argument(name, required=True)
    kafka_load.add_argument("--rate", type=float, required=True)
    kafka_load.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    role = {"consume": _consume, "http-load": _http_load, "kafka-load": _kafka_load}[args.role]
    asyncio.run(role(args))


if __name__ == "__main__":
    main()
