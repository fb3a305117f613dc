"""Scale: intake with 100,000 families and their history against the same endpoints on 100.

The baseline is the same service and endpoint on a small database in the same run, so the ratio
shows what the data volume costs: list (first page and pages reached by following the cursor),
the team view of one household and a department's slice, at a fixed concurrency. The query
plans behind them are checked with EXPLAIN on the large database, the statements per request
are counted (an N+1 would grow with the page), and a steady read/list load shows whether the
service's memory stays flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import support
from bench.report import Figure, Section
from bench.seed import CITY_SITES, Family, SeedResult, seed_intake_sync
from services.intake.domain import DEFAULT_SITES
from shared.departments import Department

SMALL = 100
LARGE = 100_000
SITE = "gellerup"
#: The large database's households per site (the pilot's three sites are the busiest).
SITE_WEIGHTS = [15, 12, 6] + [7.4] * (len(CITY_SITES) - 3)
PAGES = 5
#: The site with the fewest households in the large database (its list filters the most).
SMALLEST_SITE = "tilst"
#: An index scan that reads and drops more rows than this for a page of 50 is flagged.
FILTERED_ROWS_FLAG = 200
CONNECTIONS = 8
MEMORY_CONNECTIONS = 16
#: The steady load's mix, in per cent of requests.
MEMORY_MIX = {"read": 50, "list": 10, "next": 20, "slice": 20}
DEPARTMENT = Department.CHILDREN_AND_YOUNG_PEOPLE
P99_GOAL = 1.5
MEMORY_GOAL = 0.10
ENDPOINTS = {
    "list": f"list, first page (GET /v1/households?site_id={SITE}&limit=50)",
    "next": "list, later pages by following next_cursor",
    "read": "team view (GET /v1/households/{id})",
    "slice": "department slice (GET /v1/families/{id}/slice)",
}


@dataclass(frozen=True)
class Timing:
    seconds: float
    warmup: float
    memory: float
    memory_warmup: float
    sample_every: float


@dataclass
class Measured:
    """One database's figures, the statements each endpoint ran, and the pages followed."""

    results: dict[str, support.LoadResult]
    statements: dict[str, int]
    pages: int


@dataclass(frozen=True)
class Memory:
    samples: list[tuple[float, float]]
    load: support.LoadResult

    @property
    def start(self) -> float:
        return self.samples[0][1]

    @property
    def end(self) -> float:
        return self.samples[-1][1]


def run(*, quick: bool) -> list[Section]:
    support.ensure_wrk()
    timing = Timing(3, 1, 30, 5, 2) if quick else Timing(15, 5, 600, 30, 5)
    with support.scratch_dir("scale") as scratch, \
            support.throwaway_database("intake", "small") as small_db, \
            support.throwaway_database("intake", "large") as large_db:
        print(f"   seeding {SMALL} and {LARGE:,} households", flush=True)
        small_seed = seed_intake_sync(small_db.dsn, households=SMALL,
                                      sites=[s for s in DEFAULT_SITES if s.id == SITE])
        large_seed = seed_intake_sync(large_db.dsn, households=LARGE, sites=CITY_SITES,
                                      weights=SITE_WEIGHTS)
        plans = asyncio.run(_explain(large_db, large_seed.families))
        small, large, memory = _measure(small_db, small_seed, large_db, large_seed, scratch, timing)
        sizes = asyncio.run(_table_sizes(large_db))
    return [_section(small, large, memory, large_seed, plans, sizes, timing, quick)]


# --- targets ------------------------------------------------------------------------------

