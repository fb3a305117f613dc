"""Service-to-service hops on the embedded broker, and what the services cost while idle.

The system: a tansu broker and the four services (intake, casework, referrals, finance), each a
``python -m shared.serve`` process with its relay and consumers on, each on a throwaway PostgreSQL
database (the embedded default runs them on SQLite; PostgreSQL lets the preparation reuse
``bench.event_latency``'s, and the hop is the broker's and the consumer's, not the database's).
Households are prepared through intake's API up to "consented" and each site gets two caseworkers
of different disciplines, so an enrolment makes casework assign a makkerpar. A load generator fires
``POST /v1/households/{id}/enrol`` open-loop at 20/s; a plain aiokafka consumer (5 ms fetch wait)
on ``<ns>.department.<slug>`` notes when casework's ``makkerpar-assigned`` for that family arrives.
Latency = that arrival − the POST returning: intake's relay → broker → casework's consumer
(inbox, handler, commit) → casework's relay → broker → the measuring consumer.

The baseline, same run: a raw aiokafka relay process (consume with the services' busy fetch wait,
produce with the relay's producer options) between a raw producer and the same measuring
consumer, messages of the same size and headers: two hops with no database and no service.

Idle: after the load, once the consumers' busy time has run out, the CPU the four service
processes use over ~20 s of nothing (``/proc/<pid>/stat``).

Child: ``python -m bench.hops relay …`` (the baseline's relay).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from pathlib import Path

import httpx

from bench.event_latency import (
    FETCH_MAX_WAIT_MS,
    SITES,
    Measurement,
    _assign_at_end,
    _drive,
    _p50_p99,
    _prepare,
    _settings,
    _settle,
    _wait_ready,
)
from bench.kafka_support import (
    Child,
    child,
    postgres_database,
    process_cpu_seconds,
    tansu_broker,
    wait_for,
    work_dir,
    write_json,
)
from bench.report import Figure, Section
from shared.auth import mint_token
from shared.broker import free_port
from shared.departments import Department
from shared.events.casework import MakkerparAssigned
from shared.kafka import ensure_topics
from shared.settings import Settings

RATE = 20.0
DURATION_S, QUICK_DURATION_S = 30, 10
IDLE_S, QUICK_IDLE_S = 20, 8
SERVICES = ("intake", "casework", "referrals", "finance")
DEPARTMENT = Department.HEALTH_AND_CARE
ASSIGNED = MakkerparAssigned.event_type
GOAL_P50_MS, GOAL_P99_MS, GOAL_IDLE_CORES = 50.0, 200.0, 0.05
#: Two disciplines per site: enough for a makkerpar (casework picks the least loaded pair).
DISCIPLINES = ("social_worker", "health_visitor")


def run(*, quick: bool) -> list[Section]:
    duration, idle_s = (QUICK_DURATION_S, QUICK_IDLE_S) if quick else (DURATION_S, IDLE_S)
    count = int(RATE * duration)
    with work_dir("oto-bench-hops-") as work, tansu_broker(work) as broker:
        settings = _settings(broker.bootstrap)
        system, idle_cores, notes = _measure_system(work, settings, count, idle_s)
        baseline = _measure_baseline(work, settings, count)
    return [_section(system, baseline, idle_cores, idle_s, count, duration, notes)]


def _env(service: str, port: int, url: str, settings: Settings) -> dict[str, str]:
    return {"OTO_ENV": "dev", "OTO_SERVICE": service, "OTO_HOST": "127.0.0.1", "OTO_PORT": str(port),
            "OTO_DATABASE_URL": url, "OTO_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "OTO_KAFKA_IDEMPOTENCE": "false", "OTO_TOPIC_NAMESPACE": settings.topic_namespace,
            "OTO_MIGRATE_ON_START": "true", "OTO_LOG_LEVEL": "WARNING"}


def _measure_system(work: Path, settings: Settings, count: int,
                    idle_s: float) -> tuple[Measurement, float, list[str]]:
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(postgres_database()) for name in SERVICES}
        bases: dict[str, str] = {}
        processes: dict[str, Child] = {}
        for name in SERVICES:
            port = free_port()
            bases[name] = f"http://127.0.0.1:{port}"
            processes[name] = stack.enter_context(child(["-m", "shared.serve"], work / f"{name}.log",
                                                        _env(name, port, urls[name], settings)))
        for name in SERVICES:
            _wait_ready(processes[name], bases[name])
        started = time.monotonic()
        calls = asyncio.run(_prepare(bases["intake"], settings, count))
        asyncio.run(_station(bases["casework"], settings))
        asyncio.run(_settle(urls["intake"]))
        time.sleep(2)  # the other services take in the preparation's events
        asyncio.run(_settle(urls["casework"]))
        prepared_s = time.monotonic() - started
        plan = work / "plan.json"
        write_json(plan, {"base": bases["intake"], "calls": calls})
        load = ["-m", "bench.event_latency", "http-load", "--plan", str(plan), "--rate", str(RATE)]
        result = _drive(work, "system", load, settings.kafka_bootstrap,
                        settings.department_topic(DEPARTMENT.value), len(calls),
                        watch_pid=processes["casework"].process.pid, event_type=ASSIGNED, rate=RATE)
        idle = _idle_cores([p.process.pid for p in processes.values()], settings, idle_s)
    notes = [f"{len(calls)} households prepared to 'consented' through intake's API and "
             f"{len(SITES) * len(DISCIPLINES)} caseworkers stationed in {prepared_s:.0f} s (not measured)"]
    return result, idle, notes


async def _station(base: str, settings: Settings) -> None:
    """Two caseworkers of different disciplines at every site, so each enrolment gets a pair."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for site in SITES:
            auth = {"Authorization": "Bearer " + mint_token(settings, subject=f"bench-lead-{site}",
                                                            role="team_leader", site=site)}
            for discipline in DISCIPLINES:
                response = await http.post("/v1/staff", headers=auth, json={
                    "site_id": site, "display_name": f"{discipline} {site}", "discipline": discipline,
                    "department": DEPARTMENT.value, "fte": "1", "starts_on": "2026-01-05", "role": "staff"})
                response.raise_for_status()


