"""REST read: a family read from the owning service (intake) on PostgreSQL, against the audited
baseline: a bare FastAPI + asyncpg endpoint reading the same household row and writing the audit
entry in the same transaction (``bench/baseline_app.py``, ``/audited``), the physical limit of a
read that must leave an audit trace. The bare read without the audit is measured too.

Three system reads: the team view (``GET /v1/households/{id}``, team staff of the family's site),
a department's slice (``GET /v1/families/{id}/slice``, department staff whose department has
events about the family) and the first page of a site's household list
(``GET /v1/households?site_id=…&limit=50``, team staff of that site). Each at 16 and 64
keep-alive connections from wrk in a process of its own, after a warm-up; the service runs as
in production (``python -m shared.serve``, uvicorn, one worker, JSON logs to a file) without the
relay and consumers, which a read does not use.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from bench import support
from bench.report import Figure, Section
from bench.seed import Family, seed_intake_sync
from shared.departments import Department

HOUSEHOLDS = 400
CONNECTIONS = (16, 64)
DEPARTMENT = Department.HEALTH_AND_CARE
#: Against the audited baseline (issue 14): at least half its throughput, at most twice its p99.
THROUGHPUT_GOAL = 0.50
P99_GOAL = 2.0
LIST_LIMIT = 50


@dataclass(frozen=True)
class Timing:
    seconds: float
    warmup: float


@dataclass(frozen=True)
class Targets:
    """Target files for wrk, one per kind of request."""

    team: Path
    slice: Path
    list: Path
    baseline: Path
    audited: Path
    audited_list: Path


#: How the read path got here, each step profiled before the next (service CPU per read at 16
#: connections against the audited baseline in the same run; quick runs on a shared machine
#: except where it says full). Kept in the report with the figures it explains.
STEPS = (Path(__file__).parent / "steps" / "rest_read.md").read_text()


def run(*, quick: bool) -> list[Section]:
    support.ensure_wrk()
    timing = Timing(3, 1) if quick else Timing(15, 5)
    with support.scratch_dir("rest-read") as scratch, \
            support.throwaway_database("intake", "read") as database:
        seeded = seed_intake_sync(database.dsn, households=HOUSEHOLDS)
        targets = _write_targets(scratch, seeded.families)
        results, profile = _measure(database, scratch, targets, timing)
        statements = _statements(database, seeded.families)
        audited = _audit_rows(database)
    return [_section(results, profile, statements, audited, timing, quick)]


# --- targets ------------------------------------------------------------------------------

def _write_targets(folder: Path, families: Sequence[Family]) -> Targets:
    team = [support.Target(f"/v1/households/{f.id}", support.team_token(f.site_id)) for f in families]
    department = support.bearer("department_staff", department=DEPARTMENT.value)
    slices = [support.Target(f"/v1/families/{f.id}/slice", department)
              for f in families if DEPARTMENT.value in f.seen_by]
    audited = [support.Target(f"{t.path}/audited", t.token) for t in team]
    pages = [support.Target(f"/v1/households?site_id={site}&limit={LIST_LIMIT}", support.team_token(site))
             for site in sorted({f.site_id for f in families})]
    list_limit = [support.Target(f"/bench/list-audited?site_id={site}&limit={LIST_LIMIT}",
                                 support.team_token(site)) for site in sorted({f.site_id for f in families})]
    return Targets(team=support.write_targets(folder / "team.txt", team),
                   slice=support.write_targets(folder / "slice.txt", slices),
                   list=support.write_targets(folder / "list.txt", pages),
                   baseline=support.write_targets(folder / "baseline.txt", team),
                   audited=support.write_targets(folder / "audited.txt", audited),
                   audited_list=support.write_targets(folder / "audited-list.txt", list_limit))


def _first_target(path: Path) -> support.Target:
    line = path.read_text().splitlines()[0]
    url, token = line.split("\t")
    return support.Target(url, token)


def _check(server: support.Server, target: support.Target) -> dict[str, object]:
    """One request before loading: the right answer, not an error page that would be cheaper."""
    response = httpx.get(f"{server.url}{target.path}", timeout=10,
                         headers={"Authorization": f"Bearer {target.token}"})
    if response.status_code != 200:
        raise RuntimeError(f"{target.path} answered {response.status_code}: {response.text[:300]}")
    body: dict[str, object] = response.json()
    return body


# --- measuring ----------------------------------------------------------------------------

Results = dict[tuple[str, int], support.LoadResult]
Profile = dict[str, float] | None


@contextlib.contextmanager
def _baseline_server(database: support.Database, scratch: Path) -> Iterator[support.Server]:
    port = support.new_port()
    env = {**support.service_env("intake", database, port), "BENCH_BASELINE_DSN": database.dsn}
    with support.serving("baseline", "bench.baseline_app", env, scratch) as server:
        yield server


def _measure(database: support.Database, scratch: Path, targets: Targets,
             timing: Timing) -> tuple[Results, Profile]:
    """Both servers up, runs interleaved (baseline, team, slice, baseline + audit at each
    concurrency), so a slow spell on the machine does not fall on one side only. Last, a run
    of the team view under py-spy (if installed) shows where the service's CPU goes."""
    results: Results = {}
    port = support.new_port()
    with _baseline_server(database, scratch) as baseline, \
            support.serving("intake", "shared.serve", support.service_env("intake", database, port),
                            scratch) as system:
        _check(baseline, _first_target(targets.baseline))
        _check(baseline, _first_target(targets.audited))
        if not _check(baseline, _first_target(targets.audited_list)).get("items"):
            raise RuntimeError("the audited list baseline's page is empty: the seed is wrong")
        if not _check(system, _first_target(targets.team)).get("members"):
            raise RuntimeError("the team view has no members: the seed is wrong")
        if not _check(system, _first_target(targets.slice)).get("events"):
            raise RuntimeError("the department slice is empty: the seed is wrong")
        if not _check(system, _first_target(targets.list)).get("items"):
            raise RuntimeError("the household list is empty: the seed is wrong")
        runs = (("audited", baseline, targets.audited), ("team", system, targets.team),
                ("slice", system, targets.slice), ("list", system, targets.list),
                ("audited_list", baseline, targets.audited_list), ("baseline", baseline, targets.baseline))
        for connections in CONNECTIONS:
            for kind, server, path in runs:
                print(f"   {kind}, {connections} connections", flush=True)
                results[kind, connections] = support.measure(
                    server, path, connections=connections, seconds=timing.seconds,
                    warmup=timing.warmup)
        print("   profile of the team view", flush=True)
        profile = support.profile_shares(system, targets.team, scratch / "profile.txt",
                                         connections=CONNECTIONS[0], seconds=round(timing.seconds))
    return results, profile