def _follow_pages(server: support.Server, limit: int) -> list[str]:
    """The list's first page and the next ones by their cursors, as a client pages through."""
    first = f"/v1/households?site_id={SITE}&limit=50"
    paths, path = [first], first
    headers = {"Authorization": f"Bearer {support.team_token(SITE)}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        while len(paths) < limit:
            response = client.get(path)
            response.raise_for_status()
            cursor = response.json()["next_cursor"]
            if cursor is None:
                break
            path = f"{first}&cursor={cursor}"
            paths.append(path)
    return paths


def _targets(server: support.Server, families: Sequence[Family], folder: Path,
             label: str) -> dict[str, Path]:
    pages = _follow_pages(server, PAGES)
    if len(pages) < 2:
        raise RuntimeError(f"the {label} database has one list page only; the seed is wrong")
    sample = random.Random(3).sample(list(families), min(1000, len(families)))
    department = support.bearer("department_staff", department=DEPARTMENT.value)
    token = support.team_token(SITE)
    chosen = {
        "list": [support.Target(pages[0], token)],
        "next": [support.Target(path, token) for path in pages[1:]],
        "read": [support.Target(f"/v1/households/{f.id}", support.team_token(f.site_id)) for f in sample],
        "slice": [support.Target(f"/v1/families/{f.id}/slice", department)
                  for f in families if DEPARTMENT.value in f.seen_by][:1000],
    }
    return {kind: support.write_targets(folder / f"{label}-{kind}.txt", targets)
            for kind, targets in chosen.items()}


# --- measuring ----------------------------------------------------------------------------

@contextlib.contextmanager
def _service(database: support.Database, scratch: Path, label: str) -> Iterator[support.Server]:
    port = support.new_port()
    with support.serving(f"intake-{label}", "shared.serve",
                         support.service_env("intake", database, port), scratch) as server:
        yield server


def _measure(small_db: support.Database, small_seed: SeedResult, large_db: support.Database,
             large_seed: SeedResult, scratch: Path, timing: Timing) -> tuple[Measured, Measured, Memory]:
    """Both services up; each endpoint on the small then the large database, back to back, so a
    slow spell on the machine does not fall on one side only. Then the memory run (large)."""
    results: dict[str, dict[str, support.LoadResult]] = {"small": {}, "large": {}}
    with _service(small_db, scratch, "small") as small_server, \
            _service(large_db, scratch, "large") as large_server:
        servers = {"small": small_server, "large": large_server}
        targets = {"small": _targets(small_server, small_seed.families, scratch, "small"),
                   "large": _targets(large_server, large_seed.families, scratch, "large")}
        for kind in ENDPOINTS:
            for label, server in servers.items():
                print(f"   {label}: {kind}", flush=True)
                results[label][kind] = support.measure(server, targets[label][kind],
                                                       connections=CONNECTIONS, seconds=timing.seconds,
                                                       warmup=timing.warmup)
        memory = _memory(large_server, targets["large"], scratch, timing)
    measured = tuple(Measured(results[label], _statements(db, targets[label]),
                              len(targets[label]["next"].read_text().splitlines()) + 1)
                     for label, db in (("small", small_db), ("large", large_db)))
    return measured[0], measured[1], memory


def _statements(database: support.Database, targets: dict[str, Path]) -> dict[str, int]:
    """Statements per request, one request of each kind: equal on both databases unless some
    query runs per row (N+1)."""
    one = {kind: path.read_text().splitlines()[-1].split("\t") for kind, path in targets.items()}
    counts = support.statement_counts("intake", database, [
        support.Target(path, token) for path, token in one.values()])
    return dict(zip(one, counts, strict=True))


def _memory(server: support.Server, targets: dict[str, Path], scratch: Path,
            timing: Timing) -> Memory:
    """Steady mixed load (reads, list pages, slices); RSS sampled from /proc while it runs."""
    mixed = []
    for kind, percent in MEMORY_MIX.items():
        lines = targets[kind].read_text().splitlines()
        mixed += [support.Target(*lines[i % len(lines)].split("\t")) for i in range(10 * percent)]
    path = support.write_targets(scratch / "memory.txt", mixed)
    print(f"   large: steady load for {timing.memory:.0f} s, RSS every {timing.sample_every:.0f} s",
          flush=True)
    support.run_wrk(server.url, path, connections=MEMORY_CONNECTIONS, seconds=timing.memory_warmup)
    process = support.start_wrk(server.url, path, connections=MEMORY_CONNECTIONS, seconds=timing.memory)
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    try:
        while process.poll() is None and time.monotonic() - started < timing.memory + 30:
            samples.append((time.monotonic() - started, server.rss_mib()))
            time.sleep(timing.sample_every)
    finally:
        load = support.finish_wrk(process, timeout=timing.memory + 60)
    if load.errors:
        raise RuntimeError(f"{load.errors} failed requests in the memory run:\n{server.log_tail()}")
    return Memory(samples, load)


# --- query plans --------------------------------------------------------------------------

async def _explain(database: support.Database, families: Sequence[Family]) -> list[str]:
    """EXPLAIN ANALYZE the queries behind the measured endpoints, as the service issues them,
    with real values; flag sequential scans, sorts of more than a page and index scans that read
    many rows only to filter them out."""
    waitlisted = next(f for f in families if f.status == "waitlisted")
    visible = next(f for f in families if DEPARTMENT.value in f.seen_by)
    conn = await asyncpg.connect(database.dsn)
    try:
        cursor_id = await conn.fetchval("SELECT id FROM households WHERE site_id = $1 ORDER BY id "
                                        "OFFSET 200 LIMIT 1", SITE)
        waitlisted_at = await conn.fetchval("SELECT waitlisted_at FROM households WHERE id = $1",
                                            waitlisted.id)
        queries: list[tuple[str, str, tuple[Any, ...]]] = [
            ("list, first page", "SELECT * FROM households WHERE site_id = $1 ORDER BY id LIMIT 51",
             (SITE,)),
            ("list, after a cursor", "SELECT * FROM households WHERE site_id = $1 AND id > $2 "
             "ORDER BY id LIMIT 51", (SITE, cursor_id)),
            ("list at the smallest site", "SELECT * FROM households WHERE site_id = $1 "
             "ORDER BY id LIMIT 51", (SMALLEST_SITE,)),
            ("list by status at the smallest site", "SELECT * FROM households WHERE site_id = $1 "
             "AND status = $2 ORDER BY id LIMIT 51", (SMALLEST_SITE, "identified")),
            ("household by id", "SELECT * FROM households WHERE id = $1", (waitlisted.id,)),
            ("members", "SELECT * FROM persons WHERE household_id = $1 AND active "
             "ORDER BY added_at, id", (waitlisted.id,)),
            ("waitlist position", "SELECT count(*) FROM households WHERE site_id = $1 AND "
             "status = 'waitlisted' AND waitlisted_at < $2", (waitlisted.site_id, waitlisted_at)),
            ("slice events", "SELECT * FROM outbox WHERE partition_key = $1 ORDER BY id LIMIT 1000",
             (str(visible.id),)),
        ]
        return [await _plan(conn, name, sql, args) for name, sql, args in queries]
    finally:
        await conn.close()


async def _plan(conn: asyncpg.Connection, name: str, sql: str, args: tuple[Any, ...]) -> str:
    raw = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
    document = json.loads(raw)[0]
    nodes = list(_nodes(document["Plan"]))
    described = ", ".join(dict.fromkeys(
        f"{n['Node Type']}{' on ' + n['Index Name'] if 'Index Name' in n else ''}"
        f"{' of ' + n['Relation Name'] if 'Relation Name' in n and 'Index Name' not in n else ''}"
        for n in nodes))
    flags = [f"**{n['Node Type']} of {n.get('Relation Name', '?')}**" for n in nodes
             if n["Node Type"] == "Seq Scan"]
    flags += [f"**Sort of {n.get('Actual Rows', 0):,} rows**" for n in nodes
              if n["Node Type"] == "Sort" and n.get("Actual Rows", 0) > 51]
    flags += [f"**{n['Rows Removed by Filter']:,} rows read and filtered out**" for n in nodes
              if n.get("Rows Removed by Filter", 0) > FILTERED_ROWS_FLAG]
    verdict = "; ".join(flags) if flags else "no sequential scan, no wide sort or filter"
    return f"{name}: {described} ({document['Execution Time']:.2f} ms; {verdict})"


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _table_sizes(database: support.Database) -> dict[str, int]:
    conn = await asyncpg.connect(database.dsn)
    try:
        rows = await conn.fetch("SELECT relname, n_live_tup FROM pg_stat_user_tables")
        return {r["relname"]: int(r["n_live_tup"]) for r in rows}
    finally:
        await conn.close()


# --- the report ---------------------------------------------------------------------------

def _figures(small: Measured, large: Measured, memory: Memory) -> list[Figure]:
    figures = []
    for kind, label in ENDPOINTS.items():
        big, base = large.results[kind], small.results[kind]
        figures += [
            Figure(f"{label}: p50", "ms", big.p50_ms, base.p50_ms),
            Figure(f"{label}: p99", "ms", big.p99_ms, base.p99_ms,
                   goal=f"<= {P99_GOAL} x small-db p99", met=big.p99_ms <= P99_GOAL * base.p99_ms),
        ]
    growth = (memory.end - memory.start) / memory.start
    figures.append(Figure("service RSS: end of the steady load vs its start", "MiB", memory.end,
                          memory.start, goal=f"growth < {MEMORY_GOAL:.0%}", met=growth < MEMORY_GOAL))
    return figures


def _notes(small: Measured, large: Measured, seed: SeedResult, plans: list[str],
           sizes: dict[str, int], memory: Memory) -> list[str]:
    rows = ", ".join(f"{table} {count:,}" for table, count in seed.rows.items())
    notes = [f"Seeded {LARGE:,} households in {seed.seconds:.0f} s (COPY in batches of 5,000): "
             f"{rows}. After the runs: audit_log {sizes.get('audit_log', 0):,} rows."]
    notes.append(f"Throughput at {CONNECTIONS} conns, large vs small: " + ", ".join(
        f"{kind} {large.results[kind].rps:,.0f} vs {small.results[kind].rps:,.0f} req/s"
        for kind in ENDPOINTS) + ". Service CPU per request (steadier than latency on a busy "
        "machine), large vs small: " + ", ".join(
        f"{kind} {large.results[kind].cpu_ms or 0:.2f} vs {small.results[kind].cpu_ms or 0:.2f} ms"
        for kind in ENDPOINTS) + ".")
    notes.append(f"Pages followed: {large.pages} on the large database, {small.pages} on the small "
                 f"one (100 households there: 2 pages of 50).")
    notes.append("Statements per request (in-process count; equal on both sizes means no N+1): "
                 + ", ".join(f"{kind} {large.statements[kind]} vs {small.statements[kind]}"
                             for kind in ENDPOINTS) + ".")
    notes += [f"EXPLAIN ANALYZE on {LARGE:,}: {plan}." for plan in plans]
    growth = (memory.end - memory.start) / memory.start
    notes.append(
        f"Memory: steady load ({', '.join(f'{k} {v}%' for k, v in MEMORY_MIX.items())}; "
        f"{MEMORY_CONNECTIONS} conns, "
        f"{memory.load.rps:,.0f} req/s, {memory.load.requests:,} requests); RSS {memory.start:.1f} "
        f"MiB after warm-up, {memory.end:.1f} MiB at the end ({growth:+.1%}), slope "
        f"{support.slope_per_minute(memory.samples):+.2f} MiB/min over {len(memory.samples)} "
        f"samples; peak {max(v for _, v in memory.samples):.1f} MiB.")
    return notes


def _section(small: Measured, large: Measured, memory: Memory, seed: SeedResult, plans: list[str],
             sizes: dict[str, int], timing: Timing, quick: bool) -> Section:
    setup = (f"Intake on PostgreSQL with {LARGE:,} households over {len(CITY_SITES)} sites ({SITE} "
             f"~{SITE_WEIGHTS[0] / sum(SITE_WEIGHTS):.0%}) with their history (persons with CPR "
             f"encrypted and hashed by the project's `CprVault`, real screening, outreach, consents "
             f"and history, the outbox as published), seeded by `bench/seed.py` into a database "
             f"migrated by intake's migrations; baseline: the same service and endpoints on a database "
             f"of {SMALL} households at {SITE}, same run, runs interleaved. Service: `python -m "
             f"shared.serve` (relay and consumers off). wrk, {CONNECTIONS} connections, "
             f"{timing.warmup:.0f} s warm-up + {timing.seconds:.0f} s per endpoint; memory: "
             f"{timing.memory / 60:g} min steady load after {timing.memory_warmup:.0f} s warm-up, RSS "
             f"from /proc every {timing.sample_every:.0f} s. Casework is not seeded (intake only)."
             + (" Quick run: indicative only." if quick else ""))
    return Section("Scale: 100,000 families", setup, _figures(small, large, memory),
                   _notes(small, large, seed, plans, sizes, memory))