def _idle_cores(pids: list[int], settings: Settings, seconds: float) -> float:
    """Cores the services use together while nothing happens, once their busy fetch wait is over."""
    time.sleep(settings.consumer_busy_seconds + 2)
    before, started = sum(process_cpu_seconds(pid) for pid in pids), time.monotonic()
    time.sleep(seconds)
    used = sum(process_cpu_seconds(pid) for pid in pids) - before
    return used / (time.monotonic() - started)


def _measure_baseline(work: Path, settings: Settings, count: int) -> Measurement:
    """Raw producer → raw relay (consume + produce) → the measuring consumer, same message."""
    source, target = (f"{settings.topic_namespace}.baseline.{name}" for name in ("hop1", "hop2"))
    asyncio.run(ensure_topics(settings, [source, target]))
    ready, stop = work / "relay.ready", work / "relay.stop"
    relay_args = ["-m", "bench.hops", "relay", "--bootstrap", settings.kafka_bootstrap, "--source", source,
                  "--target", target, "--fetch-max-wait-ms", str(settings.consumer_busy_fetch_max_wait_ms),
                  "--ready", str(ready), "--stop", str(stop)]
    with child(relay_args, work / "relay.log") as relay:
        wait_for(lambda: ready.exists() or not relay.running(), timeout=60, what="baseline relay")
        if not relay.running():
            raise RuntimeError(f"baseline relay exited:\n{relay.tail()}")
        load = ["-m", "bench.event_latency", "kafka-load", "--bootstrap", settings.kafka_bootstrap,
                "--topic", source, "--sample", str(work / "system.sample.json"), "--rate", str(RATE),
                "--count", str(count)]
        result = _drive(work, "baseline", load, settings.kafka_bootstrap, target, count,
                        event_type=ASSIGNED, rate=RATE)
        stop.touch()
        relay.wait(10)
    return result


