"""REST write: registering a household and enrolling it, against bare asyncpg inserts.

One *enrolment* is the flow a team goes through: ``POST /v1/households`` (register: screening,
CPR encrypted, two persons), ``POST …/outreach`` (the family agreed), ``POST …/consents`` (the
mother's consent) and ``POST …/enrol``; each a request of its own with an ``Idempotency-Key``, each
writing its rows, its outbox row and its audit entry in one transaction. The intake service runs
as in production (``python -m shared.serve``, uvicorn, one worker, relay and consumers off, so the
outbox rows stay for the relay) on its own PostgreSQL database.

The baseline (``bench/baseline_writes.py`` in ``bench.baseline_app``): the same four requests
with the same bodies, each inserting the same rows and the outbox row in one transaction over bare
asyncpg, with no checks at all. Load: a closed loop of ``connections`` concurrent enrolments from a
process of its own (``python -m bench.rest_write drive``), warm-up, then the measured run; the
runs interleave (baseline, system) at each concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import support
from bench.kafka_support import child, percentile, read_json, write_json
from bench.report import Figure, Section
from shared.departments import Department

CONNECTIONS = (16, 64)
THROUGHPUT_GOAL = 0.50
P99_GOAL = 2.0
SITE = "gellerup"
AREA = {"name": "Gellerup/Toveshøj", "streets": [{"street": "Gudrunsvej"}]}
#: Each run draws its CPR numbers from a block of its own (a number in two households is a 409).
BLOCK = 200_000
TIMEOUT_S = 60
#: Long enough for a few thousand samples even in a quick run.
PROFILE_SECONDS = 12


@dataclass(frozen=True)
class Run:
    """One measured run: enrolments (4 requests each) and their latencies in ms."""

    flows: int
    seconds: float
    flow_p50_ms: float
    flow_p99_ms: float
    request_p50_ms: float
    request_p99_ms: float
    failed: int
    #: Enrolments abandoned when a request took over ``TIMEOUT_S`` (not in the latencies).
    timeouts: int = 0
    cpu_ms: float | None = None

    @property
    def rate(self) -> float:
        return self.flows / self.seconds if self.seconds else 0.0


#: How the write path got here (issue 14), each step measured before the next on a shared machine
#: (load average 5–13): kept in the report with the figures it explains.
STEPS = (Path(__file__).parent / "steps" / "rest_write.md").read_text()


def run(*, quick: bool) -> list[Section]:
    seconds, warmup = (4, 2) if quick else (15, 5)
    with support.scratch_dir("rest-write") as scratch, \
            support.throwaway_database("intake", "write") as database:
        results, profile, rows = _measure(database, scratch, seconds=seconds, warmup=warmup)
    return [_section(results, profile, rows, seconds, warmup, quick)]


# --- measuring ----------------------------------------------------------------------------

Results = dict[tuple[str, int], Run]
Profile = dict[str, float] | None


@contextlib.contextmanager
def _servers(database: support.Database, scratch: Path) -> Iterator[tuple[support.Server, support.Server]]:
    env = {**support.service_env("intake", database, support.new_port()), "BENCH_BASELINE_DSN": database.dsn}
    with support.serving("baseline", "bench.baseline_app", env, scratch) as baseline, \
            support.serving("intake", "shared.serve",
                            support.service_env("intake", database, support.new_port()), scratch) as system:
        yield baseline, system


def _prepare(system: support.Server) -> None:
    """A site with room for every family the runs enrol, and its target area (so they are eligible)."""
    admin = {"Authorization": f"Bearer {support.bearer('admin')}"}
    created = httpx.post(f"{system.url}/v1/sites", headers=admin, timeout=10,
                         json={"id": SITE, "name": "Gellerup", "capacity": 10_000})
    area = httpx.put(f"{system.url}/v1/sites/{SITE}/area", headers=admin, json=AREA, timeout=10)
    for response in (created, area):
        if response.status_code not in (200, 201):
            raise RuntimeError(f"preparing the site failed: {response.status_code} {response.text[:300]}")


def _measure(database: support.Database, scratch: Path, *, seconds: float,
             warmup: float) -> tuple[Results, Profile, dict[str, int]]:
    results: Results = {}
    block = iter(range(0, 100 * BLOCK, BLOCK))
    with _servers(database, scratch) as (baseline, system):
        _prepare(system)
        sides = (("baseline", baseline, "/bench"), ("system", system, "/v1"))
        for connections in CONNECTIONS:
            for kind, server, prefix in sides:
                print(f"   {kind}, {connections} connections", flush=True)
                _drive(scratch, server, prefix, connections, warmup, next(block), "warm-up")
                before = server.cpu_seconds()
                measured = _drive(scratch, server, prefix, connections, seconds, next(block), kind)
                cpu = server.cpu_seconds() - before
                if measured.failed:
                    raise RuntimeError(f"{measured.failed} enrolments against {kind} failed; log:\n"
                                       f"{server.log_tail()}")
                results[kind, connections] = Run(**{**measured.__dict__, "cpu_ms": 1000 * cpu / max(
                    1, 4 * measured.flows)})
        print("   profile of the system", flush=True)
        profiled = max(seconds, PROFILE_SECONDS)
        profile = support.profile_under(
            system, scratch / "profile.txt", seconds=round(profiled), load=lambda: _drive(
                scratch, system, "/v1", CONNECTIONS[0], profiled, next(block), "profile"))
    return results, profile, _rows(database)


def _drive(scratch: Path, server: support.Server, prefix: str, connections: int, seconds: float,
           start: int, label: str) -> Run:
    out = scratch / f"{label}-{connections}-{start}.json"
    token = support.team_token(SITE)
    args = ["-m", "bench.rest_write", "drive", "--base", server.url, "--prefix", prefix, "--token", token,
            "--connections", str(connections), "--seconds", str(seconds), "--start", str(start),
            "--out", str(out)]
    with child(args, scratch / f"drive-{label}.log") as driver:
        if driver.wait(seconds + 120) != 0:
            raise RuntimeError(f"the load generator failed:\n{driver.tail()}")
    data = read_json(out)
    return Run(**data)


def _rows(database: support.Database) -> dict[str, int]:
    """What the runs left, per table (system and baseline together)."""
    async def count() -> dict[str, int]:
        conn = await asyncpg.connect(database.dsn)
        try:
            return {table: int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
                    for table in ("households", "persons", "outbox", "audit_log", "idempotency_keys")}
        finally:
            await conn.close()

    return asyncio.run(count())


# --- the load generator (child process) -----------------------------------------------------

def _cpr(index: int, *, child: bool) -> str:
    """A valid CPR number unique per index: mothers born 1960–89 (7th digit 0–3), children 2010–19 (4)."""
    day, month = index % 28 + 1, index // 28 % 12 + 1
    if child:
        return f"{day:02d}{month:02d}{10 + index // 336 % 10:02d}-{4000 + index // 3360 % 1000:04d}"
    return f"{day:02d}{month:02d}{60 + index // 336 % 30:02d}-{index // 10080 % 4000:04d}"


async def _enrol(http: httpx.AsyncClient, prefix: str, auth: str, index: int,
                 request_ms: list[float]) -> bool:
    """One enrolment, four requests; whether each answered as the flow needs."""
    async def post(path: str, body: Any, expected: int) -> dict[str, Any] | None:
        began = time.perf_counter()
        headers = {"Authorization": auth, "Idempotency-Key": str(uuid.uuid4())}
        try:
            response = await http.post(f"{prefix}{path}", json=body, headers=headers)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # A kept-alive connection the server closed as the request went out: sent again
            # with the same key, as a client of an idempotent POST does (answered once).
            response = await http.post(f"{prefix}{path}", json=body, headers=headers)
        request_ms.append((time.perf_counter() - began) * 1000)
        if response.status_code != expected:
            print(f"{path}: {response.status_code} {response.text[:200]}", flush=True)
            return None
        return dict(response.json())

    address = f"Gudrunsvej {index % 90 + 1}, 8220 Brabrand"
    created = await post("/households", {"site_id": SITE, "address": address, "members": [
        {"cpr": _cpr(index, child=False), "role": "mother", "unemployed_since": "2016-03-01"},
        {"cpr": _cpr(index, child=True), "role": "child"}]}, 201)
    if created is None:
        return False
    family, mother = created["id"], created["members"][0]["id"]
    if await post(f"/households/{family}/outreach", {"at": "2026-03-02T16:30:00Z", "outcome": "agreed"},
                  201) is None:
        return False
    if await post(f"/households/{family}/consents", {
            "person_id": mother, "given_by_person_id": mother, "purposes": ["coordinated_help"],
            "departments": [Department.HEALTH_AND_CARE.value]}, 201) is None:
        return False
    enrolled = await post(f"/households/{family}/enrol", None, 200)
    return enrolled is not None and enrolled.get("status") == "enrolled"


async def _load(args: argparse.Namespace) -> None:
    """Closed loop: ``connections`` enrolments in flight until the time is up."""
    auth, flows_ms, request_ms = f"Bearer {args.token}", [], []
    failed, timeouts, counter = 0, 0, iter(range(args.start, args.start + BLOCK))
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
    began = time.perf_counter()
    deadline = began + args.seconds
    async with httpx.AsyncClient(base_url=args.base, timeout=TIMEOUT_S, limits=limits) as http:

        async def worker() -> None:
            nonlocal failed, timeouts
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    done = await _enrol(http, args.prefix, auth, next(counter), request_ms)
                except httpx.TimeoutException:
                    timeouts += 1  # a machine too busy, not a wrong answer: reported, not fatal
                    continue
                except httpx.HTTPError as error:
                    print(f"enrolment failed: {error!r}", flush=True)
                    done = False
                if done:
                    flows_ms.append((time.perf_counter() - started) * 1000)
                else:
                    failed += 1

        await asyncio.gather(*(worker() for _ in range(args.connections)))
    elapsed = time.perf_counter() - began
    flows_ms.sort()
    request_ms.sort()
    write_json(Path(args.out), {
        "flows": len(flows_ms), "seconds": elapsed, "failed": failed, "timeouts": timeouts,
        "flow_p50_ms": percentile(flows_ms, 50), "flow_p99_ms": percentile(flows_ms, 99),
        "request_p50_ms": percentile(request_ms, 50), "request_p99_ms": percentile(request_ms, 99)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rest_write")
    roles = parser.add_subparsers(dest="role", required=True)
    drive = roles.add_parser("drive")
    for name in ("--base", "--prefix", "--token", "--out"):
        drive.add_argument(name, required=True)
    drive.add_argument("--connections", type=int, required=True)
    drive.add_argument("--seconds", type=float, required=True)
    drive.add_argument("--start", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_load(args))


# --- the report ---------------------------------------------------------------------------

def _figures(results: Results) -> list[Figure]:
    figures = []
    for connections in CONNECTIONS:
        system, base = results["system", connections], results["baseline", connections]
        where = f"register + enrol (4 POSTs), {connections} conns"
        figures += [
            Figure(f"{where}: throughput", "enrolments/s", system.rate, base.rate,
                   goal=f">= {THROUGHPUT_GOAL:.2f} x baseline",
                   met=system.rate >= THROUGHPUT_GOAL * base.rate),
            Figure(f"{where}: p50 per enrolment", "ms", system.flow_p50_ms, base.flow_p50_ms),
            Figure(f"{where}: p99 per enrolment", "ms", system.flow_p99_ms, base.flow_p99_ms,
                   goal=f"<= {P99_GOAL} x baseline", met=system.flow_p99_ms <= P99_GOAL * base.flow_p99_ms),
            Figure(f"{where}: p99 per request", "ms", system.request_p99_ms, base.request_p99_ms),
        ]
    return figures


def _notes(results: Results, profile: Profile, rows: dict[str, int]) -> list[str]:
    cpu = "; ".join(f"{c} conns: system {results['system', c].cpu_ms or 0:.2f} ms, baseline "
                    f"{results['baseline', c].cpu_ms or 0:.2f} ms" for c in CONNECTIONS)
    timed_out = [f"{kind} at {c} conns: {run.timeouts}" for (kind, c), run in results.items() if run.timeouts]
    return [
        *([f"Enrolments abandoned after a request took over {TIMEOUT_S} s (the machine was overloaded; "
           f"not in the latencies): " + "; ".join(timed_out) + "."] if timed_out else []),
        f"Server CPU per write request (steadier than rates on a busy machine): {cpu}. One uvicorn "
        f"worker is one core at most, so the CPU per request bounds the throughput.",
        "Rows after the runs (system and baseline together): "
        + ", ".join(f"{table} {count:,}" for table, count in rows.items()) + ".",
        "No CPU profile: py-spy is not installed (`.venv/bin/pip install py-spy`)." if profile is None
        else f"Where the service's CPU goes (py-spy samples, {CONNECTIONS[0]} conns): "
        + ", ".join(f"{name} {share:.0%}" for name, share in profile.items()) + ".",
    ]


def _section(results: Results, profile: Profile, rows: dict[str, int], seconds: float, warmup: float,
             quick: bool) -> Section:
    setup = (f"Intake on its own PostgreSQL database, served by `python -m shared.serve` (uvicorn, one "
             f"worker; relay and consumers off, the outbox rows stay for the relay). One enrolment = "
             f"register a household of two (screened, CPR encrypted), record the outreach, the mother's "
             f"consent, enrol: 4 POSTs with Idempotency-Keys, each its rows + outbox row + audit entry "
             f"in one transaction. Baseline: `bench/baseline_writes.py`, bare FastAPI + asyncpg, the "
             f"same 4 POSTs and bodies inserting the same rows, outbox row, audit entry and idempotency "
             f"record in one transaction each, no checks. Load: closed loop of N concurrent enrolments "
             f"(httpx, a process of its own), {warmup:.0f} s warm-up then {seconds:.0f} s per run, "
             f"runs interleaved."
             + (" Quick run: indicative only." if quick else ""))
    return Section("REST write: register and enrol a household", setup, _figures(results),
                   _notes(results, profile, rows), history=STEPS)


if __name__ == "__main__":
    main()