def _statements(database: support.Database, families: Sequence[Family]) -> dict[str, support.Count]:
    """SQL statements and transactions per read, counted in-process: the round trips."""
    family = next(f for f in families if DEPARTMENT.value in f.seen_by)
    department = support.bearer("department_staff", department=DEPARTMENT.value)
    team, slice_, page = support.round_trip_counts("intake", database, [
        support.Target(f"/v1/households/{family.id}", support.team_token(family.site_id)),
        support.Target(f"/v1/families/{family.id}/slice", department),
        support.Target(f"/v1/households?site_id={family.site_id}&limit={LIST_LIMIT}",
                       support.team_token(family.site_id))])
    return {"team": team, "slice": slice_, "list": page}


def _audit_rows(database: support.Database) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(database.dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM audit_log WHERE actor <> 'baseline'"))
        finally:
            await conn.close()

    return asyncio.run(count())


# --- the report ---------------------------------------------------------------------------

VIEWS = {"team": "team view (GET /v1/households/{id})",
         "slice": "department slice (GET /v1/families/{id}/slice)",
         "list": f"household list, first page (GET /v1/households?site_id=…&limit={LIST_LIMIT})"}


def _figures(results: Results) -> list[Figure]:
    figures = []
    for kind, label in VIEWS.items():
        for connections in CONNECTIONS:
            figures += _against(f"{label}, {connections} conns", results[kind, connections],
                                results["audited", connections], "audited")
    for connections in CONNECTIONS:  # the list page against the limit of a page with its entry
        figures += _against(f"household list, first page, against the audited list baseline, "
                            f"{connections} conns", results["list", connections],
                            results["audited_list", connections], "audited list")
    return figures


def _against(where: str, system: support.LoadResult, base: support.LoadResult,
             yardstick: str) -> list[Figure]:
    """Throughput, p50 and p99 of a read against its yardstick, with the issue's goals."""
    return [
        Figure(f"{where}: throughput", "req/s", system.rps, base.rps,
               goal=f">= {THROUGHPUT_GOAL:.2f} x {yardstick}", met=system.rps >= THROUGHPUT_GOAL * base.rps),
        Figure(f"{where}: p50", "ms", system.p50_ms, base.p50_ms),
        Figure(f"{where}: p99", "ms", system.p99_ms, base.p99_ms,
               goal=f"<= {P99_GOAL} x {yardstick}", met=system.p99_ms <= P99_GOAL * base.p99_ms),
    ]


def _gap(results: Results) -> str:
    """The gap in one sentence, from the server CPU each read costs (16 conns)."""
    first = CONNECTIONS[0]
    team, base, audited = (results[kind, first].cpu_ms or 0.0 for kind in ("team", "baseline", "audited"))
    if not audited:
        return "No CPU figures: the gap cannot be split."
    return (f"Server CPU per read bounds the throughput of one worker: the team view costs the "
            f"service {team:.2f} ms per read against the audited baseline's {audited:.2f} ms "
            f"({team / audited:.1f}x; the bare read without the audit {base:.2f} ms). The read "
            f"itself takes fewer round trips than the baseline (below); what the service spends "
            f"on top is the stack every endpoint shares (FastAPI's routing and dependency "
            f"resolution, the middleware) and the answer's own work (CPR masking, the slice "
            f"policy): profile below.")


def _database_share(results: Results) -> str:
    """PostgreSQL's CPU per request beside the service's: on two cores shared by the service,
    PostgreSQL and wrk, a read that costs the database more is slower whatever the service does."""
    db = "; ".join(f"{connections} conns: " + ", ".join(
        f"{kind} {results[kind, connections].db_cpu_ms or 0:.2f} ms"
        for kind in ("team", "slice", "list", "audited", "audited_list", "baseline"))
        for connections in CONNECTIONS)
    return (f"PostgreSQL's CPU per request (all its processes, same runs): {db}. The list page's "
            f"audit entry names every family on the page and all their persons (about 150 subjects "
            f"for 50 families, each indexed in the GIN index on subjects), the audited baseline's "
            f"entry one subject; the session path wrote the same entry. The audited list baseline "
            f"(`/bench/list-audited`: the page, its families' persons, the same entry, one "
            f"transaction) is the limit for a page that must leave that entry; the section \"Audit "
            f"entry cost by subjects named\" isolates the entry's cost.")


def _notes(results: Results, profile: Profile, statements: dict[str, support.Count],
           audited: int) -> list[str]:
    cpu = "; ".join(f"{connections} conns: " + ", ".join(
        f"{kind} {results[kind, connections].cpu_ms or 0:.2f} ms"
        for kind in ("team", "slice", "list", "audited", "audited_list", "baseline"))
        for connections in CONNECTIONS)
    notes = [_gap(results),
             f"Server CPU per request (steadier than req/s on a busy machine; audited = the bare "
             f"read plus the audit write; audited_list = a bare list page plus its entry; "
             f"baseline = the bare read): {cpu}. One uvicorn worker is "
             f"one core at most, so the CPU per request bounds the throughput.",
             _database_share(results)]
    for connections in CONNECTIONS:
        base, with_audit = results["baseline", connections], results["audited", connections]
        notes.append(
            f"The bare read without the audit (`SELECT * FROM households WHERE id = $1`, no "
            f"transaction), {connections} conns: {base.rps:,.0f} req/s; the audited baseline does "
            f"{with_audit.rps / base.rps:.0%} of it (p50 {with_audit.p50_ms:.2f} ms, p99 "
            f"{with_audit.p99_ms:.2f} ms).")
    trips = ", ".join(f"{kind} {count.round_trips} ({count.statements} statements, "
                      f"{count.transactions} transactions)" for kind, count in statements.items())
    notes.append(
        f"Round trips to PostgreSQL per request: the audited baseline 4 (BEGIN, SELECT, INSERT, "
        f"COMMIT); the system (counted in-process on its engine and driver, the audit INSERT "
        f"included, no pre-ping; a transaction adds BEGIN and COMMIT): {trips}. Every system "
        f"read wrote its audit row ({audited:,} rows after the runs).")
    timed_out = [f"{kind} at {connections} conns: {result.timeouts} of {result.requests + result.timeouts}"
                 for (kind, connections), result in results.items() if result.timeouts]
    if timed_out:
        notes.append("Requests wrk gave up on after 10 s (not in the latencies, so those p99 figures are "
                     "lower bounds; the machine was overloaded): " + "; ".join(timed_out) + ".")
    if profile is None:
        notes.append("No CPU profile: py-spy is not installed (`.venv/bin/pip install py-spy`).")
    else:
        notes.append(f"Where the service's CPU goes (py-spy samples, team view, {CONNECTIONS[0]} conns): "
                     + ", ".join(f"{name} {share:.0%}" for name, share in profile.items()) + ".")
    return notes


def _section(results: Results, profile: Profile, statements: dict[str, support.Count], audited: int,
             timing: Timing, quick: bool) -> Section:
    setup = (f"Intake on its own PostgreSQL database with {HOUSEHOLDS} households (seeded by "
             f"`bench/seed.py`: real screening, CPR encrypted by the project's vault, outbox history), "
             f"served by `python -m shared.serve` (uvicorn, one worker; relay and consumers off; JSON "
             f"logs to a file). Baseline (the yardstick): `bench/baseline_app.py` `/audited`, bare "
             f"FastAPI + asyncpg, in one transaction `SELECT * FROM households WHERE id = $1` and the "
             f"audit-log INSERT, then COMMIT; same uvicorn arguments, same database. For the list "
             f"page also the audited list baseline (`/bench/list-audited`): the page's rows, its "
             f"families' persons and the audit entry naming all of them, in one transaction. "
             f"Load: wrk (one thread, keep-alive, random family per request) from its own process, "
             f"{timing.warmup:.0f} s warm-up then {timing.seconds:.0f} s per run, over 127.0.0.1. "
             f"Department slice as `{DEPARTMENT.value}` staff, only families it has events for."
             + (" Quick run: indicative only." if quick else ""))
    return Section("REST read: a family from the owning service", setup, _figures(results),
                   _notes(results, profile, statements, audited), history=STEPS)