def _section(system: Measurement, baseline: Measurement, idle_cores: float, idle_s: float, count: int,
             duration: int, notes: list[str]) -> Section:
    s, b = system.latencies, baseline.latencies
    complete = s.missing == 0 and system.failed == 0
    figures = [
        Figure("hop latency p50, enrol POST → casework's event on a department topic", "ms", s.p(50), b.p(50),
               f"< {GOAL_P50_MS:.0f} ms", s.p(50) < GOAL_P50_MS),
        Figure("hop latency p99", "ms", s.p(99), b.p(99), f"< {GOAL_P99_MS:.0f} ms", s.p(99) < GOAL_P99_MS),
        Figure("events consumed", "events", s.count, b.count, f"all {count}", complete),
        Figure(f"idle CPU of the four services together ({idle_s:.0f} s)", "cores", idle_cores, None,
               f"< {GOAL_IDLE_CORES:.2f}", idle_cores < GOAL_IDLE_CORES),
    ]
    setup = (f"{count} enrolments at {RATE:.0f}/s for {duration} s (open loop) against the four services "
             f"(`python -m shared.serve` processes, relay and consumers on, PostgreSQL) on a tansu broker; "
             f"latency from intake's enrol POST returning to casework's `makkerpar-assigned` read from "
             f"`<ns>.department.{DEPARTMENT.value}` by an aiokafka consumer (`fetch_max_wait_ms="
             f"{FETCH_MAX_WAIT_MS}`). Services' consumers: the adaptive fetch wait (busy "
             f"{Settings().consumer_busy_fetch_max_wait_ms} ms, idle {Settings().consumer_fetch_max_wait_ms}"
             f" ms). Baseline: a raw aiokafka relay process (consume with the busy wait + produce) between "
             f"a raw producer and the same consumer, same message size, same rate. Idle: CPU of the four "
             f"service processes over {idle_s:.0f} s of no traffic after the busy wait ran out.")
    all_notes = [
        f"system: {s.summary()}; {system.failed} enrol POSTs failed or were not 'enrolled'",
        f"baseline: {b.summary()}; {baseline.failed} sends failed",
        f"enrol POST took {_p50_p99(system.call_ms)}; casework process used "
        f"{system.cpu.process_share:.2f} cores during the load; machine {system.cpu.machine_busy:.0%} busy "
        f"(system run), {baseline.cpu.machine_busy:.0%} (baseline run) of {os.cpu_count()} cores",
        f"split at casework's relay producer's record timestamp (ms resolution): POST returned → "
        f"casework's relay send() {_p50_p99(system.returned_to_send)} (intake's relay, the broker, "
        f"casework's consumer, handler and commit); send() → consumed {_p50_p99(system.send_to_consumed)}; "
        f"baseline send() → consumed (after its relay) {_p50_p99(baseline.send_to_consumed)}",
        f"message value sizes: system {system.message_bytes} B, baseline {baseline.message_bytes} B",
        *notes,
    ]
    return Section("Embedded hops (intake → casework → department topic) and idle CPU", setup, figures,
                   all_notes)


# --- the child ----------------------------------------------------------------------------

async def _relay(args: argparse.Namespace) -> None:
    """Forward every record from ``source`` to ``target`` (key, value, headers) until told to stop."""
    from aiokafka import AIOKafkaConsumer

    from shared.kafka import make_producer

    consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=args.fetch_max_wait_ms)
    producer = make_producer(Settings(kafka_bootstrap=args.bootstrap, kafka_idempotence=False))
    await consumer.start()
    await producer.start()
    try:
        await _assign_at_end(consumer, args.source)
        await producer.partitions_for(args.target)
        Path(args.ready).touch()
        stop = Path(args.stop)
        while not stop.exists():
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    await producer.send(args.target, value=record.value, key=record.key,
                                        headers=list(record.headers))
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hops")
    roles = parser.add_subparsers(dest="role", required=True)
    relay = roles.add_parser("relay")
    for name in ("--bootstrap", "--source", "--target", "--ready", "--stop"):
        relay.add_argument(name, required=True)
    relay.add_argument("--fetch-max-wait-ms", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_relay(args))


if __name__ == "__main__":
    main()
