"""Scale out: intake's team view (``GET /v1/households/{id}``) served by ``python -m shared.serve``
with ``OTO_WORKERS=2`` against the same service with one worker (the baseline), on the same
PostgreSQL database, at 16 keep-alive connections from wrk.

The seeding, the targets and the wrk driver are ``bench/rest_read.py``'s. The two are measured
alternately (one worker, two workers, and again), so a busy spell on the machine does not fall
on one side only; the better of the two runs of each counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench import rest_read, support
from bench.kafka_support import machine_cpu_ticks
from bench.report import Figure, Section
from bench.seed import seed_intake_sync

CONNECTIONS = 16
ROUNDS = 2
WORKERS = (1, 2)


@dataclass(frozen=True)
class Run:
    load: support.LoadResult
    #: The fraction of the machine's cores busy during the run (the servers, PostgreSQL, wrk, and
    #: whatever else runs on the machine).
    machine_busy: float


def run(*, quick: bool) -> list[Section]:
    support.ensure_wrk()
    timing = rest_read.Timing(3, 1) if quick else rest_read.Timing(15, 5)
    with support.scratch_dir("scale-out") as scratch, \
            support.throwaway_database("intake", "scaleout") as database:
        seeded = seed_intake_sync(database.dsn, households=rest_read.HOUSEHOLDS)
        team = rest_read._write_targets(scratch, seeded.families).team
        runs = _measure(database, scratch, team, timing)
    return [_section(runs, timing, quick)]


def _measure(database: support.Database, scratch: Path, targets: Path,
             timing: rest_read.Timing) -> dict[int, Run]:
    """Alternating rounds; each server runs only for its own measurement, so the two never hold
    PostgreSQL connections at once (the shared server's connection limit is not the figure)."""
    best: dict[int, Run] = {}
    for _ in range(ROUNDS):
        for workers in WORKERS:
            env = {**support.service_env("intake", database, support.new_port()),
                   "OTO_WORKERS": str(workers), "OTO_DATA_DIR": str(scratch / f"data-{workers}")}
            with support.serving(f"intake-{workers}-workers", "shared.serve", env, scratch) as server:
                rest_read._check(server, rest_read._first_target(targets))
                print(f"   {workers} worker(s), {CONNECTIONS} connections", flush=True)
                busy_before, total_before = machine_cpu_ticks()
                load = support.measure(server, targets, connections=CONNECTIONS, seconds=timing.seconds,
                                       warmup=timing.warmup)
                busy, total = machine_cpu_ticks()
            result = Run(load, (busy - busy_before) / max(total - total_before, 1))
            if workers not in best or result.load.rps > best[workers].load.rps:
                best[workers] = result
    return best


def _machine_ms_per_read(run: Run, cores: int) -> float:
    reads = run.load.requests or 1
    return 1000 * run.machine_busy * cores * run.load.seconds / reads


def _section(runs: dict[int, Run], timing: rest_read.Timing, quick: bool) -> Section:
    one, two = runs[1].load, runs[2].load
    figures = [
        Figure(f"team view, {CONNECTIONS} conns, 2 workers vs 1: throughput", "req/s", two.rps, one.rps,
               goal="> 1 x one worker", met=two.rps > one.rps),
        Figure(f"team view, {CONNECTIONS} conns, 2 workers vs 1: p50", "ms", two.p50_ms, one.p50_ms),
        Figure(f"team view, {CONNECTIONS} conns, 2 workers vs 1: p99", "ms", two.p99_ms, one.p99_ms,
               goal="<= 1 x one worker", met=two.p99_ms <= one.p99_ms),
        Figure("server CPU per read", "ms", two.cpu_ms or 0.0, one.cpu_ms or 0.0),
    ]
    cores = os.cpu_count() or 1
    machine = {workers: _machine_ms_per_read(run, cores) for workers, run in runs.items()}
    notes = [
        f"Machine busy during the counted runs (all {cores} cores, everything on the machine): one "
        f"worker {runs[1].machine_busy:.0%}, two workers {runs[2].machine_busy:.0%}. Machine CPU per "
        f"read (busy share x cores x duration / reads): {machine[1]:.2f} ms with one worker, of "
        f"which the server {one.cpu_ms or 0:.2f} ms; the rest is PostgreSQL, wrk and whatever else "
        f"ran. So {cores} cores serve at most ~{1000 * cores / machine[1]:,.0f} reads/s however many "
        f"workers there are: a second worker adds only what the first leaves idle, and the ratio "
        f"here is a floor for a machine with cores to spare.",
        "Server CPU per read is the sum over the server's processes (with two workers: uvicorn's "
        "supervisor and both workers); the same code serves both, so a higher figure with two "
        "workers is contention (two processes on two busy cores), not more work per read.",
        "With several workers one of them (the leader: the holder of an flock on "
        "`<data dir>/intake.leader`) would run the relay and the consumers; here both are off, as "
        "in bench/rest_read.py, since a read uses neither. The two workers count their requests in "
        "Prometheus' multiprocess mode (files in a temporary folder; docs/operations.md).",
        "Profile: where one worker's CPU goes on this read is bench/rest_read.py's breakdown; the "
        "scale-out run adds no code path (uvicorn's workers share the listening socket).",
    ]
    setup = (f"Intake on its own PostgreSQL database with {rest_read.HOUSEHOLDS} households "
             f"(bench/rest_read.py's seed and targets: team staff reading families of their site), "
             f"`python -m shared.serve` with OTO_WORKERS=2 (system) and =1 (baseline), relay and "
             f"consumers off, started for their own runs; wrk, one thread, {CONNECTIONS} keep-alive "
             f"connections, {timing.warmup:.0f} s warm-up then {timing.seconds:.0f} s, {ROUNDS} "
             f"alternating rounds, the better of each counted."
             + (" Quick run: indicative only." if quick else ""))
    return Section("Scale out: two uvicorn workers against one", setup, figures, notes)
